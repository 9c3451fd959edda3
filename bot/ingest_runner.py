"""Where ingest jobs run in a process: a few threads fed by a short local queue and, in the
worker (or the only process, with SQLite), by polling the database for due jobs.

With SQLite the one process does everything: it runs a job it has just recorded at once
while it holds fewer than `local_limit` (waiting or running), and polls for the rest.

With Postgres the web process's ingest shares the GIL with the acks Slack waits for, so
beside a worker it helps rather than leads ("bounded", `start_polling(bounded=True)`):
- a job it has just recorded runs at once only while it is quiet (fewer than BUSY_POSTS
  other posts in the last BUSY_WINDOW_S) and holds fewer than `local_limit` jobs: one
  image posted to a quiet library is handled without waiting for the worker's next look;
- in a flood every job stays `queued` in the database, where the worker (polling every
  POLL_SECONDS, claiming with `FOR UPDATE SKIP LOCKED`) takes it;
- it claims from the database only jobs queued for HELP_AFTER already: when the worker
  is behind, down or missing, the backlog still drains, one job at a time.

So a flood costs the web process the acks, and the backlog waits in the database, not in
memory. Nothing is lost either way: a job is in the database before its event is
acknowledged, and only a claim takes it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from bot.ingest_queue import Claim, GaveUp
from bot.ingestor import Ingestor

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how soon a job left queued (or a retry coming due) is picked up
POLL_NOW = -1  # a token in the local queue: an idle thread should poll the database now
# A web process beside a worker is busy when it recorded more than BUSY_POSTS posts within
# BUSY_WINDOW_S (bench/ack_latency.py, Postgres, 50 posts/s: its one ingest beside the acks
# doubled their p99, see bench/README.md).
BUSY_POSTS = 5
BUSY_WINDOW_S = 1.0
HELP_AFTER = timedelta(seconds=2)  # ...and claims only jobs the worker left waiting this long


class IngestRunner:
    def __init__(
        self,
        ingestor: Callable[[], Ingestor],
        *,
        workers: int,
        local_limit: int,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._ingestor = ingestor
        self._workers = workers
        # Jobs handed over by `submit`, waiting or running: at most `local_limit`.
        self._local_limit = max(1, local_limit)
        self._local_count = 0
        self._local: queue.Queue[int] = queue.Queue()
        self._poll_seconds = poll_seconds
        self._polling = False
        self._poll_bounded = False
        self._recent_posts: deque[float] = deque(maxlen=BUSY_POSTS + 1)
        self._stopping = threading.Event()
        self._poll_lock = threading.Lock()
        self._next_poll_at = 0.0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, job_ids: list[int]) -> int:
        """Take these just-recorded jobs into the local queue while it has room; returns how
        many were taken. The others stay queued in the database for a poller."""
        self._start()
        with self._lock:
            room = self._local_limit - self._local_count
            if self._poll_bounded and self._busy(time.monotonic()):
                room = 0  # the worker takes them
            taken = max(0, min(len(job_ids), room))
            self._local_count += taken
        for job_id in job_ids[:taken]:
            self._local.put_nowait(job_id)
        if taken < len(job_ids) and self._polling and not self._poll_bounded:
            self._next_poll_at = 0.0  # this process polls for the rest (SQLite): look now
            self._local.put_nowait(POLL_NOW)
        return taken

    def _busy(self, now: float) -> bool:
        """Count a post; were there more than BUSY_POSTS within BUSY_WINDOW_S?"""
        self._recent_posts.append(now)
        return (
            len(self._recent_posts) == self._recent_posts.maxlen
            and now - self._recent_posts[0] < BUSY_WINDOW_S
        )

    def start_polling(self, *, bounded: bool = False) -> None:
        """Also claim due jobs from the database (retries, abandoned jobs, and what the web
        process left queued) whenever a thread is idle. `bounded`, as the web process beside
        a worker: only while this process holds fewer than `local_limit` jobs, only jobs
        queued for HELP_AFTER, and posts recorded while busy are left to the worker (see
        the module's docstring)."""
        self._polling = True
        self._poll_bounded = bounded
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._stopping.is_set():
                return
            for n in range(self._workers):
                thread = threading.Thread(target=self._loop, name=f"ingest-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _loop(self) -> None:
        worked = False  # the last turn ran a job: look for the next one without waiting
        while True:
            try:
                job_id: int | None = (
                    self._local.get_nowait()
                    if worked
                    else self._local.get(timeout=self._poll_seconds)
                )
            except queue.Empty:
                job_id = None
            worked = False
            if job_id == POLL_NOW:
                job_id = None
            elif job_id is None and self._stopping.is_set():
                return  # drained
            try:
                if job_id is not None:
                    worked = True
                    try:
                        self._ingestor().run(job_id)
                    finally:
                        with self._lock:
                            self._local_count -= 1
                elif self._polling and not self._stopping.is_set():
                    claimed = self._poll()
                    if claimed is not None:
                        worked = True
                        try:
                            self._ingestor().settle(claimed)
                        finally:
                            self._unhold()
            except Exception:
                # Claiming failed (the database is away): the job stays in the database.
                log.exception("ingest thread: could not run a job; it stays queued")
                self._stopping.wait(self._poll_seconds)

    def _poll(self) -> Claim | GaveUp | None:
        """Claim a due job. While jobs are due every idle thread claims at once; when none
        was due, the next look is `poll_seconds` later (one query a second when idle, which
        matters on SQLite, where every transaction takes the single write lock)."""
        with self._poll_lock:
            if time.monotonic() < self._next_poll_at:
                return None
            if self._poll_bounded:
                with self._lock:
                    if self._local_count >= self._local_limit:
                        return None
                    self._local_count += 1  # held while the claimed job runs
            try:
                claimed = self._ingestor().claim_next(
                    queued_for=HELP_AFTER if self._poll_bounded else timedelta(0)
                )
            except BaseException:
                self._unhold()
                raise
            if claimed is None:
                self._unhold()
                self._next_poll_at = time.monotonic() + self._poll_seconds
            elif self._local.empty():
                # There was work: wake one more idle thread to look at once, so all of them
                # are busy within a few claims while jobs are due.
                self._local.put_nowait(POLL_NOW)
            return claimed

    def _unhold(self) -> None:
        if self._poll_bounded:
            with self._lock:
                self._local_count -= 1

    def shutdown(self, timeout: float = 20.0) -> None:
        """Finish what the local queue holds, for up to `timeout` seconds, then stop. Jobs
        not started by then stay queued in the database for the next process."""
        with self._lock:
            threads = list(self._threads)
            self._stopping.set()
        for thread in threads:
            thread.join(timeout / max(1, len(threads)))
