"""/healthz's checks: is each dependency there, and which ones must be for this process to
serve.

A load balancer polls every few seconds, so each check is cheap or remembered: the database
(`SELECT 1`) and the local media directory are checked on every probe; Slack and Cloudinary,
a network round trip each, at most every REMOTE_TTL seconds per process (a probe meanwhile
gets the last answer, and never waits behind another probe's).

Required (a 503 when down): the database, and the media directory when originals are on
local disk. Slack and Cloudinary are reported but not required: taking this process out of
rotation would not bring them back, and while they are away the app still acknowledges
Slack and keeps the work queued in the database for when they return.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import text

from bot.services import Services
from storage.media import LocalStore

log = logging.getLogger(__name__)

REMOTE_TTL = 30.0  # seconds between two real checks of Slack or Cloudinary in one process
REMOTE_TIMEOUT = 5  # seconds a real check may take


@dataclass
class Check:
    """One dependency: `probe` returns why it is down (words with no secret in them), or
    None when it is fine."""

    name: str
    required: bool
    probe: Callable[[], str | None]
    ttl: float = 0.0
    _last: tuple[float, str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def problem(self) -> str | None:
        last = self._last
        if last is not None and time.monotonic() < last[0]:
            return last[1]
        if not self._lock.acquire(blocking=last is None):
            return last[1] if last else None  # another probe is asking right now
        try:
            last = self._last
            if last is not None and time.monotonic() < last[0]:
                return last[1]  # found by the probe this one waited for
            try:
                found = self.probe()
            except Exception as exc:  # a check must answer, never crash the probe
                found = f"check failed ({type(exc).__name__})"
            if found is not None:
                log.warning("health check: %s is down: %s", self.name, found)
            self._last = (time.monotonic() + self.ttl, found)
            return found
        finally:
            self._lock.release()


class Health:
    """The checks for one process's library, built once (their memory lives here)."""

    def __init__(self, library: Services) -> None:
        settings = library.settings
        media = library.media
        self.checks = [
            Check("database", True, lambda: _database_problem(library)),
            Check(
                "media",
                isinstance(media, LocalStore),
                media.problem,
                ttl=0.0 if isinstance(media, LocalStore) else REMOTE_TTL,
            ),
        ]
        self.media_store = media.name
        self.slack_mode = settings.slack_mode
        if settings.slack_mode != "unconfigured":
            api_url = settings.slack_api_url
            self.checks.append(Check("slack", False, lambda: _slack_problem(api_url), REMOTE_TTL))

    def report(self) -> tuple[dict[str, Any], int]:
        """The JSON answer and its status: 503 when a required dependency is down."""
        answer: dict[str, Any] = {"media_store": self.media_store, "slack": "unconfigured"}
        down: list[str] = []
        reasons: dict[str, str] = {}
        failing_required = False
        for check in self.checks:
            problem = check.problem()
            answer[check.name] = "ok" if problem is None else "down"
            if problem is not None:
                down.append(check.name)
                reasons[check.name] = problem
                failing_required = failing_required or check.required
        answer.update(ok=not failing_required, down=down, reasons=reasons)
        return answer, 503 if failing_required else 200


def _database_problem(library: Services) -> str | None:
    try:
        with library.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return None


def _slack_problem(api_url: str) -> str | None:
    """Slack's api.test: needs no token, so it says whether Slack answers, whatever the
    state of any workspace's install."""
    try:
        # No retries: the next probe is the retry.
        WebClient(base_url=api_url, timeout=REMOTE_TIMEOUT, retry_handlers=[]).api_test()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return None
