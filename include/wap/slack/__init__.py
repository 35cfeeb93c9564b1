"""Slack notifications of the review cycle.

``messages`` builds them (pure, no Airflow), ``notify.send`` delivers them (webhook, bot token or the local
outbox; never raises), ``callbacks`` wires them into Airflow as notifiers. Importing this package imports no
Airflow.
"""

from __future__ import annotations

from wap.slack.messages import SlackMessage, published, rejected, review_opened, task_failed
from wap.slack.notify import read_outbox, send

__all__ = ["SlackMessage", "published", "read_outbox", "rejected", "review_opened", "send", "task_failed"]
