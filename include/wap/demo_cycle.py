"""`make demo`'s WAP cycle: run wap_dwh, wait for its review, show the alert, approve like a reviewer would.

The run is `airflow dags test` in a child process (it runs the approval trigger in-process and waits on the
Variable like the triggerer would); this process watches the approval Variable in the same metadata database,
prints the Slack message that reached the outbox, and then sets the Variable with the Airflow CLI.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from wap.config import WapError
from wap.review import InvalidDecision, parse

if TYPE_CHECKING:
    from wap.config import WapConfig

POLL_SECONDS = 2.0


class DemoCycleError(WapError):
    """The demo run failed or never opened a review; the message points at its log."""


def _variable(key: str) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(key, default_var=None)


def _outbox_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def _wait_for_review(config: WapConfig, run: subprocess.Popen, before: str | None, log_path: Path) -> str:
    """The review id once the run's audit sets ``pending <id>`` (a value other than ``before``)."""
    while True:
        value = _variable(config.approval_variable)
        if value != before and value:
            try:
                decision = parse(value)
            except InvalidDecision:
                decision = None
            if decision and decision.verb == "pending":
                return decision.review_id
        if run.poll() is not None:
            raise DemoCycleError(f"wap_dwh ended ({run.returncode}) without opening a review: see {log_path}")
        time.sleep(POLL_SECONDS)


def _print_outbox(path: Path, skip: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()[skip:] if path.exists() else []
    if not lines:
        print(f"(no message reached the outbox {path}: a Slack connection may be configured)")
    for line in lines:
        message = json.loads(line)
        print(f"--- Slack message ({message.get('channel', 'outbox')}, {path}) ---")
        print(message.get("text", ""))
        print("---")


def run_cycle(config: WapConfig, *, log_path: Path, outbox: Path, verb: str = "approve") -> int:
    """Run wap_dwh through review and decision; returns the run's exit code."""
    before = _variable(config.approval_variable)
    seen = _outbox_lines(outbox)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log_file:
        print(f"== Running {config.dag_id} (airflow dags test): Write, Audit, then waiting for a reviewer ==")
        run = subprocess.Popen(
            ["airflow", "dags", "test", config.dag_id], stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
        try:
            review_id = _wait_for_review(config, run, before, log_path)
            print(f"== Review {review_id} is open: {config.approval_variable} = 'pending {review_id}' ==\n")
            _print_outbox(outbox, seen)
            command = ["airflow", "variables", "set", config.approval_variable, f"{verb} {review_id}"]
            print(f"\n== A reviewer decides ({verb}) ==\n$ {shlex.join(command)}")
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            code = run.wait()
        finally:
            if run.poll() is None:
                run.terminate()
                run.wait(timeout=30)
    return code


def main(argv: list[str] | None = None) -> int:
    import argparse

    from wap.config import PROJECT_DIR, load_config

    parser = argparse.ArgumentParser(prog="python -m wap.demo_cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--decision", choices=["approve", "reject"], default="approve")
    parser.add_argument("--log", type=Path, default=PROJECT_DIR / ".wap" / "demo-run.log", help="the run's log")
    args = parser.parse_args(argv)
    config = load_config()
    try:
        return run_cycle(config, log_path=args.log, outbox=config.slack_outbox, verb=args.decision)
    except WapError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
