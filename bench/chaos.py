"""The chaos soak's faults: what breaks, when, and for how long (bench/soak.py runs them).

A fault is a window: it starts (a storm injected into an emulator, Postgres stopped, a
process killed with SIGKILL) and ends (the storm cleared, Postgres answering again, the
process restarted and healthy). Every window is recorded with its wall-clock start and end,
so an error a person saw can be put down to the fault that was on at the time, and the ack
latency can be measured outside them.

The schedule is fixed (no randomness): the same faults in the same order every run, one at a
time with quiet gaps between them, and a quiet end (the last minute's RSS, the drain).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# Every Web API method the app calls while the soak's people use it, and the file downloads:
# a Slack storm answers all of them with the fault.
SLACK_TARGETS = (
    "auth.test",
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "chat.getPermalink",
    "views.open",
    "views.update",
    "views.publish",
    "files.info",
    "users.info",
    "users.list",
    "conversations.info",
    "conversations.members",
    "users.conversations",
    "reactions.add",
    "files.download",
)
STORM = 10**6  # Slack faults queued for a storm (a counter): every call until cleared
UPLOAD_STORM = 10_000  # Cloudinary's are one object each; uploads come a few a second
RETRY_AFTER_S = 1  # the Retry-After of Slack's 429s (slack_sdk waits that long, 3 times)
CLOUDINARY_HANG_S = 65.0  # longer than the app's upload timeout (storage.media, 60 s)
GRACE_S = 5.0  # after a window ends, its effects (reconnects, retries) may still show


@dataclass
class Window:
    """One fault, as it happened: wall-clock `start` and `end` (time.time())."""

    kind: str
    start: float
    end: float = float("inf")  # until it ended
    detail: str = ""

    def covers(self, at: float, *, grace: float = GRACE_S) -> bool:
        return self.start <= at <= self.end + grace


@dataclass(frozen=True)
class Planned:
    at_s: float  # from the start of the soak
    kind: str
    hold_s: float  # how long the storm (or Postgres's absence) lasts


class Targets(Protocol):
    """What the faults act on: the emulators, the throwaway Postgres, the app's processes."""

    slack: Any  # tests.fakes.slack_api.SlackEmulator
    cloudinary: Any  # tests.fakes.cloudinary_api.CloudinaryEmulator
    postgres: Any  # tests.pg.PostgresServer of a throwaway cluster

    def kill_and_restart(self, role: str) -> str:
        """SIGKILL one process of `role` ("web" or "worker"), start it again and wait until
        it is up; returns which one, or raises with why it did not come back."""
        ...


KINDS = (
    "kill_web",
    "kill_worker",
    "pg_restart",
    "slack_429",
    "slack_5xx",
    "cloudinary_5xx",
    "cloudinary_timeout",
)
# Which doors a person uses (Slack, the web pages, the API) each fault can make fail. A kill
# cuts the requests a web process holds; without Postgres nothing can be read or written;
# Slack's storms fail what the app asks of Slack. Nobody talks to a worker, and Cloudinary
# is only uploaded to by ingest: those faults delay images, and explain no error.
EXPLAINS = {
    "kill_web": {"slack", "web", "api"},
    "kill_worker": set(),
    "pg_restart": {"slack", "web", "api", "worker"},  # a `worker --once` fails too
    "slack_429": {"slack"},
    "slack_5xx": {"slack"},
    "cloudinary_5xx": set(),
    "cloudinary_timeout": set(),
}


def plan(duration_s: float, *, quick: bool) -> list[Planned]:
    """The faults of one soak. Quick (2 min): each of the seven once, 6 s storms 13 s apart
    after 15 s of quiet. Full (20 min): the seven in turn, 20 s storms a minute apart from
    minute 1 (two rounds and a bit); the last 4 minutes are quiet."""
    if quick:
        return [Planned(15.0 + 13.0 * n, kind, 6.0) for n, kind in enumerate(KINDS)]
    planned = [Planned(60.0 * (n + 1), KINDS[n % len(KINDS)], 20.0) for n in range(30)]
    return [p for p in planned if p.at_s + p.hold_s <= duration_s - 240.0]


@dataclass
class Chaos:
    """Runs a plan on its own thread and records each window."""

    targets: Targets
    planned: list[Planned]
    log: Callable[[str], None]
    windows: list[Window] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # faults that could not be undone
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, t0: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(t0,), name="chaos", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop early (the soak failed): the fault on now is undone before this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CLOUDINARY_HANG_S + 60)

    def window_at(self, at: float) -> Window | None:
        """The fault (or its grace period) on at wall-clock `at`, if any."""
        return next((w for w in self.windows if w.covers(at)), None)

    def explain(self, at: float, door: str) -> Window | None:
        """The fault on at `at` that can make `door` fail, if any."""
        return next((w for w in self.windows if w.covers(at) and door in EXPLAINS[w.kind]), None)

    def _run(self, t0: float) -> None:
        for item in self.planned:
            if self._stop.wait(max(0.0, t0 + item.at_s - time.time())):
                return
            window = Window(item.kind, time.time())
            self.windows.append(window)
            self.log(f"fault on: {item.kind} at {window.start - t0:.0f} s")
            try:
                window.detail, ends = self._apply(item)
            except Exception as exc:  # a fault that cannot be undone ends the soak's trust
                self.failures.append(f"{item.kind}: {type(exc).__name__}: {exc}")
                window.end = time.time()
                self.log(f"fault {item.kind} FAILED: {exc}")
                return
            window.end = ends
            self.log(f"fault off: {item.kind} at {ends - t0:.0f} s ({window.detail})")

    def _hold(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _apply(self, item: Planned) -> tuple[str, float]:
        """Do one fault and undo it; (what was done, when its effects end)."""
        t = self.targets
        if item.kind in ("kill_web", "kill_worker"):
            which = t.kill_and_restart(item.kind.removeprefix("kill_"))
            return f"{which} killed with SIGKILL and restarted", time.time()
        if item.kind == "pg_restart":
            problem = t.postgres.stop_cluster(mode="fast")
            if problem:
                raise RuntimeError(f"pg_ctl stop: {problem}")
            self._hold(min(item.hold_s, 10.0))
            problem = t.postgres.start_cluster()
            if problem:
                raise RuntimeError(f"pg_ctl start: {problem}")
            return "Postgres stopped (fast) and started again", time.time()
        if item.kind in ("slack_429", "slack_5xx"):
            for target in SLACK_TARGETS:
                if item.kind == "slack_429":
                    t.slack.inject(target, "ratelimited", times=STORM, retry_after=RETRY_AFTER_S)
                else:
                    t.slack.inject(target, "server_error", times=STORM, status=503)
            self._hold(item.hold_s)
            t.slack.clear_faults()
            what = "429 with Retry-After" if item.kind == "slack_429" else "503"
            return f"every Slack call answered {what}", time.time()
        if item.kind == "cloudinary_5xx":
            t.cloudinary.inject("unavailable", times=UPLOAD_STORM)
            self._hold(item.hold_s)
            t.cloudinary.clear_faults()
            return "every Cloudinary upload answered 503", time.time()
        if item.kind == "cloudinary_timeout":
            t.cloudinary.inject("slow", times=UPLOAD_STORM, delay=CLOUDINARY_HANG_S)
            self._hold(item.hold_s)
            t.cloudinary.clear_faults()
            # The uploads begun in the window hang on after it, holding ingest threads only.
            what = f"Cloudinary uploads begun in it hung {CLOUDINARY_HANG_S:.0f} s"
            return f"{what} (past the app's 60 s timeout)", time.time()
        raise ValueError(f"unknown fault {item.kind!r}")
