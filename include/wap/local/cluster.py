"""Run the real Airflow components (API server, scheduler, dag processor, triggerer): for `make demo` and the
end-to-end tests, so what the demo shows is the path the tests check.

``AirflowCluster`` is a context manager. On entry it makes a throw-away ``AIRFLOW_HOME`` (or uses the one it is
given; SQLite metadata database, LocalExecutor), migrates it, applies the project's ``airflow_settings.yaml``
(``wap settings apply``), prepares the demo warehouse (``wap demo reset``: production ``dwh`` through 2021, the
2022 load waiting), copies the DAG files into its own DAGs folder (or uses a given DAGs folder as it is), and
starts each component as its own process group, logging to ``<home>/components/<name>.log``. It returns once
the API server's health endpoint reports the scheduler, triggerer and dag processor healthy and every DAG
file's DAGs are serialized. On exit (also on failure) it terminates the process groups, then kills what is left.

Nothing listens on a non-loopback address: the API server binds 127.0.0.1 on a free port, and the scheduler and
triggerer run with ``--skip-serve-logs`` (their log servers would bind every interface; the API server reads the
task logs from the shared local ``logs/`` folder instead). :meth:`AirflowCluster.non_loopback_listeners` checks it.

State is read straight from the SQLite metadata database (read-only, much faster than a CLI call per poll);
changes go through the ``airflow`` CLI, as an operator outside the cluster would make them::

    with AirflowCluster(dag_files=[...]) as cluster:
        run_id = cluster.trigger("wap_dwh")
        cluster.wait_for(lambda: cluster.task_state("wap_dwh", run_id, "await_approval") == "deferred",
                         timeout=300, what="await_approval deferred")
        cluster.airflow("variables", "set", "wap_approval__wap_dwh", "approve 0123456789ab")
"""

from __future__ import annotations

import configparser
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wap.config import PROJECT_DIR

BIN = Path(sys.executable).parent

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = ("success", "failed")
_run_counter = itertools.count(1)


class ClusterError(AssertionError):
    """A component died, a wait timed out, or a CLI call failed; the message carries the components' log tails."""


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: The bundle's example DAGs (``dags/example_*.py``): a cluster runs them only when asked (``example_dag_files``).
EXAMPLE_PREFIX = "example_"


def default_dag_files() -> list[Path]:
    """The project's DAG files but its examples (the example consumer reads the warehouse after each publish)."""
    return sorted(path for path in (PROJECT_DIR / "dags").glob("*.py") if not path.name.startswith(EXAMPLE_PREFIX))


def example_dag_files() -> list[Path]:
    """The project's example DAGs (``example_wap_consumer``: scheduled on a published relation's Asset)."""
    return sorted((PROJECT_DIR / "dags").glob(f"{EXAMPLE_PREFIX}*.py"))


def schema_fingerprint(duckdb_path: Path | str, schema: str, *, skip_prefix: str | None = None) -> dict[str, Any]:
    """What ``schema`` of the DuckDB file holds: per table ``(rows, sum of row hashes)``, per view its body.

    A view is recorded by its SQL after ``AS`` (schema-neutral, so a view moved by a schema swap compares equal).
    Relations whose names start with ``skip_prefix`` (e.g. the bundle's own ``_wap_``) are left out.
    Opens the file read-only: call it only while no task has the warehouse open (DuckDB allows one writing
    process, and a reader excludes it).
    """
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        relations = conn.execute(
            "select table_name, table_type from information_schema.tables where table_schema = ? order by 1",
            [schema],
        ).fetchall()
        fingerprint: dict[str, Any] = {}
        for name, kind in relations:
            if skip_prefix and name.startswith(skip_prefix):
                continue
            if kind == "VIEW":
                (sql,) = conn.execute(
                    "select sql from duckdb_views() where schema_name = ? and view_name = ?", [schema, name]
                ).fetchone()
                fingerprint[name] = ("view", sql.split(" AS ", 1)[-1])
            else:
                # Identifiers come from information_schema and are quoted; nothing here is user input.
                quoted = '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))
                count, digest = conn.execute(f"select count(*), sum(hash(t)) from {quoted} t").fetchone()
                fingerprint[name] = ("table", count, None if digest is None else str(digest))
    return fingerprint


