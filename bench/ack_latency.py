"""Ack-latency benchmark: the app in HTTP mode under gunicorn, against the Slack emulator,
receiving 50 signed image-post events a second for 30 seconds (goals: p99 ack under 50 ms,
every image stored within 5 s of the last post).

    .venv/bin/python bench/ack_latency.py                  # full: SQLite, then Postgres; < 5 min
    .venv/bin/python bench/ack_latency.py --quick          # 10 s of events, SQLite only; < 60 s
    .venv/bin/python bench/ack_latency.py --postgres URL   # one run on that Postgres server

Figures go to stdout as `name: value` lines; progress and the database used go to stderr. The
exit status is 1 when an image was lost or stored twice, a request was not answered 200, or
anything else failed (the app not starting, a timeout), with the reason and the app log's tail.

The emulator runs in this process and the app as a subprocess (`python -m bot serve`, started
by tests.conftest.AppProcess). Events go out on an open-loop schedule (event i at i / rate
seconds, whatever the earlier replies are doing) from a pool of sender threads, so a slow app
shows up as latency, not as a lower rate; 5 % of them are delivered a second time as Slack's
retries (`X-Slack-Retry-Num: 1`). See bench/README.md for what each figure means.

Only 127.0.0.1 is ever contacted (and the Postgres server given or found, on loopback here).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import (  # noqa: E402 - needs ROOT on sys.path
    Database,
    Expected,
    exactly_once,
    finish,
    make_images,
    migrate,
    percentile,
    postgres_database,
    postgres_server,
    start_slack,
    watch_channel,
)
from bench.ingest import (  # noqa: E402
    MB,
    POSTER,
    BenchError,
    TreeSampler,
    info,
)

CHANNEL = "C0ACKS"

RATE = 50  # events per second
DURATION_S = 30.0
QUICK_DURATION_S = 10.0
SENDERS = 32  # sender threads: at 50/s they run short only if answers take over 640 ms
RETRY_EVERY = 20  # every 20th event is delivered again as a Slack retry: 5 %
RETRY_DELAY_S = (0.05, 2.0)  # after the first delivery was sent, uniformly (seeded)
WARMUP_EVENTS = 5  # sent one by one before the timed phase, not in the latency figures

APP_START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0  # SlackSender's own timeout; Slack gives up after 3 s
DISPATCH_GRACE_S = 30.0  # stop sending if the schedule runs this late
STORE_TIMEOUT_S = 120.0  # after the last send, for every image to be stored
POLL_EVERY_S = 0.1
FULL_BUDGET_S = 280.0  # the full run skips (or shortens) its Postgres run to stay under 5 min
GOAL_P99_MS = 50.0
GOAL_AFTER_LAST_S = 5.0  # every image stored within this long after the last post
STEP_RATES = (50.0, 60.0, 70.0, 85.0, 100.0, 120.0, 150.0, 200.0)  # --sustained, in order
STEP_S = 10.0


def figure(name: str, value: float, digits: int) -> None:
    print(f"{name}: {value:.{digits}f}", flush=True)


# --------------------------------------------------------------------------------------------
# Images and events


@dataclass(frozen=True)
class Planned:
    offset_s: float  # from the start of the timed phase
    index: int  # into the envelopes
    retry: bool


def plan(events: int, rate: float, seed: int = 7) -> list[Planned]:
    """Event i at i / rate; every RETRY_EVERY-th one again a little later, as a retry."""
    rng = random.Random(seed)
    items = [Planned(i / rate, i, retry=False) for i in range(events)]
    items += [
        Planned(i / rate + rng.uniform(*RETRY_DELAY_S), i, retry=True)
        for i in range(RETRY_EVERY // 2, events, RETRY_EVERY)
    ]
    return sorted(items, key=lambda p: (p.offset_s, p.retry))


# --------------------------------------------------------------------------------------------
# Sending


@dataclass(frozen=True)
class Sent:
    planned: Planned
    lag_s: float  # actual send minus scheduled send
    latency_s: float | None  # send to the full answer; None when there was no answer
    status: int  # 0 when there was no HTTP answer
    error: str = ""


@dataclass
class Delivery:
    results: list[Sent] = field(default_factory=list)
    unsent: int = 0
    first_send: datetime | None = None  # wall clock, to compare with the app's timestamps
    last_send: datetime | None = None
    elapsed_s: float = 0.0


def deliver(sender: Any, envelopes: list[dict[str, Any]], schedule: list[Planned]) -> Delivery:
    """Open loop: a dispatcher hands each event to the sender pool at its scheduled time."""
    out = Delivery()
    lock = threading.Lock()

    def send(item: Planned, due: float) -> None:
        started = time.perf_counter()
        try:
            reply = sender.event(envelopes[item.index], retry_num=1 if item.retry else None)
            result = Sent(item, started - due, reply.elapsed, reply.status)
        except (OSError, http.client.HTTPException) as exc:
            result = Sent(item, started - due, None, 0, f"{type(exc).__name__}: {exc}")
        with lock:
            out.results.append(result)

    last = schedule[-1].offset_s if schedule else 0.0
    pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="sender")
    futures = []
    try:
        t0 = time.perf_counter()
        out.first_send = datetime.now(UTC)
        next_report = 5.0
        for n, item in enumerate(schedule):
            now = time.perf_counter()
            if now - t0 > last + DISPATCH_GRACE_S:
                out.unsent = len(schedule) - n
                info(f"the schedule ran {DISPATCH_GRACE_S:.0f} s late: {out.unsent} not sent")
                break
            due = t0 + item.offset_s
            if due > now:
                time.sleep(due - now)
            futures.append(pool.submit(send, item, due))
            if not item.retry:  # the last post, not a redelivery of an earlier one
                out.last_send = datetime.now(UTC)
            if item.offset_s >= next_report:
                with lock:
                    done = len(out.results)
                    ok = sum(1 for r in out.results if r.status == 200)
                info(f"  {item.offset_s:4.0f} s: {n + 1} sent, {done} answered, {ok} with 200")
                next_report += 5.0
        _, pending = wait_futures(futures, timeout=REQUEST_TIMEOUT_S + 20)
        if pending:
            info(f"{len(pending)} requests still open after the timeout")
        out.elapsed_s = time.perf_counter() - t0
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # open requests end by their timeout
    return out


# --------------------------------------------------------------------------------------------
# Databases


def sqlite_database(work: Path) -> Database:
    path = work / "library.db"
    url = f"sqlite:///{path}"
    migrate(url)
    return Database("sqlite", url, f"SQLite file {path}")


# --------------------------------------------------------------------------------------------
# One run


@dataclass
class Outcome:
    figures: list[tuple[str, float, int]]
    problems: list[str]


def final_counts(url: str, slack: Any, file_ids: list[str]) -> dict[str, Any]:
    """After the app stopped: what is stored, what is missing, what is there twice (one
    image per message here), with when the last image was stored."""
    from sqlalchemy import func, select

    from storage.db import make_engine
    from storage.models import IngestJob, IngestState, ProcessedEvent

    counts = exactly_once(url, slack, Expected(file_ids=file_ids, messages=len(file_ids)))
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            last_stored = connection.scalar(
                select(func.max(IngestJob.updated_at)).where(IngestJob.state == IngestState.STORED)
            )
            processed = connection.scalar(select(func.count()).select_from(ProcessedEvent))
    finally:
        engine.dispose()
    return {
        "lost": counts.images_lost,
        "duplicated": counts.images_duplicated,
        "unexpected": counts.images_unexpected,
        "duplicate_ingests": counts.ingested_twice,
        "errors": counts.errors,
        "last_stored": last_stored,
        "processed_events": processed,
        "prompts_missing": counts.prompts_missing,
        "prompts_extra": counts.prompts_extra,
    }


@dataclass
class Phase:
    """One stretch of open-loop load on the running app, and what became of it."""

    rate: float
    delivery: Delivery
    schedule: list[Planned]
    latencies: list[float]  # ms, every answered request of the phase
    states: Counter[str]
    settled_s: float  # from the phase's last send until every image so far was stored (nan: not)


class RunningApp:
    """The web process (and, with Postgres, the worker), warmed up, for one database."""

    def __init__(self, slack: Any, db: Database, work: Path, warm_ids: list[str]) -> None:
        from tests.conftest import SIGNING_SECRET, AppProcess, app_env
        from tests.fakes.signed import SlackSender

        self.slack, self.db = slack, db
        env = app_env(database_url=db.url, slack=slack, media_dir=work / "media")
        env.update({"CLOUDINARY_URL": "", "PUBLIC_BASE_URL": ""})  # a stray .env must not count
        slack.clear_calls()
        watch_channel(env, CHANNEL)
        self.web = AppProcess(["serve"], env, work / "app.log")
        # With Postgres, retries, sweeps and the jobs the web process leaves queued when busy
        # run in a separate worker process (the Procfile's `worker`); with SQLite the web
        # process does it all.
        self.worker = (
            AppProcess(["worker"], env, work / "worker.log") if db.kind == "postgres" else None
        )
        try:
            self.web.start(timeout=APP_START_TIMEOUT_S)
            if self.worker is not None:
                # The worker serves no HTTP: start() returns as soon as the web process's
                # /healthz answers, while the worker is still running.
                self.worker.start(timeout=APP_START_TIMEOUT_S)
        except AssertionError as exc:
            self.stop()
            raise BenchError(f"the app did not start: {exc}") from None
        assert self.web.process is not None
        self.sender = SlackSender(self.web.url + "/slack/events", SIGNING_SECRET)
        self.expected = 0
        # Warm-up: the first requests pay for lazy imports and the first database connections.
        warm = []
        for file_id in warm_ids:
            envelope = slack.message_event(channel=CHANNEL, user=POSTER, files=[file_id])
            reply = self.sender.event(envelope)
            if reply.status != 200:
                self.stop()
                raise BenchError(f"warm-up event answered {reply.status}: {reply.body[:300]!r}")
            warm.append(reply.elapsed * 1000)
            self.expected += 1
        info("warm-up acks (ms): " + ", ".join(f"{v:.0f}" for v in warm))
        time.sleep(1.0)  # let the warm-up's ingests finish
        db.analyze()
        self.sampler = TreeSampler(self.web.process.pid, limit_s=600)
        self.worker_sampler = (
            TreeSampler(self.worker.process.pid, limit_s=600)
            if self.worker is not None and self.worker.process is not None
            else None
        )
        self.idle_rss = self.sampler.rss()

    def cpu_s(self) -> tuple[float, float]:
        """CPU seconds so far of the web process tree and of the worker."""
        worker = tree_cpu_s(self.worker_sampler) if self.worker_sampler else 0.0
        return tree_cpu_s(self.sampler), worker

    def phase(self, file_ids: list[str], rate: float, *, settle_timeout_s: float) -> Phase:
        """Send one event per file at `rate` (plus 5 % retries), then wait up to
        `settle_timeout_s` after the last send for every image so far to be stored."""
        envelopes = [
            self.slack.message_event(channel=CHANNEL, user=POSTER, files=[file_id])
            for file_id in file_ids
        ]
        schedule = plan(len(envelopes), rate)
        info(
            f"sending {len(envelopes)} events at {rate:g}/s for {len(envelopes) / rate:.0f} s "
            f"(+{len(schedule) - len(envelopes)} retries) from {SENDERS} threads"
        )
        delivery = deliver(self.sender, envelopes, schedule)
        self.expected += len(envelopes)
        assert delivery.last_send is not None
        deadline = delivery.last_send.timestamp() + settle_timeout_s
        states: Counter[str] = Counter()
        settled_s = float("nan")
        while True:
            states = self.db.states()
            if states["stored"] + states["failed"] >= self.expected:
                settled_s = time.time() - delivery.last_send.timestamp()
                break
            if time.time() > deadline:
                break
            time.sleep(POLL_EVERY_S)
        info(f"job states {settled_s:.1f} s after the last send: {dict(states)}")
        latencies = [r.latency_s * 1000 for r in delivery.results if r.latency_s is not None]
        return Phase(rate, delivery, schedule, latencies, states, settled_s)

    def stop(self) -> None:
        self.web.stop()
        if self.worker is not None:
            self.worker.stop()

    def tail_logs(self) -> None:
        tail_logs(self.web, self.worker)


def run_once(
    slack: Any,
    file_ids: list[str],
    db: Database,
    work: Path,
    *,
    events: int,
    rate: float,
    store_timeout_s: float,
) -> Outcome:
    warm_ids, timed_ids = file_ids[:WARMUP_EVENTS], file_ids[WARMUP_EVENTS : WARMUP_EVENTS + events]
    app = RunningApp(slack, db, work, warm_ids)
    problems: list[str] = []
    try:
        with app.sampler:
            (cpu0, worker_cpu0), wall0 = app.cpu_s(), time.perf_counter()
            phase = app.phase(timed_ids, rate, settle_timeout_s=store_timeout_s)
            (cpu1, worker_cpu1), wall = app.cpu_s(), time.perf_counter() - wall0
        worker_peak = app.worker_sampler.hwm_sum() if app.worker_sampler else None
    except BenchError:
        app.tail_logs()
        app.stop()
        raise
    app.stop()
    delivery, schedule = phase.delivery, phase.schedule

    counts = final_counts(db.url, slack, warm_ids + timed_ids)
    answered = [r for r in delivery.results if r.latency_s is not None]
    latencies = phase.latencies
    non_200 = sum(1 for r in delivery.results if r.status != 200) + delivery.unsent
    statuses = Counter(r.status for r in delivery.results if r.status != 200)
    errors = Counter(r.error.split(":")[0] for r in delivery.results if r.error)
    retry_latencies = [r.latency_s * 1000 for r in answered if r.planned.retry and r.latency_s]
    last = counts["last_stored"]
    assert delivery.first_send is not None and delivery.last_send is not None
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    all_stored = (last - delivery.first_send).total_seconds() if last is not None else float("nan")
    after_last = (last - delivery.last_send).total_seconds() if last is not None else float("nan")
    if counts["lost"]:
        all_stored = after_last = float("nan")  # never: some image was not stored

    figures = [
        ("events", events, 0),
        ("retries_sent", len(schedule) - events, 0),
        ("ack_p50_ms", percentile(latencies, 50), 1),
        ("ack_p95_ms", percentile(latencies, 95), 1),
        ("ack_p99_ms", percentile(latencies, 99), 1),
        ("ack_max_ms", max(latencies, default=float("nan")), 1),
        ("ack_p99_ms_retries", percentile(retry_latencies, 99), 1),
        ("send_lag_p99_ms", percentile([r.lag_s * 1000 for r in delivery.results], 99), 1),
        ("non_200", non_200, 0),
        ("all_stored_s", all_stored, 2),
        ("stored_after_last_post_s", after_last, 2),
        ("lost", counts["lost"], 0),
        ("duplicated", counts["duplicated"], 0),
        ("duplicate_ingests", counts["duplicate_ingests"], 0),
        ("prompts_missing", counts["prompts_missing"], 0),
        ("prompts_extra", counts["prompts_extra"], 0),
        ("idle_rss_mb", app.idle_rss / MB, 1),
        ("peak_rss_mb", app.sampler.peak / MB, 1),
        ("app_cpu_cores", (cpu1 - cpu0) / wall, 2),
        # The app's CPU (web and worker) per event, until the last image was stored: unlike
        # the latencies, steady on a busy host, so two versions compare in one minute.
        ("app_cpu_ms_per_image", (cpu1 - cpu0 + worker_cpu1 - worker_cpu0) * 1000 / events, 1),
    ]
    if worker_peak is not None:
        figures.append(("worker_cpu_cores", (worker_cpu1 - worker_cpu0) / wall, 2))
        figures.append(("worker_peak_rss_mb", worker_peak / MB, 1))

    # What a person's library costs in Slack calls: per image, by method (warm-up included).
    with slack._lock:
        methods = Counter(c.method for c in slack.calls)
    info(
        "Slack calls per image: "
        + ", ".join(f"{m} {n / (events + WARMUP_EVENTS):.2f}" for m, n in methods.most_common())
    )
    downloads = Counter(c.params.get("file_id") for c in slack.calls_to("files.download"))
    extra_downloads = sum(n - 1 for f, n in downloads.items() if f in set(timed_ids) and n > 1)
    info(
        f"{len(delivery.results)} answers ({len(answered)} over HTTP), "
        f"{counts['processed_events']} distinct events recorded, "
        f"{extra_downloads} files downloaded more than once"
    )
    if statuses or errors:
        info(f"non-200 answers by status: {dict(statuses)}; errors: {dict(errors)}")
    if counts["errors"]:
        info("ingest errors: " + "; ".join(f"{e} x{n}" for e, n in counts["errors"].items()))
    problems += count_problems(counts, non_200, statuses, errors, store_timeout_s)
    problems += prompt_problems(slack, warm_ids + timed_ids)
    if problems:
        app.tail_logs()
    return Outcome(figures, problems)


def count_problems(
    counts: dict[str, Any],
    non_200: int,
    statuses: Counter[int],
    errors: Counter[str],
    store_timeout_s: float,
) -> list[str]:
    problems = []
    if non_200:
        problems.append(f"{non_200} events not answered 200 ({dict(statuses)}, {dict(errors)})")
    if counts["lost"]:
        problems.append(f"{counts['lost']} images not stored within {store_timeout_s:.0f} s")
    if counts["duplicated"] or counts["unexpected"]:
        problems.append(
            f"{counts['duplicated']} duplicated images, {counts['unexpected']} unexpected"
        )
    if counts["duplicate_ingests"]:
        problems.append(f"{counts['duplicate_ingests']} images ingested more than once")
    return problems


def prompt_problems(slack: Any, file_ids: list[str]) -> list[str]:
    """Every poster told once per message: one private prompt per posted message."""
    told = Counter(
        c.params.get("channel")
        for c in slack.calls_to("chat.postEphemeral")
        if c.params.get("user") == POSTER and c.status == 200
    )
    wanted = len(file_ids)  # one image per message
    if told[CHANNEL] != wanted:
        return [f"{told[CHANNEL]} prompts for {wanted} messages"]
    return []


def run_steps(
    slack: Any,
    file_ids: list[str],
    db: Database,
    work: Path,
    *,
    rates: list[float],
    step_s: float,
    settle_s: float,
) -> Outcome:
    """The highest sustained rate: step the rate up, `step_s` seconds each on the same app;
    a rate is sustained when every image so far is stored within `settle_s` after the
    step's last post (the queue did not grow), with the ack p99 under 3 s (Slack's limit)."""
    warm_ids = file_ids[:WARMUP_EVENTS]
    app = RunningApp(slack, db, work, warm_ids)
    used = WARMUP_EVENTS
    sustained = 0.0
    figures: list[tuple[str, float, int]] = []
    try:
        for rate in rates:
            count = round(rate * step_s)
            ids = file_ids[used : used + count]
            used += count
            cpu0, wall0 = sum(app.cpu_s()), time.perf_counter()
            phase = app.phase(ids, rate, settle_timeout_s=settle_s)
            cores = (sum(app.cpu_s()) - cpu0) / (time.perf_counter() - wall0)
            p99 = percentile(phase.latencies, 99)
            ok = phase.settled_s <= settle_s and p99 < 3000 and not phase.delivery.unsent
            info(
                f"rate {rate:g}/s: ack p99 {p99:.1f} ms, settled {phase.settled_s:.1f} s after "
                f"the last post, {cores:.2f} cores (web + worker): "
                + ("sustained" if ok else "NOT sustained")
            )
            tag = f"{rate:g}".replace(".", "_")
            backlog = app.expected - phase.states["stored"] - phase.states["failed"]
            figures += [
                (f"step_{tag}_ack_p99_ms", p99, 1),
                (f"step_{tag}_settled_s", phase.settled_s, 2),
                (f"step_{tag}_backlog", backlog, 0),
                (f"step_{tag}_cpu_cores", cores, 2),
            ]
            if not ok:
                break
            sustained = rate
        # Whatever happened, everything sent must end up stored, once.
        deadline = time.monotonic() + STORE_TIMEOUT_S
        while time.monotonic() < deadline:
            states = db.states()
            if states["stored"] + states["failed"] >= app.expected:
                break
            time.sleep(POLL_EVERY_S)
    finally:
        app.stop()
    counts = final_counts(db.url, slack, file_ids[:used])
    problems = count_problems(counts, 0, Counter(), Counter(), STORE_TIMEOUT_S)
    problems += prompt_problems(slack, file_ids[:used])
    if problems:
        app.tail_logs()
    return Outcome([("sustained_rate", sustained, 0), *figures], problems)


def tree_cpu_s(sampler: TreeSampler) -> float:
    """User + system CPU seconds of the app's live processes."""
    import psutil

    total = 0.0
    for proc in sampler.processes():
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def tail_logs(web: Any, worker: Any) -> None:
    for process, name in ((web, "app"), (worker, "worker")):
        if process is not None and process.log_path.is_file():
            info(f"{name} log (tail):\n" + process.logs()[-3000:])


