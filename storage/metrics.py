"""The app's Prometheus metrics: their one definition, and the facts read from the database.

Defined here, in the lowest layer, so that every layer counts into the same objects: the
front doors (Slack acks, Web API errors), the library, and storage itself (Cloudinary errors).
Every label takes values from a short fixed list: metrics are not access-controlled per
person, so no team, user, channel, tag, title or other text a person typed ever becomes one.

Counters and histograms live in the process that counts. Under gunicorn every worker writes
them to files in PROMETHEUS_MULTIPROC_DIR (set by `python -m bot serve`) and a scrape of any
worker sums them all. What is true of the library as a whole (the ingest queue, approvals
waiting) is a fact in the database instead: `LibraryFacts` reads it at scrape time, so it is
right whichever process, on whichever machine, did the work.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from storage.db import session_scope
from storage.models import ApprovalRequest, IngestJob, IngestState

log = logging.getLogger(__name__)

# Slack's deadline is 3 s; the app aims for well under 100 ms.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)

SLACK_ACK_SECONDS = Histogram(
    "imglib_slack_ack_seconds",
    "Time from a request from Slack arriving at /slack/events to its answer, by kind",
    ["kind"],
    buckets=ACK_BUCKETS,
)
SLACK_REQUESTS = Counter(
    "imglib_slack_requests",
    "Requests from Slack at /slack/events, by kind, type and outcome",
    ["kind", "type", "outcome"],
)
SLACK_API_ERRORS = Counter(
    "imglib_slack_api_errors",
    "Slack Web API calls that failed (after the client's own retries), by method and error",
    ["method", "status", "error"],
)
CLOUDINARY_ERRORS = Counter(
    "imglib_cloudinary_errors",
    "Cloudinary API calls that failed, by operation and status",
    ["operation", "status"],
)

# Why failed ingest jobs failed, as a few categories: (category, a fragment of the reasons
# that the ingest, the downloads and the media stores write, in lower case). The first match
# wins; "download" is fetching the file (from Slack, or an upload's own disk).
FAILURE_REASONS = (
    ("unfinished", "did not finish"),  # the process died mid-attempt, every time
    ("too_large", "mb, the limit"),
    ("too_large", "megapixels"),
    ("too_large", "would need about"),
    ("too_large", "too large"),
    ("not_an_image", "not an image"),
    ("not_an_image", "cannot be read"),
    ("not_an_image", "file is empty"),
    ("media_store", "cloudinary"),
    ("media_store", "to disk"),
    ("internal", "internal error"),
    ("download", "slack"),
    ("download", "not installed"),
    ("download", "file"),
)

_SAFE_LABEL = re.compile(r"[A-Za-z0-9_.]{1,48}")


def label(value: object, *, allowed: frozenset[str] | None = None) -> str:
    """`value` as a label when it is short and plain (and in `allowed`, if given), else
    "other": a label never grows without bound, whatever a remote service answers."""
    text = str(value)
    if allowed is not None:
        return text if text in allowed else "other"
    return text if _SAFE_LABEL.fullmatch(text) else "other"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class LibraryFacts(Collector):
    """Gauges read from the database at scrape time, with cheap queries on indexed columns
    (ingest_jobs by state; open approval requests). When the database cannot be read, only
    `imglib_database_up 0` is reported and the scrape still succeeds."""

    def __init__(self, factory: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self._factory = factory
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "imglib_database_up", "1 when the scrape could read the database, else 0"
        )
        try:
            facts = list(self._read())
        except Exception as exc:  # the scrape must still answer, and say so
            log.warning("metrics: could not read the database (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from facts

    def _read(self) -> Iterator[Metric]:
        now = self._clock()
        waiting = (IngestState.QUEUED, IngestState.RUNNING)
        with session_scope(self._factory) as session:
            by_state = dict(
                session.execute(
                    select(IngestJob.state, func.count())
                    .where(IngestJob.state.in_(waiting))
                    .group_by(IngestJob.state)
                ).all()
            )
            oldest = session.scalar(
                select(func.min(IngestJob.created_at)).where(IngestJob.state.in_(waiting))
            )
            failed = {name: int(jobs) for name, jobs in session.execute(_failed_by_category())}
            approvals = session.scalar(
                select(func.count())
                .select_from(ApprovalRequest)
                .where(ApprovalRequest.state == "open")
            )
        jobs = GaugeMetricFamily(
            "imglib_ingest_jobs",
            "Ingest jobs waiting (queued) or under way (running)",
            labels=["state"],
        )
        for state in waiting:
            jobs.add_metric([state.value], by_state.get(state.value, 0))
        yield jobs
        age = (now - _aware(oldest, now)).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "imglib_ingest_oldest_job_age_seconds",
            "Age of the oldest ingest job not yet stored or failed (0 when none waits)",
            value=max(0.0, age),
        )
        reasons = GaugeMetricFamily(
            "imglib_ingest_failed_jobs",
            "Ingest jobs that failed for good, by category of reason",
            labels=["reason"],
        )
        for name in sorted({name for name, _ in FAILURE_REASONS} | {"other"}):
            reasons.add_metric([name], failed.get(name, 0))
        yield reasons
        yield GaugeMetricFamily(
            "imglib_approval_requests_open",
            "Approval requests waiting for a decision",
            value=approvals or 0,
        )


def _failed_by_category() -> Select[tuple[str, int]]:
    """(category, jobs) of failed jobs. Reasons repeat, so each distinct one is matched
    against the categories once (10,000 failed jobs: 6 ms where matching every row took 40;
    bench/README.md, "/metrics")."""
    reasons = (
        select(IngestJob.last_error.label("reason"), func.count().label("jobs"))
        .where(IngestJob.state == IngestState.FAILED)
        .group_by(IngestJob.last_error)
        .subquery()
    )
    text = func.lower(reasons.c.reason)
    category = case(
        *((text.contains(part), name) for name, part in FAILURE_REASONS), else_=literal("other")
    )
    return select(category, func.sum(reasons.c.jobs)).group_by(category)


def _aware(moment: datetime, now: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC).
    return moment.replace(tzinfo=now.tzinfo) if moment.tzinfo is None else moment


def exposition(facts: Collector) -> bytes:
    """Every metric of this app in the Prometheus text format: the counters of every worker
    process (multiprocess mode) or of this process, and the database's facts."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    registry.register(facts)
    return generate_latest(registry)


class _ThisProcess(Collector):
    """The default registry's metrics (this process's counters, its CPU and memory)."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()
