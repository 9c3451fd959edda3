"""Scale-out run (issue 12): two web processes and two workers on one Postgres database and
the Slack and Cloudinary emulators, 1,000 images in posts of 1 to 10, then kill -9 of one web
process and one worker mid-run; nothing may be lost or done twice.

    .venv/bin/python bench/scale.py                  # 1,000 images; a few minutes here
    .venv/bin/python bench/scale.py --quick          # 150 images; under 2 minutes (CI)
    .venv/bin/python bench/scale.py --postgres URL   # on a throwaway database from that URL

Four phases on one fleet (bench/fleet.py), each a share of the posts sent by SENDERS threads
(closed loop: each waits for its answer), every post being the message event and the
`file_shared` event Slack sends beside it for each file, a tenth of them delivered again as
Slack's `http_timeout` retry to the other web process:

1. "1web": every event to web0 alone: its events/s.
2. "2web": round-robin to web0 and web1, retries to the other one: events/s of each, and the
   ratio of the two phases' totals (scaling from one web process to two, in the same run).
   Images stored per minute by each process are counted while this phase's jobs run.
   Both phases last WINDOW_S (5 s with --quick): once their posts are sent, the senders
   fill the window with plain messages in the channel (chatter), so that events/s is
   measured over seconds rather than over the fraction of one that a share of the posts
   takes.
3. "clicks": posts (paced, PACE_S per sender) while the poster opens the details modal from
   the prompt of every 4th earlier post and saves a title per image, asking an approver
   for every other one; once every card is recorded, the approver clicks Approve on
   both web processes at the same instant (a double click two processes receive together).
4. "kill": when half of the approvals are clicked, a burst of posts (flat out), and halfway
   through it kill -9 of web1 and worker1, while the other half of the approvals are clicked
   (twice on web0). The killed processes are not restarted: the run finishes on web0 and
   worker0; Slack's retries of what web1 left unanswered go to web0.

Then it waits (SETTLE_S at most) for every job to be stored or failed and every settled
request's outcome told, stops the fleet and reads the counts (bench.fleet.exactly_once).
Figures go to stdout as `name: value` lines; progress to stderr. Exit status 1 when any count
is non-zero, a request was answered anything but 200 (or not at all, other than by the killed
process), or anything failed.

Only 127.0.0.1 is contacted (and the Postgres server given or found, on loopback here).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import (  # noqa: E402 - needs ROOT on sys.path
    APPROVERS,
    CHANNEL,
    Delivered,
    Expected,
    Fleet,
    FleetSampler,
    Post,
    card_click,
    exactly_once,
    finish,
    make_images,
    percentile,
    postgres_database,
    postgres_server,
    prompt_click,
    prompt_values,
    start_emulators,
    watch_channel,
)
from bench.ingest import MB, POSTER, BenchError, info  # noqa: E402
from handlers.slack.approvals import ids as approval_ids  # noqa: E402
from handlers.slack.details import ids as details_ids  # noqa: E402

IMAGES, QUICK_IMAGES = 1000, 150
POST_SIZES = (1, 10)  # images per post, uniformly
SHARES = (0.3, 0.4)  # of the posts: phases 1 and 2; the rest, halved, phases 3 and 4
RETRY_SHARE = 0.1  # events delivered again as Slack's http_timeout retry
DETAILS_EVERY = 4  # of the posts of phases 1 and 2, every 4th: details saved in phase 3
APPROVAL_EVERY = 2  # of those, every other one: an approver asked, Approve double-clicked
SENDERS = 8  # threads sending events, each waiting for its answer
WINDOW_S, QUICK_WINDOW_S = 15.0, 5.0  # phases 1 and 2 last this long (chatter after posts)
PACE_S = 0.5  # phase 3: each sender's pause after an event while the clicks go on
# After the last post, for the jobs to settle and their posters to be told: a killed run's
# job waits out its lease (60 s), a killed teller's post its claim (bot.prompts.PROMPT_LEASE,
# 2 minutes) and the worker's next look (every 15 s).
SETTLE_S = 180.0
POLL_S = 0.2
STORED_LINE = "stored image"  # bot.ingestor logs it once per image it stored
SEED = 12


def figure(name: str, value: float, digits: int = 0) -> None:
    print(f"{name}: {value:.{digits}f}", flush=True)


def split_posts(file_ids: list[str], rng: random.Random) -> list[list[str]]:
    """The files in posts of POST_SIZES[0] to POST_SIZES[1] images, in order."""
    posts, at = [], 0
    while at < len(file_ids):
        size = rng.randint(*POST_SIZES)
        posts.append(file_ids[at : at + size])
        at += size
    return posts


@dataclass
class PhaseResult:
    name: str
    events: int  # first deliveries: the posts' events and the chatter
    seconds: float
    delivered: list[Delivered]  # every delivery, retries included

    def per_web(self) -> dict[str, list[float]]:
        """Ack latency (ms) of every answered delivery, by web process."""
        out: dict[str, list[float]] = {}
        for d in self.delivered:
            if d.status:
                out.setdefault(d.web, []).append(d.elapsed_s * 1000)
        return out

    @property
    def rate(self) -> float:
        """Answered deliveries per second, all web processes together."""
        return sum(map(len, self.per_web().values())) / self.seconds


class Scale:
    """One run: the fleet, the posts, what was clicked, and what to expect at the end."""

    def __init__(self, fleet: Fleet, slack: Any, rng: random.Random) -> None:
        self.fleet, self.slack, self.rng = fleet, slack, rng
        self.sent: list[Post] = []
        self.details: dict[str, str] = {}  # file id -> title saved
        self.approved: list[str] = []  # file ids whose request had Approve clicked
        self.double_clicks: list[int] = []  # processes answering each double click
        self.across = 0  # double clicks received by two different processes
        self.failures: list[str] = []
        self._lock = threading.Lock()

    # -- posting ------------------------------------------------------------------------------

    def send_posts(
        self,
        name: str,
        posts: list[list[str]],
        *,
        only: list[str] | None = None,
        until: threading.Event | None = None,
        midway: Callable[[], None] | None = None,
        chatter_s: float = 0.0,
    ) -> PhaseResult:
        """Every post's events (message + file_shared per file) by SENDERS threads; `only`
        sends every delivery to those web processes. Until `until` is set, each thread
        waits PACE_S after each event (traffic beside the clicks), then goes flat out.
        `midway` runs once, when half of the posts' events are sent. With `chatter_s`, the
        threads then send plain messages in the channel (a busy channel's talk, each one an
        event the app records and acknowledges) until the phase has lasted that long: the
        window events/s are measured over."""
        sender = self.fleet.sender
        made = [sender.make_post(self.slack, files) for files in posts]
        events = [e for post in made for e in (post.envelope, *post.companions)]
        retries = [self.rng.random() < RETRY_SHARE for _ in events]
        counter = iter(range(len(events)))
        lock = threading.Lock()
        half = len(events) // 2
        delivered: list[Delivered] = []
        chatter = [0]
        started = time.perf_counter()

        def next_event() -> tuple[dict[str, Any], int] | None:
            with lock:
                n = next(counter, None)
                if n is None and time.perf_counter() - started < chatter_s:
                    chatter[0] += 1
                    text = f"chatter {chatter[0]}"
                    message = self.slack.message_event(channel=CHANNEL, user=POSTER, text=text)
                    return message, int(self.rng.random() < RETRY_SHARE)
            if n is None:
                return None
            if n == half and midway is not None:
                midway()
            return events[n], int(retries[n])

        def work() -> None:
            while (event := next_event()) is not None:
                done = sender.deliver(event[0], retries=event[1], among=only)
                with lock:
                    delivered.extend(done)
                if until is not None:
                    until.wait(PACE_S)

        with ThreadPoolExecutor(SENDERS, thread_name_prefix=f"send-{name}") as pool:
            list(pool.map(lambda _: work(), range(SENDERS)))
        result = PhaseResult(
            name, len(events) + chatter[0], time.perf_counter() - started, delivered
        )
        self.sent += made
        counts = ", ".join(f"{n} {len(v)}" for n, v in sorted(result.per_web().items()))
        info(
            f"phase {name}: {len(posts)} posts, {len(events)} events of theirs and "
            f"{chatter[0]} chatter, {len(delivered)} deliveries in {result.seconds:.1f} s "
            f"({counts})"
        )
        return result

    # -- details and approvals ----------------------------------------------------------------

    def prompt_values(self) -> dict[str, str]:
        """The details button's value (the post's image ids) of every prompt, by the first
        image's file id."""
        ids_to_file = self.image_files()
        return {
            ids_to_file[int(value.split(",")[0])]: value
            for value in prompt_values(self.slack)
            if int(value.split(",")[0]) in ids_to_file
        }

    def image_files(self) -> dict[int, str]:
        from sqlalchemy import select

        from storage.db import make_engine
        from storage.models import Image

        engine = make_engine(self.fleet.env["DATABASE_URL"])
        try:
            with engine.connect() as connection:
                return dict(connection.execute(select(Image.id, Image.slack_file_id)).all())
        finally:
            engine.dispose()

    def save_details(self, posts: list[Post]) -> None:
        """The poster opens the details modal from each post's prompt and saves a title per
        image; for every APPROVAL_EVERY-th, with an approver asked."""
        from tests.live import form_values

        values_of = self.prompt_values()
        files = self.image_files()
        for n, post in enumerate(posts):
            value = values_of.get(post.file_ids[0])
            if value is None:
                self.failures.append(f"no prompt for the post of {post.file_ids[0]}")
                continue
            image_ids = [int(v) for v in value.split(",")]
            view_id = self.fleet.sender.open_modal(
                prompt_click(self.slack, action_id=details_ids.ADD_DETAILS, value=value)
            )
            if view_id is None:
                self.failures.append(f"the details modal did not open for {value}")
                continue
            ask = n % APPROVAL_EVERY == 0
            titles = [f"Scale {files[i]}" for i in image_ids]
            payload = self.slack.view_submission(
                user=POSTER,
                view_id=view_id,
                values=form_values(
                    image_ids, titles=titles, approvers=[APPROVERS[0]] if ask else []
                ),
            )
            reply = self.fleet.sender.interactive(payload)
            if reply.status != 200 or reply.body:
                self.failures.append(f"details of {value}: {reply.status} {reply.body[:200]!r}")
                continue
            with self._lock:
                self.details.update({files[i]: f"Scale {files[i]}" for i in image_ids})
                if ask:
                    self.approved += [files[i] for i in image_ids]

    def approve_all(self, timeout: float, halfway: Callable[[], None]) -> None:
        """Once every card is recorded, Approve each request, clicked on every live web
        process at the same instant (on web0 twice once web1 is gone); `halfway` runs when
        half of them are clicked."""
        requests = self.wait_for_cards(timeout)
        for n, request_id in enumerate(requests):
            if n == len(requests) // 2:
                halfway()
            live = self.fleet.live_webs()
            webs = live if len(live) > 1 else live * 2
            payload = card_click(
                self.slack, user=APPROVERS[0], action_id=approval_ids.APPROVE, value=str(request_id)
            )
            replies = self.fleet.sender.at_once(payload, webs)
            self.double_clicks.append(sum(1 for r in replies if r.status == 200))
            self.across += len(set(webs)) > 1
            # Unanswered (0) only by a process being killed, and then the other click counts.
            bad = [r.status for r in replies if r.status not in (0, 200)]
            if bad or not self.double_clicks[-1]:
                self.failures.append(f"Approve of request {request_id}: {bad or 'unanswered'}")

    def wait_for_cards(self, timeout: float) -> list[int]:
        """The ids of the open requests, once every one's card has been DMed and recorded."""
        from sqlalchemy import select

        from storage.db import make_engine
        from storage.models import ApprovalRequest, ApprovalVote

        engine = make_engine(self.fleet.env["DATABASE_URL"])
        deadline = time.monotonic() + timeout
        try:
            while True:
                with engine.connect() as connection:
                    rows = connection.execute(
                        select(ApprovalRequest.id, ApprovalVote.card_ts).join(
                            ApprovalVote, ApprovalVote.request_id == ApprovalRequest.id
                        )
                    ).all()
                if all(ts for _, ts in rows) and len(rows) >= len(self.approved):
                    return sorted({request_id for request_id, _ in rows})
                if time.monotonic() > deadline:
                    self.failures.append(
                        f"{sum(1 for _, ts in rows if not ts)} of {len(rows)} cards unrecorded"
                    )
                    return sorted({request_id for request_id, ts in rows if ts})
                time.sleep(POLL_S)
        finally:
            engine.dispose()


