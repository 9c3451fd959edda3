"""The ingest queue never wedges: every attempt ends with a recorded reason and the poster
told, attempts are capped where jobs are claimed, one job's trouble never abandons another,
two workers never run one job twice, and a discard never deletes an original that an ingest
is storing. Against the real Slack emulator over HTTP, on SQLite and Postgres."""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from bot import scheduler
from bot.approval_queue import claim_reminders, untold_outcomes
from bot.discards import discard_image
from bot.domain import PostedFile
from bot.ingest_queue import LEASE, MAX_ATTEMPTS, Claim, claim_next
from bot.ingest_runner import BUSY_POSTS, BUSY_WINDOW_S, HELP_AFTER
from bot.ingestor import INTERNAL_ERROR
from bot.library import record_posted_files
from bot.reminders import claim_details_reminders
from bot.services import Services
from handlers.slack.files import posted_file_from_slack
from storage.db import session_scope
from storage.models import AuditEvent, Image, IngestJob, IngestState
from tests import images
from tests.bot.test_ingestor import POST, image_row, job_row
from tests.conftest import (
    MEMBER,
    POSTER,
    PUBLIC_CHANNEL,
    TEAM,
    FakeClock,
    app_env,
    make_services,
)
from tests.fakes.slack_api import Call, SlackEmulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def services(
    database_url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock
) -> Iterator[Services]:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    services = make_services(env, clock=clock, watch=True)
    yield services
    services.shutdown()


def post(
    services: Services,
    slack: SlackEmulator,
    file_id: str,
    content: bytes,
    *,
    message_ts: str,
    user: str = POSTER,
    stub: bool = False,
) -> list[int]:
    """A message with one image, recorded as the ack path records it."""
    slack_file = slack.add_file(
        file_id,
        name=f"{file_id.lower()}.jpg",
        content=content,
        mimetype="image/jpeg",
        filetype="jpg",
        user=user,
    )
    if stub:  # Slack Connect: the event carries a stub, the details come from files.info
        slack_file = slack.file_stub(file_id)
    return record_posted_files(
        services.factory,
        post=POST.__class__(
            team_id=TEAM, channel_id=PUBLIC_CHANNEL, user_id=user, message_ts=message_ts
        ),
        files=[posted_file_from_slack(slack_file)],
        event_id=None,
        now=services.clock(),
    )


def prompts_to(slack: SlackEmulator, user: str = POSTER) -> list[Call]:
    return [c for c in slack.calls_to("chat.postEphemeral") if c.params.get("user") == user]


def reactions_on(slack: SlackEmulator, message_ts: str) -> list[str]:
    return [
        c.params["name"]
        for c in slack.calls_to("reactions.add")
        if c.params.get("timestamp") == message_ts
    ]


def uploads_per_image(services: Services) -> Counter[int]:
    with session_scope(services.factory) as session:
        return Counter(
            session.scalars(select(AuditEvent.image_id).where(AuditEvent.action == "uploaded"))
        )


# -- every attempt ends with a reason, and the poster is told ----------------------------------