# --------------------------------------------------------------------------------------------
# Main


def run_database(
    label: str,
    make_db: Callable[[Path], Database],
    slack: Any,
    file_ids: list[str],
    *,
    events: int,
    rate: float,
    suffix: str,
    store_timeout_s: float,
    sustained: bool = False,
) -> list[str]:
    with tempfile.TemporaryDirectory(prefix=f"bench-ack-{label}-") as tmp:
        work = Path(tmp)
        db = make_db(work)
        info(f"database: {db.describe}")
        try:
            started = time.perf_counter()
            if sustained:
                outcome = run_steps(
                    slack,
                    file_ids,
                    db,
                    work,
                    rates=list(STEP_RATES),
                    step_s=STEP_S,
                    settle_s=GOAL_AFTER_LAST_S,
                )
            else:
                outcome = run_once(
                    slack,
                    file_ids,
                    db,
                    work,
                    events=events,
                    rate=rate,
                    store_timeout_s=store_timeout_s,
                )
        finally:
            db.cleanup()
    for name, value, digits in outcome.figures:
        figure(name + suffix, value, digits)
    values = {n: v for n, v, _ in outcome.figures}
    if "ack_p99_ms" in values:
        p99, after = values["ack_p99_ms"], values["stored_after_last_post_s"]
        verdict = "met" if p99 < GOAL_P99_MS and after <= GOAL_AFTER_LAST_S else "NOT met"
        info(
            f"goals ({db.kind}): ack p99 {p99:.1f} ms < {GOAL_P99_MS:.0f} ms, all stored "
            f"{after:.2f} s <= {GOAL_AFTER_LAST_S:.0f} s after the last post: {verdict}"
        )
    info(f"{db.kind} run took {time.perf_counter() - started:.1f} s")
    return [f"{db.kind}: {p}" for p in outcome.problems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s of events, SQLite only")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run once, on a throwaway database created from this PostgreSQL URL (e.g. "
        "postgresql://postgres@127.0.0.1:5432/test) and dropped after; unsuffixed figures",
    )
    parser.add_argument("--sqlite", action="store_true", help="full run on SQLite only")
    parser.add_argument(
        "--sustained",
        action="store_true",
        help="find the highest sustained rate instead: 10 s at each of "
        + ", ".join(f"{r:g}" for r in STEP_RATES)
        + " events/s on one app, until the images are not all stored within "
        f"{GOAL_AFTER_LAST_S:g} s of a step's last post",
    )
    parser.add_argument("--rate", type=float, default=RATE, help="events per second (1-200)")
    parser.add_argument("--seconds", type=float, help="seconds of events (1-60)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_DURATION_S if args.quick else DURATION_S)
    if not 1 <= args.rate <= 200 or not 1 <= seconds <= 60:
        parser.error("--rate must be 1-200 and --seconds 1-60")
    if args.postgres and args.sqlite:
        parser.error("--postgres and --sqlite exclude each other")
    events = round(args.rate * seconds)
    if args.sustained:
        if args.quick:
            parser.error("--sustained and --quick exclude each other")
        events = round(sum(r * STEP_S for r in STEP_RATES))

    from tests.pg import find_postgres

    started = time.perf_counter()
    problems: list[str] = []
    try:
        images = make_images(WARMUP_EVENTS + events)
        slack, file_ids = start_slack(images, channel=CHANNEL)
        del images
        try:
            if args.postgres:
                server, _ = postgres_server(args.postgres)
                problems += run_database(
                    "pg",
                    lambda _work: postgres_database(server),
                    slack,
                    file_ids,
                    events=events,
                    rate=args.rate,
                    suffix="",
                    store_timeout_s=STORE_TIMEOUT_S,
                    sustained=args.sustained,
                )
            else:
                problems += run_database(
                    "sqlite",
                    sqlite_database,
                    slack,
                    file_ids,
                    events=events,
                    rate=args.rate,
                    suffix="",
                    store_timeout_s=STORE_TIMEOUT_S,
                    sustained=args.sustained,
                )
            if not (args.postgres or args.sqlite or args.quick):
                problems += second_run_on_postgres(
                    slack,
                    file_ids,
                    events,
                    args.rate,
                    seconds,
                    started,
                    find_postgres,
                    sustained=args.sustained,
                )
        finally:
            slack.stop()
    except BenchError as exc:
        problems.append(str(exc))
    return finish(started, problems)


def second_run_on_postgres(
    slack: Any,
    file_ids: list[str],
    events: int,
    rate: float,
    seconds: float,
    started: float,
    find_postgres: Callable[[], tuple[Any, str]],
    *,
    sustained: bool = False,
) -> list[str]:
    """The full run's second pass, on Postgres, if one is found and there is time left."""
    left = FULL_BUDGET_S - (time.perf_counter() - started)
    store_timeout = min(STORE_TIMEOUT_S, left - seconds - 25)
    if sustained:
        store_timeout = STORE_TIMEOUT_S  # bounded by its steps instead
    elif store_timeout < 20:
        info(f"Postgres run skipped: {left:.0f} s left of the {FULL_BUDGET_S:.0f} s budget")
        return []
    server, source = find_postgres()
    if server is None:
        info(f"Postgres run skipped: {source}")
        return []
    info(f"PostgreSQL: {source}")
    # The same files again: a new database has never seen them.
    with contextlib.ExitStack() as stack:
        stack.callback(server.close)
        return run_database(
            "pg",
            lambda _work: postgres_database(server),
            slack,
            file_ids,
            events=events,
            rate=rate,
            suffix="_postgres",
            store_timeout_s=store_timeout,
            sustained=sustained,
        )


if __name__ == "__main__":
    sys.exit(main())
