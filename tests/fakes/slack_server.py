"""A fake Slack on 127.0.0.1: incoming webhooks and the Web API, recording every request.

- ``POST <any path>`` (an incoming webhook, e.g. :attr:`FakeSlackServer.webhook_url`) answers ``ok``;
- ``POST /api/<method>`` (the Web API, :attr:`FakeSlackServer.api_base_url`) answers ``{"ok": true, ...}``.

Tell it to fail with :meth:`FakeSlackServer.fail` (an HTTP status), :meth:`FakeSlackServer.api_error` (a Web API
``{"ok": false, "error": ...}``) or :meth:`FakeSlackServer.drop_connections` (closes the connection without an
answer). Use it as a context manager, or as the pytest fixture ``slack_server`` (registered by tests/conftest.py).
Point Airflow's connections at it with :meth:`webhook_connection` / :meth:`api_connection` (JSON for
``AIRFLOW_CONN_<ID>``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

WEBHOOK_PATH = "/services/T000/B000/XXXX"
API_PREFIX = "/api/"


@dataclass(frozen=True)
class SlackRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def api_method(self) -> str | None:
        """``chat.postMessage`` for ``/api/chat.postMessage``; None for a webhook request."""
        return self.path[len(API_PREFIX) :].split("?")[0] if self.path.startswith(API_PREFIX) else None

    @property
    def payload(self) -> dict[str, Any]:
        """The message: JSON body or form fields, with ``blocks``/``attachments`` decoded if sent as JSON strings
        (the Web API accepts both; the provider's SlackNotifier sends strings)."""
        data = dict(self.json) if isinstance(self.json, dict) else dict(self.form)
        for key in ("blocks", "attachments"):
            if isinstance(data.get(key), str):
                data[key] = json.loads(data[key])
        return data


class FakeSlackServer:
    """The fake Slack server; starts on a free port of 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.requests: list[SlackRequest] = []
        self._status = 200
        self._api_error: str | None = None
        self._drop = False
        self._changed = threading.Condition()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------------------------------
    def start(self) -> FakeSlackServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where it listens --------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    @property
    def api_base_url(self) -> str:
        """For the Slack API connection's ``base_url`` extra (the SDK appends the method name)."""
        return f"{self.url}{API_PREFIX}"

    def webhook_connection(self) -> str:
        """An incoming-webhook connection (``slackwebhook``) posting here, as JSON for ``AIRFLOW_CONN_<ID>``."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.webhook_url})

    def api_connection(self, token: str = "xoxb-fake-token") -> str:
        """A Slack API (bot token) connection whose Web API is this server, as JSON for ``AIRFLOW_CONN_<ID>``."""
        return json.dumps({"conn_type": "slack", "password": token, "extra": {"base_url": self.api_base_url}})

    # -- behaviour ---------------------------------------------------------------------------------------------
    def fail(self, status: int = 500) -> None:
        """Answer every request with HTTP ``status`` from now on."""
        self._status = status

    def api_error(self, error: str = "invalid_auth") -> None:
        """Answer Web API calls with ``{"ok": false, "error": error}`` (HTTP 200), as Slack does."""
        self._api_error = error

    def drop_connections(self) -> None:
        """Close every connection without answering from now on."""
        self._drop = True

    def reset(self) -> None:
        """Answer normally again and forget the recorded requests."""
        with self._changed:
            self._status, self._api_error, self._drop = 200, None, False
            self.requests.clear()

    # -- what it received --------------------------------------------------------------------------------------
    def messages(self) -> list[dict[str, Any]]:
        """The payload of every POST received, oldest first."""
        return [request.payload for request in self.requests if request.method == "POST"]

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[SlackRequest]:
        """Block until at least ``count`` requests arrived (for asynchronous senders); the requests so far."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake Slack received {len(self.requests)} requests, expected {count}")
                self._changed.wait(remaining)
            return list(self.requests)

    def _record(self, request: SlackRequest) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()


def _handler(server: FakeSlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the recorded requests
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            parsed, form = None, {}
            text = body.decode("utf-8", errors="replace")
            if "json" in content_type or text.startswith("{"):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
            elif "form" in content_type:
                form = {key: values[-1] for key, values in parse_qs(text).items()}
            request = SlackRequest(self.command, self.path, dict(self.headers.items()), body, parsed, form)
            server._record(request)
            if server._drop:
                self.close_connection = True
                self.connection.close()
                return
            if server._status != 200:
                self._answer(server._status, "text/plain", b"internal_error")
            elif request.api_method is not None:
                if server._api_error:
                    answer = {"ok": False, "error": server._api_error}
                else:
                    answer = {"ok": True, "channel": "C0FAKE", "ts": f"{time.time():.6f}", "message": request.payload}
                self._answer(200, "application/json; charset=utf-8", json.dumps(answer).encode())
            else:
                self._answer(200, "text/html", b"ok")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def slack_server() -> Iterator[FakeSlackServer]:
    """A running :class:`FakeSlackServer`, stopped after the test."""
    with FakeSlackServer() as server:
        yield server