def test_poison_file_fails_with_its_reason_and_the_image_after_it_is_stored_once(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    # The poison: a Slack Connect file whose files.info answer lacks the file's id, which
    # our parsing does not expect (a KeyError deep in the attempt, every time).
    slack.set_handler("files.info", lambda call: {"ok": True, "file": {"name": "odd.jpg"}})
    poison = post(
        services, slack, "F0POISON", images.jpeg(seed=1), message_ts="1700000001.0001", stub=True
    )
    # Right after it, a good image whose first download gets a 503.
    slack.inject("files.download", "server_error", status=503)
    good = post(services, slack, "F0GOOD", images.jpeg(seed=2), message_ts="1700000002.0001")

    # As the web process does right after the ack...
    first = [services.ingestor.run(job_id) for job_id in poison + good]
    assert [o.state for o in first if o] == [IngestState.QUEUED, IngestState.QUEUED]
    assert job_row(services, "F0POISON").last_error == INTERNAL_ERROR  # details: in the log
    # ...then the worker's sweeps, as time passes.
    for _ in range(MAX_ATTEMPTS + 1):
        clock.advance(hours=2)
        services.ingestor.sweep()

    poison_job = job_row(services, "F0POISON")
    assert poison_job.state == IngestState.FAILED
    assert poison_job.attempts == MAX_ATTEMPTS
    assert poison_job.last_error is not None
    assert poison_job.last_error.startswith(f"gave up after {MAX_ATTEMPTS} attempts: ")
    assert poison_job.last_error.endswith(INTERNAL_ERROR)
    assert job_row(services, "F0GOOD").state == IngestState.STORED
    assert image_row(services, "F0GOOD").storage_key is not None
    assert sum(uploads_per_image(services).values()) == 1
    downloads = [c.params.get("file_id") for c in slack.calls_to("files.download")]
    assert downloads.count("F0GOOD") == 2  # the 503, then the one that worked
    # The poster heard once per message: the failure with its reason, and the stored image.
    told = prompts_to(slack)
    assert len(told) == 2
    assert any("gave up after" in str(c.params.get("blocks")) for c in told)
    assert reactions_on(slack, "1700000001.0001") == ["warning"]
    assert reactions_on(slack, "1700000002.0001") == ["frame_with_picture"]


def test_a_job_whose_process_dies_every_time_ends_failed_and_the_poster_is_told(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    (job_id,) = post(services, slack, "F0OOM", images.jpeg(), message_ts="1700000003.0001")
    for _ in range(MAX_ATTEMPTS):
        assert services.ingestor.claim(job_id)  # a process took it... and was killed
        clock.advance(seconds=LEASE.total_seconds() + 1)
    outcomes = services.ingestor.sweep()
    assert [o.state for o in outcomes] == [IngestState.FAILED]
    job = job_row(services, "F0OOM")
    assert job.state == IngestState.FAILED
    assert job.attempts == MAX_ATTEMPTS
    assert job.last_error == (
        f"gave up after {MAX_ATTEMPTS} attempts: "
        "an attempt did not finish (the process running it stopped or hung)"
    )
    assert slack.calls_to("files.download") == []
    assert len(prompts_to(slack)) == 1
    assert "gave up after" in str(prompts_to(slack)[0].params.get("blocks"))
    assert reactions_on(slack, "1700000003.0001") == ["warning"]
    clock.advance(hours=2)
    assert services.ingestor.sweep() == []  # and it is never claimed again


def test_a_successful_ingest_does_not_claim_it_lost_its_lease(
    services: Services, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    (job_id,) = post(services, slack, "F0OK", images.jpeg(), message_ts="1700000004.0001")
    with caplog.at_level(logging.INFO, logger="bot.ingestor"):
        outcome = services.ingestor.run(job_id)
    assert outcome is not None and outcome.state == IngestState.STORED
    assert "lease" not in caplog.text
    assert caplog.records == [] or all(r.levelno < logging.WARNING for r in caplog.records)


# -- two workers, one job each time --------------------------------------------------------


class DownloadClock:
    """Time that moves only when Slack serves a download: each one takes an eighth of a
    lease (LEASE), whatever the machine's speed. Nine downloads after a lease was taken, it
    has run out; one job's own download and what the other worker downloads meanwhile (a
    job or two) never get that far."""

    STEP = LEASE / 8

    def __init__(self, slack: SlackEmulator) -> None:
        self.slack = slack
        self.origin = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.origin + self.STEP * len(self.slack.calls_to("files.download"))


def test_two_workers_sweeping_at_once_run_each_job_once(
    database_url: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Slow downloads: a worker that claimed a batch up front would still be busy when the
    last jobs' leases ran out, and the other worker would take them over and run them too."""
    clock = DownloadClock(slack)
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    workers = [make_services(env, clock=clock, watch=n == 0) for n in range(2)]
    count = 16
    file_ids = [f"F{n:04d}" for n in range(count)]
    for n, file_id in enumerate(file_ids):
        post(workers[0], slack, file_id, images.jpeg(seed=n), message_ts=f"17000001{n:02d}.0001")
    slack.inject("files.download", "slow", delay=0.3, times=count)
    deadline = time.monotonic() + 60

    def settled() -> bool:
        with session_scope(workers[0].factory) as session:
            states = session.scalars(select(IngestJob.state)).all()
        return all(s in (IngestState.STORED, IngestState.FAILED) for s in states)

    def sweep(services: Services) -> None:
        while time.monotonic() < deadline and not settled():
            services.ingestor.sweep()
            time.sleep(0.05)

    threads = [threading.Thread(target=sweep, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.shutdown()

    downloads = Counter(c.params.get("file_id") for c in slack.calls_to("files.download"))
    assert downloads == dict.fromkeys(file_ids, 1)
    with session_scope(workers[0].factory) as session:
        states = Counter(session.scalars(select(IngestJob.state)))
    assert states == {IngestState.STORED: count}
    assert set(uploads_per_image(workers[0]).values()) == {1}
    assert len(prompts_to(slack)) == count  # one per message


# -- discard while the same bytes are being ingested ---------------------------------------


def test_discard_does_not_delete_an_original_another_ingest_is_storing(
    services: Services, slack: SlackEmulator
) -> None:
    data = images.jpeg(seed=5)
    (first,) = post(services, slack, "F0FIRST", data, message_ts="1700000005.0001")
    assert services.ingestor.run(first).state == IngestState.STORED  # type: ignore[union-attr]
    first_image = image_row(services, "F0FIRST")

    # Someone else posts the very same photo; its ingest has stored the bytes and is looking
    # up the poster's name (users.info) just before recording them...
    (second,) = post(services, slack, "F0SECOND", data, message_ts="1700000006.0001", user=MEMBER)
    looking_up, answer = threading.Event(), threading.Event()

    def users_info(call: Call) -> dict[str, Any]:
        if call.params.get("user") == MEMBER:
            looking_up.set()
            answer.wait(20)
        return {"ok": True, "user": copy.deepcopy(slack.users[str(call.params.get("user"))])}

    slack.set_handler("users.info", users_info)
    running = threading.Thread(target=services.ingestor.run, args=(second,))
    running.start()
    assert looking_up.wait(20)
    # ...when the first poster discards theirs.
    discard_image(
        services.factory,
        team_id=TEAM,
        image_id=first_image.id,
        actor_id=POSTER,
        media=services.media,
        now=services.clock(),
    )
    answer.set()
    running.join(20)

    second_image = image_row(services, "F0SECOND")
    assert job_row(services, "F0SECOND").state == IngestState.STORED
    assert second_image.storage_key == first_image.storage_key
    original = services.settings.media_dir / "originals" / str(second_image.storage_key)
    assert original.read_bytes() == data  # "Open original" still opens it
    with session_scope(services.factory) as session:
        assert session.get(Image, first_image.id) is None


def test_discard_deletes_the_original_nobody_else_uses(
    services: Services, slack: SlackEmulator
) -> None:
    (job_id,) = post(services, slack, "F0ALONE", images.jpeg(seed=6), message_ts="1700000007.1")
    services.ingestor.run(job_id)
    image = image_row(services, "F0ALONE")
    original = services.settings.media_dir / "originals" / str(image.storage_key)
    assert original.is_file()
    discard_image(
        services.factory,
        team_id=TEAM,
        image_id=image.id,
        actor_id=POSTER,
        media=services.media,
        now=services.clock(),
    )
    assert not original.exists()


# -- a busy web process leaves work queued for the worker ------------------------------------


def test_busy_web_process_leaves_jobs_queued_and_the_worker_takes_them(
    database_url: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    from tests.live import RealClock, wait_until

    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    env["INGEST_WORKERS"] = "1"
    web = make_services(env, clock=RealClock(), watch=True)
    count = 8
    slack.inject("files.download", "slow", delay=0.5, times=count)
    job_ids = []
    for n in range(count):
        job_ids += post(
            web, slack, f"F1{n:03d}", images.jpeg(seed=n), message_ts=f"17000002{n:02d}.1"
        )
    taken = web.ingest_runner.submit(job_ids)
    assert 1 <= taken < count  # a short local queue: the rest wait in the database
    with session_scope(web.factory) as session:
        queued = session.scalars(
            select(IngestJob.id).where(IngestJob.state == IngestState.QUEUED)
        ).all()
    assert len(queued) >= count - taken
    worker = make_services(env, clock=RealClock())
    worker.start_ingest_polling()  # what `python -m bot worker` runs

    def all_stored() -> bool:
        with session_scope(web.factory) as session:
            states = session.scalars(select(IngestJob.state)).all()
        return all(s == IngestState.STORED for s in states)

    wait_until(all_stored, timeout=30, what="every image stored")
    web.shutdown()
    worker.shutdown()
    downloads = Counter(c.params.get("file_id") for c in slack.calls_to("files.download"))
    assert set(downloads.values()) == {1}
    assert len(downloads) == count
    assert len(prompts_to(slack)) == count


# -- App Home refreshes are coalesced ---------------------------------------------------------


def test_a_burst_of_posts_refreshes_the_posters_app_home_a_few_times_with_all_of_them(
    services: Services, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refreshes a minute apart, not a second: the whole burst falls within one interval even
    # on a busy machine (at 1 s, 12 ingests taking over 2 s are rightly refreshed 4 times).
    monkeypatch.setattr("bot.services.HOME_REFRESH_SECONDS", 60.0)
    count = 12
    for n in range(count):
        (job_id,) = post(
            services, slack, f"F2{n:03d}", images.jpeg(seed=n), message_ts=f"17000003{n:02d}.1"
        )
        services.ingestor.run(job_id)
    services.shutdown()  # waits for the refresh still due
    published = [c for c in slack.calls_to("views.publish") if c.params.get("user_id") == POSTER]
    assert 1 <= len(published) <= 2  # not one per message: the first, then the rest at once
    assert len(prompts_to(slack)) == count  # while every message got its prompt
    last_view = str(published[-1].params.get("view"))
    assert "f2011" in last_view.lower()  # the newest image is on the Home tab


# -- the worker reads the front of what it looks for, not the library --------------------------


def test_the_next_job_is_an_abandoned_one_then_the_queued_one_due_longest(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    first = post(services, slack, "F0FIRST", images.jpeg(seed=1), message_ts="1700000020.0001")
    clock.advance(seconds=1)
    second = post(services, slack, "F0SECOND", images.jpeg(seed=2), message_ts="1700000021.0001")
    clock.advance(seconds=1)
    (abandoned,) = post(
        services, slack, "F0DIED", images.jpeg(seed=3), message_ts="1700000022.0001"
    )
    assert services.ingestor.claim(abandoned)  # a process took it... and was killed
    clock.advance(seconds=LEASE.total_seconds() + 1)
    latest = post(services, slack, "F0LATEST", images.jpeg(seed=4), message_ts="1700000023.0001")

    taken = [claim_next(services.factory, now=clock()) for _ in range(5)]

    # The abandoned job never waits behind a backlog; then first posted, first taken.
    assert [t.job_id if t else None for t in taken] == [abandoned, *first, *second, *latest, None]
    assert [t.attempts for t in taken if isinstance(t, Claim)] == [2, 1, 1, 1]


def test_a_web_process_helps_only_with_jobs_queued_for_a_while(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    (job,) = post(services, slack, "F0WAITS", images.jpeg(seed=1), message_ts="1700000030.0001")

    assert claim_next(services.factory, now=clock(), queued_for=HELP_AFTER) is None
    clock.advance(seconds=HELP_AFTER.total_seconds() - 0.5)
    assert claim_next(services.factory, now=clock(), queued_for=HELP_AFTER) is None
    clock.advance(seconds=0.5)
    taken = claim_next(services.factory, now=clock(), queued_for=HELP_AFTER)
    assert isinstance(taken, Claim) and taken.job_id == job


def test_a_web_process_beside_a_worker_runs_a_quiet_post_and_leaves_a_flood_to_the_worker(
    database_url: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Its ingest shares the GIL with the acks Slack waits for: in a flood the worker takes
    the jobs, and the web process only helps with those left waiting (none here: no worker
    runs, so it drains them all itself, each once)."""
    from tests.live import RealClock, wait_until

    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    web = make_services(env, clock=RealClock(), watch=True)
    web.start_ingest_polling(web=True)  # what `serve` does beside a worker (Postgres)
    quiet = post(web, slack, "F2QUIET", images.jpeg(seed=1), message_ts="1700000300.0001")
    assert web.ingest_runner.submit(quiet) == 1
    wait_until(lambda: prompts_to(slack), timeout=10, what="the quiet post handled")
    time.sleep(BUSY_WINDOW_S)  # and quiet again

    left: list[int] = []
    for n in range(BUSY_POSTS + 4):
        job_ids = post(
            web, slack, f"F2FLOOD{n}", images.jpeg(seed=10 + n), message_ts=f"17000003{n:02d}.1"
        )
        left += job_ids[web.ingest_runner.submit(job_ids) :]
    assert len(left) >= 4  # every post after the first BUSY_POSTS of the second
    with session_scope(web.factory) as session:
        queued = session.scalars(
            select(IngestJob.id).where(IngestJob.state == IngestState.QUEUED)
        ).all()
    assert set(left) <= set(queued)

    def all_stored() -> dict[int, timedelta] | None:
        """Each job's time from recorded to stored, once all are stored."""
        with session_scope(web.factory) as session:
            rows = session.execute(
                select(IngestJob.id, IngestJob.state, IngestJob.created_at, IngestJob.updated_at)
            ).all()
        if any(row.state != IngestState.STORED for row in rows):
            return None
        return {row.id: row.updated_at - row.created_at for row in rows}

    waited = wait_until(all_stored, timeout=60, what="every image stored")
    web.shutdown()
    assert all(waited[job_id] >= HELP_AFTER for job_id in left)  # none taken before
    assert set(uploads_per_image(web).values()) == {1}
    assert len(prompts_to(slack)) == BUSY_POSTS + 5


def queue_posts(services: Services, clock: FakeClock, messages: int = 200) -> None:
    """`messages` posts of ten images (Slack's most) a second apart, recorded as the ack
    path records them: as many queued jobs as a Slack outage leaves."""
    for message in range(messages):
        record_posted_files(
            services.factory,
            post=POST.__class__(
                team_id=TEAM,
                channel_id=PUBLIC_CHANNEL,
                user_id=POSTER,
                message_ts=f"17000{message:05d}.0001",
            ),
            files=[
                PostedFile(f"F{message:04d}{n}", name="a.jpg", mimetype="image/jpeg")
                for n in range(10)
            ],
            event_id=None,
            now=clock(),
        )
        clock.advance(seconds=1)


def test_claiming_reads_the_front_of_a_long_queue_not_all_of_it(
    services: Services, clock: FakeClock
) -> None:
    """A Slack outage or a bulk import leaves thousands of jobs queued: a claim that read (and
    sorted) every due job slowed the worker down the longer the queue was (bench/claims.py:
    67 ms a claim at 100,000 on Postgres). Each statement a claim runs is measured by the
    database itself (assert_reads_few_rows), on statistics as autovacuum would keep them."""
    queue_posts(services, clock)
    engine = services.factory.kw["bind"]
    with statements_run(engine) as statements:
        taken = claim_next(services.factory, now=clock())

    assert isinstance(taken, Claim) and taken.file_id == "F00000"
    for statement, parameters in statements:
        assert_reads_few_rows(engine, statement, parameters, "ingest_jobs")
    assert len(statements) == 2  # no abandoned job, then the queued one due longest


def test_the_look_for_posts_never_told_reads_the_last_hours_posts_not_the_library(
    services: Services, clock: FakeClock
) -> None:
    """Every 15 s the worker looks for posts settled but never told (their process died
    before telling). It joined the whole library to find the last hour's: 145 ms at 300,000
    images, growing with the library."""
    queue_posts(services, clock)
    engine = services.factory.kw["bind"]
    with engine.begin() as connection:  # all stored and told, as a day's ingest leaves them
        connection.execute(update(IngestJob).values(state=IngestState.STORED))
        connection.execute(
            text(
                "INSERT INTO post_prompts (team_id, channel_id, message_ts, user_id,"
                " prompted_at, told_at, created_at) SELECT DISTINCT team_id, channel_id,"
                " message_ts, uploader_id, :now, :now, :now FROM images"
            ),
            {"now": clock()},
        )
    clock.advance(hours=2)
    with statements_run(engine) as statements:
        assert scheduler.prompt_settled_posts(services) == 0

    (statement, parameters), *_ = statements
    assert_reads_few_rows(engine, statement, parameters, "images", "ingest_jobs", "post_prompts")


def test_the_approval_looks_read_open_and_untold_requests_not_every_request(
    services: Services, clock: FakeClock
) -> None:
    """Every 15 s the worker looks for outcomes never told, every 5 min for open requests due
    a reminder: each read every request ever made (27.6 and 22.3 ms at 300,000)."""
    queue_posts(services, clock)
    engine = services.factory.kw["bind"]
    with engine.begin() as connection:  # each image approved, and the requester told
        connection.execute(
            text(
                "INSERT INTO approval_requests (team_id, image_id, requested_by, policy, note,"
                " state, decided_at, created_at, outcome_told_at) SELECT team_id, id,"
                " uploader_id, 'any', '', 'approved', created_at, created_at, created_at"
                " FROM images"
            )
        )
    clock.advance(days=30)
    with statements_run(engine) as statements:
        assert untold_outcomes(services.factory, now=clock()) == []
        reminders = claim_reminders(
            services.factory,
            now=clock(),
            remind_after=timedelta(hours=24),
            escalate_after=timedelta(hours=72),
        )
        assert reminders == []

    assert len(statements) == 2
    for statement, parameters in statements:
        assert_reads_few_rows(engine, statement, parameters, "approval_requests")


def test_the_details_reminder_look_reads_the_images_never_detailed_nor_reminded(
    services: Services, clock: FakeClock
) -> None:
    """Every 5 min the worker looks for images still without details hours after they were
    posted: it read the whole library (103 ms at 300,000 images, all detailed)."""
    queue_posts(services, clock)
    engine = services.factory.kw["bind"]
    with engine.begin() as connection:  # stored, and every poster added the details
        connection.execute(update(IngestJob).values(state=IngestState.STORED))
        connection.execute(update(Image).values(details_added_at=Image.created_at))
    clock.advance(days=30)
    with statements_run(engine) as statements:
        assert (
            claim_details_reminders(services.factory, now=clock(), after=timedelta(hours=4)) == []
        )

    (statement, parameters), *_ = statements
    assert_reads_few_rows(engine, statement, parameters, "images")


SQLITE_STEP = 100  # SQLite calls the progress handler every this many instructions


@contextmanager
def statements_run(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs sent to the database inside the block, after an ANALYZE (the statistics
    autovacuum keeps)."""
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    statements: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def assert_reads_few_rows(engine: Any, statement: str, parameters: Any, *tables: str) -> None:
    """On Postgres, the executor takes at most 64 rows from `tables`, kept or filtered out
    (EXPLAIN ANALYZE, rolled back); on SQLite, where no plan says how many rows a step read,
    the statement runs (rolled back) in a few thousand virtual machine instructions."""
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            (plan,) = cursor.fetchone()
            raw.rollback()
        finally:
            raw.close()

        def read(node: dict[str, Any]) -> float:
            """Rows a scan of `tables` took: those it returned and those its filters
            dropped (both per loop in the plan)."""
            taken = 0.0
            if node.get("Relation Name") in tables:
                per_loop = node["Actual Rows"] + sum(
                    node.get(dropped, 0)
                    for dropped in ("Rows Removed by Filter", "Rows Removed by Index Recheck")
                )
                taken = per_loop * node["Actual Loops"]
            return taken + sum(read(child) for child in node.get("Plans", []))

        assert read(plan[0]["Plan"]) <= 64, plan
        return
    raw = engine.raw_connection()
    instructions = 0

    def count() -> int:
        nonlocal instructions
        instructions += SQLITE_STEP
        return 0  # go on

    try:
        raw.driver_connection.set_progress_handler(count, SQLITE_STEP)
        raw.cursor().execute(statement, parameters).fetchall()
        raw.rollback()
    finally:
        raw.driver_connection.set_progress_handler(None, 0)
        raw.close()
    # Reading 2,000 rows took 6,000-56,000 instructions; these statements take 0-100.
    assert instructions <= 2_000, instructions
