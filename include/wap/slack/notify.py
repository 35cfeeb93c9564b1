"""Send a :class:`~wap.slack.messages.SlackMessage` through whichever Slack channel is configured; never raise.

1. the connection ``slack_default`` (``WAP_SLACK_CONN_ID``) exists: an incoming webhook, through the Slack
   provider's :class:`SlackWebhookNotifier`;
2. else ``slack_api_default`` (``WAP_SLACK_API_CONN_ID``, a bot token) exists: ``chat.postMessage`` to
   ``WAP_SLACK_CHANNEL`` through the provider's :class:`SlackNotifier`;
3. else the local outbox: one JSON line appended to ``WAP_SLACK_OUTBOX`` and a log line.

A Slack failure (refused, HTTP 500, invalid token, a connection without a token) is logged and swallowed: it
never fails, blocks or approves anything. Airflow is imported lazily, so this module loads anywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wap.slack.messages import SlackMessage

if TYPE_CHECKING:
    from wap.config import WapConfig

log = logging.getLogger(__name__)

OUTBOX = "outbox"


def send(message: SlackMessage, config: WapConfig | None = None) -> bool:
    """Deliver ``message`` (webhook, bot token or outbox, see the module doc). True if delivered, else False."""
    route = "Slack"
    try:
        if config is None:
            from wap.config import load_config

            config = load_config()
        webhook = _find_connection(config.slack_webhook_conn_id)
        if webhook is not None:
            route = f"Slack webhook connection {config.slack_webhook_conn_id!r}"
            with _environ(webhook):
                _send_webhook(message, config.slack_webhook_conn_id)
        else:
            api = _find_connection(config.slack_api_conn_id)
            if api is not None:
                route = f"Slack API connection {config.slack_api_conn_id!r} (channel {config.slack_channel})"
                with _environ(api):
                    _send_api(message, config.slack_api_conn_id, config.slack_channel)
            else:
                route = f"Slack outbox {config.slack_outbox}"
                write_outbox(message, config.slack_outbox)
                log.info("Slack outbox: %s", first_line(message.text))
                return True
    except Exception as error:
        log.warning(
            "Slack message not sent through %s: %s: %s. Nothing else changes; the message was: %s",
            route,
            type(error).__name__,
            error,
            first_line(message.text),
        )
        return False
    log.info("Slack message sent through %s: %s", route, first_line(message.text))
    return True


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def write_outbox(message: SlackMessage, path: Path) -> None:
    """Append ``message`` as one JSON line: ``{"at", "channel": "outbox", "text", "blocks"}``."""
    record = {
        "at": datetime.now(timezone.utc).isoformat(),
        "channel": OUTBOX,
        "text": message.text,
        "blocks": message.blocks,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with path.open("a", encoding="utf-8") as outbox:  # one write of one line: concurrent appends stay whole
        outbox.write(line)


def read_outbox(path: Path) -> list[dict[str, Any]]:
    """Every message in the outbox at ``path``, oldest first (none if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the provider's notifiers -------------------------------------------------------------------------------------
def _send_webhook(message: SlackMessage, conn_id: str) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # notify() rather than __call__: the message is final text, it must not be rendered as a Jinja template.
    SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=message.text, blocks=message.blocks).notify({})


def _send_api(message: SlackMessage, conn_id: str, channel: str) -> None:
    from airflow.providers.slack.notifications.slack import SlackNotifier

    SlackNotifier(slack_conn_id=conn_id, channel=channel, text=message.text, blocks=message.blocks).notify({})


# -- is a connection configured? ----------------------------------------------------------------------------------
def _in_airflow_process() -> bool:
    """True in a task, the dag processor or the triggerer: the Task SDK's supervisor answers connection reads."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _find_connection(conn_id: str) -> dict[str, str] | None:
    """None when ``conn_id`` is defined nowhere Airflow looks; else what the hooks need in the environment to see it.

    In a task (or callback) the Task SDK asks the API server, which sees the metadata database, secrets backends
    and ``AIRFLOW_CONN_*``: nothing is needed. Outside one (the CLI) the Task SDK sees only ``AIRFLOW_CONN_*`` and
    secrets backends, so the metadata database (``airflow connections add``, ``wap settings apply``) is asked too,
    and a connection found only there is handed to the hooks the way Airflow documents for any process: as an
    ``AIRFLOW_CONN_<ID>`` variable (JSON), for the duration of the call.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        pass
    else:
        return {}
    if _in_airflow_process():
        return None
    try:
        from airflow.models.connection import Connection

        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception as error:  # no metadata database here (not migrated, unreachable): no connection
        log.debug("Cannot look up connection %r in the metadata database: %s", conn_id, error)
        return None
    return {f"AIRFLOW_CONN_{conn_id.upper()}": conn.as_json()}


@contextlib.contextmanager
def _environ(overrides: dict[str, str]) -> Iterator[None]:
    """``overrides`` set in the process environment for the duration of the block, then restored."""
    before = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
