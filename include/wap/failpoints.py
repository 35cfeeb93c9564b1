"""Failpoints: crash the process at a named point, once, so tests can prove what a crash there leaves behind.

A failpoint is armed by a line with its name in the file named by ``WAP_FAILPOINTS_FILE`` (the fault tests set
it for the whole cluster). :func:`crash_if_armed` removes the name from the file first, so the retry after the
crash passes, then kills its own process with SIGKILL: no ``finally``, no callback, no clean-up, as when a
worker node dies. Without ``WAP_FAILPOINTS_FILE`` (every real deployment) it does nothing.

Points: ``publish.after_swap`` (the swap is committed, the task has not recorded success); ``build.after_dbt``
(the one build's dbt has built everything, the build task has not recorded success). A point must sit in the
task's own process, so this small reader sits below every stage; arming is the tests' (they write the file).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

ENV = "WAP_FAILPOINTS_FILE"
log = logging.getLogger(__name__)


def crash_if_armed(name: str) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    file = Path(path)
    try:
        armed = file.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return
    if name not in armed:
        return
    file.write_text("".join(f"{other}\n" for other in armed if other != name), encoding="utf-8")
    log.warning("Failpoint %s: killing this process (pid %s) with SIGKILL", name, os.getpid())
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGKILL)