def duckdb_scalar(duckdb_path: Path | str, sql: str, params: Sequence[Any] = ()) -> Any:
    """One value from the DuckDB file, opened read-only (see :func:`schema_fingerprint` for when)."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        row = conn.execute(sql, list(params)).fetchone()
    return None if row is None else row[0]


def duckdb_execute(duckdb_path: Path | str, sql: str, params: Sequence[Any] = ()) -> None:
    """Run one statement on the DuckDB file from outside Airflow (e.g. a landing change); only while no task runs."""
    import duckdb

    with duckdb.connect(str(duckdb_path)) as conn:
        conn.execute(sql, list(params))


def _log(message: str) -> None:
    print(f"[cluster {datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


class AirflowCluster:
    """The four Airflow components on a throw-away home; see the module doc.

    ``dag_files``: files copied into the cluster's DAGs folder (default :func:`default_dag_files`).
    ``dags_folder``: use this DAGs folder as it is instead (``dag_files`` is then what it holds).
    ``duckdb_path``, ``outbox_path``: the embedded warehouse and the Slack outbox (default: in the home).
    ``env``: extra environment for every component and CLI call (overrides the defaults below).
    ``demo_reset``: prepare the demo warehouse with ``wap demo reset`` before starting.
    ``apply_settings``: apply the bundle's ``airflow_settings.yaml`` (connections, pools, variables) after migrating.
    ``expected_dags``: DAG ids that must be serialized before the cluster counts as ready (default: one per
    DAG file, named like the file; files starting with ``_`` are not expected to hold a DAG).
    ``port``: the API server's port on 127.0.0.1 (default: a free one).
    ``keep_home``: keep a home this class created (a temporary directory) after a clean exit; it is always
    kept after a failure, for its logs. A ``home`` given by the caller is never removed.
    """

    def __init__(
        self,
        *,
        home: Path | str | None = None,
        dag_files: Iterable[Path | str] | None = None,
        dags_folder: Path | str | None = None,
        duckdb_path: Path | str | None = None,
        outbox_path: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        demo_reset: bool = True,
        apply_settings: bool = True,
        expected_dags: Iterable[str] | None = None,
        parallelism: int = 1,
        poke_interval: str = "2s",
        port: int | None = None,
        startup_timeout: float = 180.0,
        keep_home: bool = False,
        verbose: bool = True,
    ) -> None:
        self._own_home = home is None
        self.keep_home = keep_home
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="wap-e2e-airflow-"))
        self._copy_dags = dags_folder is None
        if dags_folder is not None:
            dag_files = sorted(Path(dags_folder).glob("*.py"))
        self.dag_files = [Path(f) for f in (dag_files if dag_files is not None else default_dag_files())]
        self.expected_dags = (
            list(expected_dags)
            if expected_dags is not None
            else [f.stem for f in self.dag_files if not f.name.startswith("_")]
        )
        self.demo_reset = demo_reset
        self.apply_settings = apply_settings
        self.startup_timeout = startup_timeout
        self.verbose = verbose
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.dags_folder = Path(dags_folder) if dags_folder is not None else self.home / "dags"
        self.component_logs = self.home / "components"
        self.db_path = self.home / "airflow.db"
        self.duckdb_path = Path(duckdb_path) if duckdb_path is not None else self.home / "warehouse.duckdb"
        self.outbox_path = Path(outbox_path) if outbox_path is not None else self.home / "slack-outbox.jsonl"
        self.processes: dict[str, subprocess.Popen] = {}
        self._log_handles: list[Any] = []
        self._fernet: Any = None
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAP_", "DBT_", "_AIRFLOW"))}
        # Workers reach the API server on 127.0.0.1: never through a proxy from the environment.
        no_proxy = ",".join(
            filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1,localhost"])
        )
        self.env: dict[str, str] = {
            **inherited,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # A worker notices its task's end within 1 s (default 5: the supervisor's wait between checks).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "WAP_DUCKDB_PATH": str(self.duckdb_path),
            "WAP_SLACK_OUTBOX": str(self.outbox_path),
            "WAP_APPROVAL_POKE_INTERVAL": poke_interval,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            **(env or {}),
        }

    # -- lifecycle --------------------------------------------------------------------------------------------
    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            self._say(f"start failed; kept {self.home} (component logs in {self.component_logs})")
            raise
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        self.stop()
        if self._own_home and not self.keep_home and exc_type is None:
            shutil.rmtree(self.home, ignore_errors=True)
        elif exc_type is not None:
            self._say(f"kept {self.home} (component logs in {self.component_logs})")

    def start(self) -> None:
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.component_logs.mkdir(exist_ok=True)
        if self._copy_dags:
            self.dags_folder.mkdir(exist_ok=True)
            for source in self.dag_files:
                shutil.copy2(source, self.dags_folder / source.name)
        self._say(f"AIRFLOW_HOME {self.home}; API server {self.base_url}")
        # The demo warehouse does not touch Airflow: prepare it while the metadata database migrates.
        reset = self._spawn_setup(["wap", "demo", "reset"]) if self.demo_reset else None
        self._check(self.airflow("db", "migrate"), "airflow db migrate")
        if self.apply_settings:
            self._check(self.run("wap", "settings", "apply", "--file", str(PROJECT_DIR / "airflow_settings.yaml")), "")
        if reset is not None:
            out, _ = reset.communicate()
            if reset.returncode != 0:
                raise ClusterError(f"wap demo reset failed ({reset.returncode}):\n{out[-4000:]}")
        ready = ["metadata database migrated"]
        ready += ["settings applied"] if self.apply_settings else []
        ready += ["demo warehouse ready"] if self.demo_reset else []
        self._say(f"{', '.join(ready)} ({self._since(started)})")
        for name in COMPONENTS:
            self._spawn(name)
        self.wait_for(
            self._healthy,
            self.startup_timeout,
            "the API server to report scheduler, triggerer and dag processor healthy",
        )
        self.wait_for(
            self._dags_parsed,
            self.startup_timeout,
            f"DAGs {sorted(self.expected_dags)} to be serialized (a file without the words 'airflow' and 'dag' "
            "is skipped by [core] dag_discovery_safe_mode)",
        )
        self._say(f"cluster ready ({self._since(started)})")

    def _commands(self) -> dict[str, list[str]]:
        return {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }

    def _spawn(self, name: str) -> None:
        handle = (self.component_logs / f"{name}.log").open("a", encoding="utf-8")
        self._log_handles.append(handle)
        self.processes[name] = subprocess.Popen(
            [str(BIN / "airflow"), *self._commands()[name]],
            env=self.env,
            cwd=self.home,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends it with all its children
        )

    def restart(self, name: str, *, sig: int = signal.SIGKILL) -> None:
        """Stop one component (by default abruptly, as a crash would) and start it again."""
        process = self.processes[name]
        _signal_group(process, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        self._say(f"{name} stopped ({signal.Signals(sig).name}); starting it again")
        self._spawn(name)

    def stop(self) -> None:
        """Terminate every component's process group, wait, then kill what is left. Idempotent."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)  # also any child left behind by a clean exit
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        for handle in self._log_handles:
            handle.close()
        self._log_handles.clear()

    # -- commands ---------------------------------------------------------------------------------------------
    def run(self, *command: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``command`` (a venv console script or any program) with the cluster's environment."""
        program = str(BIN / command[0]) if (BIN / command[0]).exists() else command[0]
        result = subprocess.run(
            [program, *command[1:]],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check:
            self._check(result, " ".join(command))
        return result

    def airflow(self, *args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
        """The ``airflow`` CLI with the cluster's environment (AIRFLOW_HOME, config)."""
        return self.run("airflow", *args, check=check, timeout=timeout)

    def trigger(self, dag_id: str, *, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Trigger a run of ``dag_id`` with ``airflow dags trigger``; returns its run id."""
        run_id = run_id or f"e2e__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}__{next(_run_counter)}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        self.airflow(*args, check=True)
        self._say(f"triggered {dag_id} run {run_id}")
        return run_id

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call of Airflow's REST API (``/api/v2/...``) as the simple auth manager's ``admin`` (the password the API
        server generated in the home), as a user acting in the UI; returns the decoded JSON answer."""
        return json.loads(self._call(method, path, body, self._admin_headers()) or b"null")

    def page(self, path: str) -> str:
        """A page of the API server (the review view under ``/wap``, say) as ``admin``: its HTML."""
        return self._call("GET", path, None, self._admin_headers()).decode()

    def _admin_headers(self) -> dict[str, str]:
        password = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = json.loads(self._call("POST", "/auth/token", {"username": "admin", "password": password}, {}))
        return {"Authorization": f"Bearer {token['access_token']}"}

    def _call(self, method: str, path: str, payload: Any, headers: dict[str, str]) -> bytes:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=data, method=method, headers={"Content-Type": "application/json", **headers}
        )
        with opener.open(request, timeout=30) as response:
            return response.read()

    def clear(self, dag_id: str, run_id: str, task_ids: Sequence[str], *, downstream: bool = False) -> list[str]:
        """Clear task instances of a run as a user does in the UI ("Clear", failed or not); returns the cleared ids."""
        answer = self.api(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": list(task_ids),
                "only_failed": False,
                "include_downstream": downstream,
                "reset_dag_runs": True,
            },
        )
        cleared = sorted(ti["task_id"] for ti in answer.get("task_instances", []))
        self._say(f"cleared {dag_id} run {run_id}: {', '.join(cleared)}")
        return cleared

    def variable_set(self, key: str, value: str) -> None:
        """``airflow variables set KEY VALUE``, as an operator outside the cluster would."""
        self.airflow("variables", "set", key, value, check=True)
        self._say(f"airflow variables set {key} {value!r}")

    def variable_get(self, key: str) -> str | None:
        """The Variable's value from the metadata database (decrypted with the home's Fernet key), or None."""
        row = self._query_one("select val, is_encrypted from variable where key = ?", (key,))
        if row is None:
            return None
        value, encrypted = row
        if encrypted and value is not None:
            value = self._fernet_cipher().decrypt(value.encode()).decode()
        return value

    # -- state ------------------------------------------------------------------------------------------------
    def task_state(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
        row = self._query_one(
            "select state from task_instance where dag_id = ? and run_id = ? and task_id = ? and map_index = ?",
            (dag_id, run_id, task_id, map_index),
        )
        return row[0] if row else None

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        rows = self._query(
            "select task_id, state from task_instance where dag_id = ? and run_id = ? order by task_id",
            (dag_id, run_id),
        )
        return dict(rows)

    def run_created_at(self, dag_id: str, run_id: str) -> float | None:
        """When the run was created (queued), as a Unix time: where its timings start, whatever triggered it."""
        row = self._query_one("select queued_at from dag_run where dag_id = ? and run_id = ?", (dag_id, run_id))
        return datetime.fromisoformat(row[0]).replace(tzinfo=timezone.utc).timestamp() if row and row[0] else None

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        row = self._query_one("select state from dag_run where dag_id = ? and run_id = ?", (dag_id, run_id))
        return row[0] if row else None

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """A task's XCom value (JSON in the metadata database), or None if it has none."""
        row = self._query_one(
            "select value from xcom where dag_id = ? and run_id = ? and task_id = ? and key = ? and map_index = ?",
            (dag_id, run_id, task_id, key, map_index),
        )
        if row is None or row[0] is None:
            return None
        value = row[0]
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def asset_events(self, source_dag_id: str, source_run_id: str | None = None) -> list[dict[str, Any]]:
        """Asset events tasks of ``source_dag_id`` (of run ``source_run_id``, if given) emitted, oldest first:
        ``{id, uri, extra, source_run_id, source_task_id}``."""
        sql = (
            "select e.id, a.uri, e.extra, e.source_run_id, e.source_task_id from asset_event e "
            "join asset a on a.id = e.asset_id where e.source_dag_id = ?"
        )
        params: tuple[Any, ...] = (source_dag_id,)
        if source_run_id is not None:
            sql, params = sql + " and e.source_run_id = ?", (*params, source_run_id)
        return [
            {
                "id": event_id,
                "uri": uri,
                "extra": json.loads(extra) if isinstance(extra, (str, bytes)) else extra,
                "source_run_id": run_id,
                "source_task_id": task_id,
            }
            for event_id, uri, extra, run_id, task_id in self._query(sql + " order by e.id", params)
        ]

    def asset_consumers(self, uris: Iterable[str]) -> list[str]:
        """The unpaused DAGs scheduled on any of the Assets ``uris`` (each such event queues a run of them)."""
        uris = sorted(set(uris))
        if not uris:
            return []
        marks = ", ".join("?" for _ in uris)
        rows = self._query(
            "select distinct r.dag_id from dag_schedule_asset_reference r join asset a on a.id = r.asset_id "
            f"join dag d on d.dag_id = r.dag_id where a.uri in ({marks}) and not d.is_paused order by 1",
            tuple(uris),
        )
        return [row[0] for row in rows]

    def runs_triggered_by(self, event_ids: Iterable[int]) -> list[tuple[str, str, str | None]]:
        """``(dag_id, run_id, state)`` of the runs the scheduler created from any of the asset events ``event_ids``."""
        ids = sorted(set(event_ids))
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        return self._query(
            "select distinct r.dag_id, r.run_id, r.state from dag_run r join dagrun_asset_event x "
            f"on x.dag_run_id = r.id where x.event_id in ({marks}) order by r.id",
            tuple(ids),
        )

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id`` through the REST API (as the UI's toggle does), if it is paused."""
        row = self._query_one("select is_paused from dag where dag_id = ?", (dag_id,))
        if row and row[0]:
            self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            self._say(f"unpaused {dag_id}")

    def serialized_dags(self) -> set[str]:
        return {row[0] for row in self._query("select dag_id from serialized_dag")}

    def import_errors(self) -> list[tuple[str, str]]:
        return self._query("select filename, stacktrace from import_error")

    def outbox(self) -> list[dict[str, Any]]:
        """The Slack outbox's messages so far (``WAP_SLACK_OUTBOX``)."""
        if not self.outbox_path.exists():
            return []
        lines = self.outbox_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every attempt's log of a task (worker and triggerer parts), concatenated; '' if none yet."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if not folder.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in sorted(folder.rglob("*.log")))

    def health(self) -> dict[str, Any] | None:
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"{self.base_url}/api/v2/monitor/health", timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def listening_sockets(self) -> list[tuple[int, str, int]]:
        """``(pid, address, port)`` of every TCP socket listening, or UDP socket bound, in the cluster's processes."""
        import psutil

        pids = set()
        for process in self.processes.values():
            try:
                parent = psutil.Process(process.pid)
                pids |= {parent.pid, *(child.pid for child in parent.children(recursive=True))}
            except psutil.NoSuchProcess:
                continue
        return sorted(
            (conn.pid, conn.laddr.ip, conn.laddr.port)
            for conn in psutil.net_connections(kind="inet")
            if conn.pid in pids
            and conn.laddr
            and (conn.status == psutil.CONN_LISTEN or (conn.type == socket.SOCK_DGRAM and not conn.raddr))
        )

    def non_loopback_listeners(self) -> list[tuple[int, str, int]]:
        """The :meth:`listening_sockets` outside 127.0.0.0/8 and ::1 (there should be none)."""
        return [sock for sock in self.listening_sockets() if not (sock[1].startswith("127.") or sock[1] == "::1")]

    # -- waiting ----------------------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
        """Poll ``predicate`` until it returns a truthy value (returned); fail with the components' log tails.

        Also fails at once if a component process has exited.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            self._check_alive(what)
            if time.monotonic() >= deadline:
                raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.diagnostics()}")
            time.sleep(interval)

    def assert_stays(self, predicate: Callable[[], Any], duration: float, what: str, interval: float = 0.5) -> None:
        """Check that ``predicate`` holds at every poll for ``duration`` seconds (a negative wait)."""
        deadline = time.monotonic() + duration
        while True:
            if not predicate():
                raise ClusterError(f"expected {what} to hold for {duration:.0f}s; it stopped\n{self.diagnostics()}")
            if time.monotonic() >= deadline:
                return
            self._check_alive(what)
            time.sleep(interval)

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: str | Iterable[str], timeout: float) -> str:
        """Wait until the task is in one of ``states``; fails early if the run ends without it."""
        wanted = {states} if isinstance(states, str) else set(states)

        def reached() -> str | None:
            state = self.task_state(dag_id, run_id, task_id)
            if state in wanted:
                return state
            if (
                self.run_state(dag_id, run_id) in TERMINAL_RUN_STATES
                and self.task_state(dag_id, run_id, task_id) not in wanted
            ):
                raise ClusterError(
                    f"{dag_id} run {run_id} ended ({self.run_state(dag_id, run_id)}) with {task_id} "
                    f"{state!r}, not {sorted(wanted)}: {self.task_states(dag_id, run_id)}\n{self.diagnostics()}"
                )
            return None

        return self.wait_for(reached, timeout, f"{dag_id}.{task_id} of {run_id} to be {sorted(wanted)}")

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        states: Iterable[str] = TERMINAL_RUN_STATES,
        interval: float = 1.0,
    ):
        wanted = set(states)
        return self.wait_for(
            lambda: state if (state := self.run_state(dag_id, run_id)) in wanted else None,
            timeout,
            f"{dag_id} run {run_id} to end in {sorted(wanted)}",
            interval=interval,
        )

    def diagnostics(self, lines: int = 40) -> str:
        """Each component's log tail, import errors and running task states: for failure messages."""
        parts = []
        for name in COMPONENTS:
            path = self.component_logs / f"{name}.log"
            process = self.processes.get(name)
            status = (
                "not started"
                if process is None
                else ("running" if process.poll() is None else f"exited {process.returncode}")
            )
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {name} ({status}), last {len(tail)} lines of {path} ---\n" + "\n".join(tail))
        try:
            errors = self.import_errors()
            if errors:
                parts.append("--- DAG import errors ---\n" + "\n".join(f"{f}: {e[-1500:]}" for f, e in errors))
            runs = self._query("select dag_id, run_id, state from dag_run order by id")
            for dag_id, run_id, state in runs:
                states = self.task_states(dag_id, run_id)
                parts.append(f"--- run {dag_id} {run_id}: {state} --- {states}")
                for task_id, task_state in states.items():
                    if task_state in ("failed", "up_for_retry", "upstream_failed"):
                        tail = self.task_log(dag_id, run_id, task_id).splitlines()[-lines:]
                        parts.append(f"--- log of {dag_id}.{task_id} ({task_state}) ---\n" + "\n".join(tail))
        except sqlite3.Error as error:
            parts.append(f"(metadata database not readable: {error})")
        return "\n".join(parts)

    # -- internals --------------------------------------------------------------------------------------------
    def _healthy(self) -> bool:
        health = self.health()
        if not health:
            return False
        return all(
            (health.get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def _dags_parsed(self) -> bool:
        errors = self.import_errors()
        if errors:
            details = "\n".join(f"{filename}:\n{stacktrace[-3000:]}" for filename, stacktrace in errors)
            raise ClusterError(f"the dag processor could not import DAG files:\n{details}")
        return set(self.expected_dags) <= self.serialized_dags()

    def _check_alive(self, what: str) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ClusterError(
                    f"{name} exited ({process.returncode}) while waiting for {what}\n{self.diagnostics()}"
                )

    def _check(self, result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode != 0:
            raise ClusterError(
                f"{what or ' '.join(map(str, result.args))} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )

    def _spawn_setup(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env=self.env,
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        for attempt in range(5):
            try:
                with closing(self._connect()) as conn:
                    return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == 4:
                    raise
                time.sleep(0.2)
        return []

    def _query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _fernet_cipher(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet, MultiFernet

            key = self.env.get("AIRFLOW__CORE__FERNET_KEY")
            if not key:
                parser = configparser.ConfigParser(interpolation=None)
                parser.read(self.home / "airflow.cfg")
                key = parser.get("core", "fernet_key", fallback="")
            self._fernet = MultiFernet([Fernet(part.strip().encode()) for part in key.split(",") if part.strip()])
        return self._fernet

    def _say(self, message: str) -> None:
        if self.verbose:
            _log(message)

    @staticmethod
    def _since(started: float) -> str:
        return f"{time.monotonic() - started:.0f}s"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is not None and sig == signal.SIGTERM:
        return
    try:
        os.killpg(process.pid, sig)  # the group started with start_new_session: its id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass
