"""Coalesced background refreshes: at most one run in flight and one waiting per key.

Used for the App Home after ingests: a poster whose 50 images arrive in a second needs their
Home tab to show the result, not 50 successive versions of it (each two queries and a
views.publish, a tier-4 method Slack limits to about 100 a minute). A refresh reads the state
when it starts, so a change made before a waiting refresh starts is covered by it; a change
made while one runs schedules exactly one more. Runs of one key are at least `min_interval`
seconds apart.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Coalescer(Generic[K]):
    def __init__(
        self,
        run: Callable[[K], None],
        *,
        min_interval: float = 1.0,
        threads: int = 2,
        name: str = "refresh",
    ) -> None:
        self._run = run
        self._min_interval = min_interval
        self._threads_wanted = threads
        self._name = name
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, K]] = []  # heap of (when, seq, key)
        self._waiting: set[K] = set()
        self._running: set[K] = set()
        self._again: set[K] = set()
        self._last_start: dict[K, float] = {}
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def request(self, key: K) -> None:
        """Make sure a run of `key` starts after this call (soon, or at `min_interval`
        after the previous one)."""
        with self._cond:
            if self._stopping or key in self._waiting:
                return
            if key in self._running:
                self._again.add(key)
                return
            self._schedule(key)
            if not self._threads:
                for n in range(self._threads_wanted):
                    thread = threading.Thread(
                        target=self._loop, name=f"{self._name}-{n}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)

    def _schedule(self, key: K) -> None:
        when = max(time.monotonic(), self._last_start.get(key, 0.0) + self._min_interval)
        self._seq += 1
        heapq.heappush(self._due, (when, self._seq, key))
        self._waiting.add(key)
        self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping and not self._due:
                        return
                    now = time.monotonic()
                    if self._due and self._due[0][0] <= now:
                        _, _, key = heapq.heappop(self._due)
                        break
                    self._cond.wait(self._due[0][0] - now if self._due else None)
                self._waiting.discard(key)
                self._running.add(key)
                self._last_start[key] = now
                if len(self._last_start) > 10_000:  # forget keys idle for a while
                    cutoff = now - 10 * self._min_interval
                    self._last_start = {k: t for k, t in self._last_start.items() if t > cutoff}
            try:
                self._run(key)
            except Exception:
                log.exception("%s of %s failed", self._name, key)
            with self._cond:
                self._running.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self._schedule(key)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Run what is waiting (without waiting out the intervals), then stop."""
        with self._cond:
            self._stopping = True
            self._due = [(0.0, seq, key) for _, seq, key in self._due]
            heapq.heapify(self._due)
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout / max(1, len(threads)))
