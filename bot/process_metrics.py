"""Where gunicorn's worker processes keep their counters for /metrics (prometheus_client's
multiprocess mode): a directory of this start's own, made by the master before it forks.

Each start gets a new one unless the operator set PROMETHEUS_MULTIPROC_DIR (then theirs is
used, and kept): last start's files must not be summed into this one's. The master removes
its directory when it exits; one whose master was killed (SIGKILL, an out-of-memory kill) is
removed by the next start on the machine, which tells by the master's pid in its name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "imglib-metrics-"


def directory_for_this_start() -> str | None:
    """Set PROMETHEUS_MULTIPROC_DIR to a new directory unless it is set; return the one made.
    Call it before anything imports prometheus_client, which picks its mode on import."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            remove(str(folder))
    made = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def gone(pid: int) -> None:
    """A worker exited: its live gauges stop counting (gunicorn's child_exit hook)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def remove(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