UNTOLD = "SELECT COUNT(*) FROM approval_requests WHERE state <> 'open' AND outcome_told_at IS NULL"
TOLD_POSTS = "SELECT COUNT(*) FROM post_prompts WHERE told_at IS NOT NULL"


def wait_settled(db: Any, expected: int, timeout: float, *, posts: int) -> float:
    """Seconds until every job is stored or failed, every settled request's outcome was
    told and every post's poster was (a killed teller's post is told by a worker once its
    claim runs out: bot.prompts); nan: not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts = db.states()
        if (
            counts["stored"] + counts["failed"] >= expected
            and not db.query(UNTOLD)[0][0]
            and db.query(TOLD_POSTS)[0][0] >= posts
        ):
            return time.monotonic() - started
        time.sleep(POLL_S)
    return float("nan")


def run(db: Any, images: int, chatter_s: float, work: Path) -> list[str]:
    rng = random.Random(SEED)
    slack, cloudinary, file_ids = start_emulators(make_images(images))
    try:
        fleet = Fleet(database_url=db.url, slack=slack, cloudinary=cloudinary, work=work)
        watch_channel(fleet.env, CHANNEL)
        with fleet, FleetSampler(fleet, every_s=1.0) as sampler:
            try:
                return drive(fleet, slack, cloudinary, db, file_ids, rng, chatter_s, sampler)
            except BenchError:
                fleet.tail_logs()
                raise
    finally:
        slack.stop()
        cloudinary.stop()


def drive(
    fleet: Fleet,
    slack: Any,
    cloudinary: Any,
    db: Any,
    file_ids: list[str],
    rng: random.Random,
    chatter_s: float,
    sampler: FleetSampler,
) -> list[str]:
    scale = Scale(fleet, slack, rng)
    posts = split_posts(file_ids, rng)
    one = round(len(posts) * SHARES[0])
    two = one + round(len(posts) * SHARES[1])
    info(f"{len(file_ids)} images in {len(posts)} posts: {one} / {two - one} / {len(posts) - two}")
    phase1 = scale.send_posts("1web", posts[:one], only=["web0"], chatter_s=chatter_s)
    busy_from = time.time()
    phase2 = scale.send_posts("2web", posts[one:two], chatter_s=chatter_s)
    early = wait_settled(db, sum(map(len, posts[:two])), SETTLE_S, posts=two)
    busy = (busy_from, time.time())  # phase 2: both workers and both webs ingesting
    info(f"phases 1 and 2 settled {early:.1f} s after their last post")
    chosen = scale.sent[::DETAILS_EVERY]
    running_at_kill: list[int] = []

    def kill() -> None:
        running_at_kill.append(db.states()["running"])
        info(f"kill -9 of web1 and worker1 ({running_at_kill[0]} jobs running)")
        fleet.kill("web1")
        fleet.kill("worker1")

    half_clicked = threading.Event()

    def clicks() -> None:
        try:
            scale.save_details(chosen)
            scale.approve_all(60, halfway=half_clicked.set)
        finally:
            half_clicked.set()

    clicker = threading.Thread(target=clicks, name="clicks")
    clicker.start()
    # Posts beside the details and the first half of the double clicks (both webs up)...
    middle = two + (len(posts) - two) // 2
    phase3 = scale.send_posts("clicks", posts[two:middle], until=half_clicked)
    half_clicked.wait(300)
    # ...then a burst of posts, killed halfway, beside the second half of the clicks.
    phase4 = scale.send_posts("kill", posts[middle:], midway=kill)
    clicker.join(timeout=300)
    settled = wait_settled(db, len(file_ids), SETTLE_S, posts=len(posts))
    info(f"all jobs settled {settled:.1f} s after the last post: {dict(db.states())}")
    time.sleep(2.0)  # the last prompts and card updates leave after the jobs settle
    fleet.stop()

    expected = Expected(
        file_ids=file_ids, messages=len(posts), details=scale.details, approved=scale.approved
    )
    counts = exactly_once(db.url, slack, expected, cloudinary)
    report(fleet, sampler, (phase1, phase2, phase3, phase4), busy)
    figure("jobs_running_at_kill", running_at_kill[0] if running_at_kill else 0)
    figure("settled_after_last_post_s", settled, 1)
    figure("details_saved", len(scale.details))
    figure("approvals_double_clicked", len(scale.double_clicks))
    figure("approvals_double_clicked_across_processes", scale.across)
    stats = fleet.sender.stats
    non_200 = sum(s.non_200 for s in stats.values())
    unanswered = {n: s.refused for n, s in stats.items() if s.refused}
    figure("non_200", non_200)
    figure("unanswered_by_killed_web1", unanswered.pop("web1", 0))
    figure("unanswered_other", sum(unanswered.values()))
    counts.print()
    problems = counts.problems() + scale.failures
    if non_200:
        problems.append(f"{non_200} answers not 200")
    if unanswered:
        problems.append(f"unanswered by live processes: {unanswered}")
    if problems:
        fleet.tail_logs()
    return problems


def report(
    fleet: Fleet,
    sampler: FleetSampler,
    phases: tuple[PhaseResult, ...],
    busy: tuple[float, float],
) -> None:
    """Events/s per web process in each phase and the 1 -> 2 web ratio; images stored per
    minute by each process while phase 2 kept them all busy, and in all; peak RSS."""
    for result in phases:
        figure(f"events_per_s_{result.name}", result.rate, 1)
        for web, latencies in sorted(result.per_web().items()):
            figure(f"events_per_s_{result.name}_{web}", len(latencies) / result.seconds, 1)
            figure(f"ack_p99_ms_{result.name}_{web}", percentile(latencies, 99), 1)
    figure("scaling_1_to_2_web", phases[1].rate / phases[0].rate, 2)
    minutes = (busy[1] - busy[0]) / 60
    for name in fleet.processes:
        stored = fleet.log_times(name, STORED_LINE)
        during = sum(1 for t in stored if busy[0] <= t <= busy[1])
        figure(f"images_per_min_{name}_2web", during / minutes, 1)
        figure(f"images_stored_by_{name}", len(stored))
    for name in fleet.processes:
        figure(f"peak_rss_mb_{name}", sampler.peak(name) / MB, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images (CI)")
    parser.add_argument("--images", type=int, help="images in all (50-5000)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL URL to create the throwaway database from "
        "(default: TEST_DATABASE_URL, 127.0.0.1:5432, or a throwaway cluster)",
    )
    args = parser.parse_args(argv)
    images = args.images or (QUICK_IMAGES if args.quick else IMAGES)
    chatter_s = QUICK_WINDOW_S if args.quick else WINDOW_S
    if not 50 <= images <= 5000:
        parser.error("--images must be 50-5000")
    started = time.perf_counter()
    server, source = postgres_server(args.postgres)
    if server is None:
        return finish(started, [f"no PostgreSQL: {source}"])
    problems: list[str] = []
    try:
        db = postgres_database(server)
        info(f"database: {db.describe}")
        try:
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
                problems = run(db, images, chatter_s, Path(tmp))
        finally:
            db.cleanup()
    except BenchError as exc:
        problems.append(str(exc))
    return finish(started, problems)


if __name__ == "__main__":
    sys.exit(main())
