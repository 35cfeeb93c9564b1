"""The sender, through the Slack provider's real notifiers and hooks, against the fake Slack server."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

# Airflow configures logging when first imported: import it now, not inside a test, so caplog sees the records.
import airflow.sdk  # noqa: F401
import pytest

from tests.fakes.slack_server import WEBHOOK_PATH, FakeSlackServer
from wap.config import WapConfig
from wap.slack.messages import SlackMessage
from wap.slack.notify import read_outbox, send

MESSAGE = SlackMessage(
    text="WAP review 0123456789ab is open\nsecond line",
    blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*review* `0123456789ab`"}}],
)


@pytest.fixture
def config(tmp_path: Path) -> WapConfig:
    return WapConfig(slack_outbox=tmp_path / "outbox.jsonl", slack_channel="#wap-test")


@pytest.fixture(autouse=True)
def _no_slack_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_CONN_SLACK_DEFAULT", "AIRFLOW_CONN_SLACK_API_DEFAULT"):
        monkeypatch.delenv(name, raising=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_connection_posts_text_and_blocks(
    slack_server: FakeSlackServer, config: WapConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_server.webhook_connection())
    # a bot-token connection too: the webhook wins
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", slack_server.api_connection())

    assert send(MESSAGE, config) is True

    (request,) = slack_server.requests
    assert (request.method, request.path, request.api_method) == ("POST", WEBHOOK_PATH, None)
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json == {"text": MESSAGE.text, "blocks": MESSAGE.blocks}
    assert not config.slack_outbox.exists()


def test_bot_token_connection_calls_chat_post_message(
    slack_server: FakeSlackServer, config: WapConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", slack_server.api_connection("xoxb-wap-test"))

    assert send(MESSAGE, config) is True

    (request,) = slack_server.requests
    assert request.api_method == "chat.postMessage"
    assert request.headers["Authorization"] == "Bearer xoxb-wap-test"
    payload = request.payload
    assert payload["channel"] == "#wap-test"
    assert payload["text"] == MESSAGE.text
    assert payload["blocks"] == MESSAGE.blocks


def test_conn_ids_come_from_the_config(
    slack_server: FakeSlackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_HOOK", slack_server.webhook_connection())
    config = WapConfig(slack_webhook_conn_id="team_hook", slack_outbox=tmp_path / "outbox.jsonl")
    assert send(MESSAGE, config) is True
    assert slack_server.messages() == [{"text": MESSAGE.text, "blocks": MESSAGE.blocks}]


def test_without_a_connection_the_outbox_gets_one_json_line(
    config: WapConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is True
        assert send(SlackMessage(text="second message", blocks=[]), config) is True

    records = read_outbox(config.slack_outbox)
    assert [record["text"] for record in records] == [MESSAGE.text, "second message"]
    assert records[0]["channel"] == "outbox"
    assert records[0]["blocks"] == MESSAGE.blocks
    assert records[0]["at"].endswith("+00:00")
    assert "Slack outbox: WAP review 0123456789ab is open" in caplog.messages


def test_webhook_http_500_is_logged_and_swallowed(
    slack_server: FakeSlackServer, config: WapConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_server.webhook_connection())
    slack_server.fail(500)
    with caplog.at_level(logging.WARNING, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is False
    assert len(slack_server.requests) >= 1
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "wap.slack.notify"]
    assert "Slack message not sent through Slack webhook connection 'slack_default'" in warning
    assert "Status Code: 500" in warning
    assert "WAP review 0123456789ab is open" in warning
    assert not config.slack_outbox.exists()


def test_dropped_connection_is_logged_and_swallowed(
    slack_server: FakeSlackServer, config: WapConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", slack_server.api_connection())
    slack_server.drop_connections()
    with caplog.at_level(logging.WARNING, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is False
    assert "Slack message not sent through Slack API connection 'slack_api_default'" in caplog.text


def test_unreachable_slack_is_logged_and_swallowed(
    config: WapConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DEFAULT", f'{{"conn_type": "slackwebhook", "password": "http://127.0.0.1:{port}/x"}}'
    )
    with caplog.at_level(logging.WARNING, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is False
    assert "Connection refused" in caplog.text or "URLError" in caplog.text


def test_invalid_token_is_logged_and_swallowed(
    slack_server: FakeSlackServer, config: WapConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", slack_server.api_connection("xoxb-revoked"))
    slack_server.api_error("invalid_auth")
    with caplog.at_level(logging.WARNING, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is False
    assert "SlackApiError" in caplog.text and "invalid_auth" in caplog.text


def test_connection_without_a_token_is_logged_and_swallowed(
    config: WapConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", '{"conn_type": "slackwebhook"}')
    with caplog.at_level(logging.WARNING, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is False
    assert "does not contain password" in caplog.text


def test_unwritable_outbox_is_logged_and_swallowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = WapConfig(slack_outbox=blocker / "outbox.jsonl")  # its parent is a file
    with caplog.at_level(logging.WARNING, logger="wap.slack.notify"):
        assert send(MESSAGE, config) is False
    assert "Slack message not sent through Slack outbox" in caplog.text
