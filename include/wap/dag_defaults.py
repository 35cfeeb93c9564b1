"""What every DAG of the bundle shares: owner, retries, the Slack alert on failure, the start date."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

START_DATE = datetime(2024, 1, 1)


def default_args() -> dict[str, Any]:
    from wap.slack.callbacks import on_failure

    return {
        "owner": "data-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": on_failure(),
    }
