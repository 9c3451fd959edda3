"""The durable ingest pipeline against the real Slack and Cloudinary emulators over HTTP, on
SQLite and Postgres: what ends up stored, what fails and why, and that nothing is lost or
stored twice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from bot.admin import add_category, watch
from bot.domain import Post, PostedFile
from bot.ingest_queue import LEASE, MAX_ATTEMPTS, Claim, LeaseKeeper, claim_next, renew
from bot.library import record_posted_files
from bot.services import Services
from handlers.slack.files import posted_file_from_slack, token_allowed_for
from storage.db import session_scope
from storage.media import LocalStore
from storage.models import AuditEvent, Channel, Image, IngestJob, IngestState
from tests import images
from tests.conftest import (
    POSTER,
    PUBLIC_CHANNEL,
    TEAM,
    FakeClock,
    app_env,
    make_services,
)
from tests.fakes.cloudinary_api import CloudinaryEmulator
from tests.fakes.slack_api import SlackEmulator
from tests.live import wait_until

POST = Post(team_id=TEAM, channel_id=PUBLIC_CHANNEL, user_id=POSTER, message_ts="1700000000.000100")


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


@pytest.fixture
def cloud_services(
    database_url: str,
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    tmp_path: Path,
    clock: FakeClock,
) -> Iterator[Services]:
    env = app_env(
        database_url=database_url, slack=slack, media_dir=tmp_path / "media", cloudinary=cloudinary
    )
    services = make_services(env, clock=clock, watch=True)
    yield services
    services.shutdown()


def post_file(
    services: Services,
    slack: SlackEmulator,
    content: bytes,
    *,
    file_id: str = "F0001",
    name: str = "cmo-portrait.jpg",
    mimetype: str = "image/jpeg",
    filetype: str = "jpg",
    event_id: str | None = None,
    post: Post = POST,
) -> list[int]:
    slack_file = slack.add_file(
        file_id, name=name, content=content, mimetype=mimetype, filetype=filetype, user=POSTER
    )
    return record_posted_files(
        services.factory,
        post=post,
        files=[posted_file_from_slack(slack_file)],
        event_id=event_id,
        now=services.clock(),
    )


def ingest(services: Services, job_ids: list[int]) -> list:  # type: ignore[type-arg]
    return [services.ingestor.run(job_id) for job_id in job_ids]


def image_row(services: Services, file_id: str = "F0001") -> Image:
    with session_scope(services.factory) as session:
        return session.scalars(select(Image).where(Image.slack_file_id == file_id)).one()


def job_row(services: Services, file_id: str = "F0001") -> IngestJob:
    with session_scope(services.factory) as session:
        return session.scalars(
            select(IngestJob)
            .join(Image, Image.id == IngestJob.image_id)
            .where(Image.slack_file_id == file_id)
        ).one()


def count(services: Services, model: type) -> int:
    with session_scope(services.factory) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def waiting_on_a_lock(services: Services) -> bool:
    """Is a session of this Postgres database waiting for a lock? Asked in a transaction of
    its own: pg_stat_activity is read once per transaction."""
    with services.engine.connect() as probe:
        return bool(
            probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar()
        )


# -- the happy path ----------------------------------------------------------------------


def test_posted_jpeg_is_stored_with_its_facts(services: Services, slack: SlackEmulator) -> None:
    data = images.jpeg(1024, 768)
    outcomes = ingest(services, post_file(services, slack, data))
    assert [o.state for o in outcomes] == [IngestState.STORED]
    image = image_row(services)
    assert (image.width, image.height, image.format) == (1024, 768, "JPEG")
    assert image.bytes == len(data)
    assert image.phash is not None
    assert image.sha256 is not None
    assert image.shoot_date is not None
    assert image.shoot_date.isoformat() == "2026-11-03T13:05:09+00:00"  # 14:05:09+01:00
    assert image.camera == "Canon EOS R5"
    assert image.title == "cmo portrait"
    assert image.status == "draft"
    # The original is on disk, byte for byte, and the download carried the bot token.
    assert (services.settings.media_dir / "originals" / image.storage_key).read_bytes() == data
    downloads = slack.calls_to("files.download")
    assert [c.token for c in downloads] == [slack.bot_token]
    with session_scope(services.factory) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.image_id == image.id)
        ).all()
    assert actions == ["uploaded"]


def test_same_file_recorded_twice_is_one_image(services: Services, slack: SlackEmulator) -> None:
    first = post_file(services, slack, images.jpeg(), event_id="Ev1")
    again = post_file(services, slack, images.jpeg(), event_id="Ev1")  # a retried delivery
    other_event = record_posted_files(  # the other event Slack sends about the same file
        services.factory,
        post=POST,
        files=[PostedFile(file_id="F0001", mimetype="image/jpeg")],
        event_id="Ev2",
        now=services.clock(),
    )
    assert again == []
    assert other_event == first  # still queued: it may run now
    ingest(services, first + again + other_event)
    ingest(services, first)  # a job already stored does not run again
    stored_already = record_posted_files(
        services.factory,
        post=POST,
        files=[PostedFile(file_id="F0001", mimetype="image/jpeg")],
        event_id="Ev3",
        now=services.clock(),
    )
    assert stored_already == []
    assert count(services, Image) == 1
    assert len(slack.calls_to("files.download")) == 1


def test_unwatched_channel_and_non_images_record_nothing(
    services: Services, slack: SlackEmulator
) -> None:
    pdf = slack.add_file(
        "F0PDF",
        name="brief.pdf",
        content=images.PDF,
        mimetype="application/pdf",
        filetype="pdf",
        user=POSTER,
    )
    assert (
        record_posted_files(
            services.factory,
            post=POST,
            files=[posted_file_from_slack(pdf)],
            event_id=None,
            now=services.clock(),
        )
        == []
    )
    elsewhere = Post(team_id=TEAM, channel_id="C0OTHER", user_id=POSTER)
    photo = slack.add_file(
        "F0JPG",
        name="a.jpg",
        content=images.jpeg(),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    assert (
        record_posted_files(
            services.factory,
            post=elsewhere,
            files=[posted_file_from_slack(photo)],
            event_id=None,
            now=services.clock(),
        )
        == []
    )
    assert count(services, Image) == 0


def test_cloudinary_store_receives_the_original(
    cloud_services: Services, slack: SlackEmulator, cloudinary: CloudinaryEmulator
) -> None:
    data = images.jpeg(seed=11)
    ingest(cloud_services, post_file(cloud_services, slack, data))
    image = image_row(cloud_services)
    assert image.storage_key in cloudinary.uploads
    assert cloudinary.uploads[image.storage_key].data == data
    assert image.delivery_url.startswith("https://res.cloudinary.com/")


def test_the_original_goes_to_its_channels_category_folder(
    cloud_services: Services, slack: SlackEmulator, cloudinary: CloudinaryEmulator
) -> None:
    now = cloud_services.clock()
    add_category(cloud_services.factory, team_id=TEAM, name="Marketing", actor_id=POSTER, now=now)
    watch(
        cloud_services.factory,
        team_id=TEAM,
        channel_id=PUBLIC_CHANNEL,
        category_name="Marketing",
        actor_id=POSTER,
        now=now,
    )
    ingest(cloud_services, post_file(cloud_services, slack, images.jpeg(seed=12)))
    upload = cloudinary.uploads[image_row(cloud_services).storage_key]
    assert upload.folder == f"library/{TEAM}/marketing"


def test_slack_connect_stub_is_resolved_with_files_info(
    services: Services, slack: SlackEmulator
) -> None:
    slack.add_file(
        "F0EXT",
        name="partner.jpg",
        content=images.jpeg(seed=12),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    job_ids = record_posted_files(
        services.factory,
        post=POST,
        files=[posted_file_from_slack(slack.file_stub("F0EXT"))],
        event_id=None,
        now=services.clock(),
    )
    outcomes = ingest(services, job_ids)
    assert [o.state for o in outcomes] == [IngestState.STORED]
    assert len(slack.calls_to("files.info")) == 1
    assert image_row(services, "F0EXT").width == 640


# -- bad input: a clear reason recorded, nothing crashes -------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (images.PDF, "scan.jpg", "this file is a PDF, only images are kept"),
        (b"", "empty.jpg", "the file is empty"),
        (images.jpeg(1600, 1200)[:9000], "cut.jpg", "cannot be read"),
        (images.png_claiming(40000, 40000), "bomb.png", "megapixels"),
        (images.SVG, "logo.svg", "SVG drawings are not kept"),
        (images.HTML, "really-a-page.jpg", "web page, not an image"),
    ],
)
def test_bad_files_fail_with_a_reason(
    services: Services, slack: SlackEmulator, content: bytes, name: str, reason: str
) -> None:
    outcomes = ingest(services, post_file(services, slack, content, name=name))
    assert outcomes[0].state == IngestState.FAILED
    assert reason in (outcomes[0].reason or "")
    job = job_row(services)
    assert job.state == IngestState.FAILED
    assert reason in (job.last_error or "")
    assert image_row(services).storage_key is None


def test_file_over_the_cap_is_refused_before_download(
    database_url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "m")
    env["MAX_IMAGE_MB"] = "1"
    services = make_services(env, clock=clock, watch=True)
    big = images.noisy_jpeg(1000, 1000)
    assert len(big) > 1024 * 1024
    outcomes = ingest(services, post_file(services, slack, big))
    assert outcomes[0].state == IngestState.FAILED
    assert "over 1 MB" in (outcomes[0].reason or "")
    assert slack.calls_to("files.download") == []
    # Slack's size can be missing or wrong: the download itself stops at the cap.
    slack_file = slack.add_file(
        "F0LIE", name="lie.jpg", content=big, mimetype="image/jpeg", filetype="jpg", user=POSTER
    )
    slack_file["size"] = 1000
    job_ids = record_posted_files(
        services.factory,
        post=POST,
        files=[posted_file_from_slack(slack_file)],
        event_id=None,
        now=services.clock(),
    )
    outcomes = ingest(services, job_ids)
    assert outcomes[0].state == IngestState.FAILED
    assert "over 1 MB" in (outcomes[0].reason or "")
    assert list((tmp_path / "downloads").glob("*")) == []  # no partial download left behind
    services.shutdown()


def test_html_login_page_instead_of_the_file(services: Services, slack: SlackEmulator) -> None:
    slack.inject("files.download", "html_login")
    outcomes = ingest(services, post_file(services, slack, images.jpeg()))
    assert outcomes[0].state == IngestState.FAILED
    assert "login page" in (outcomes[0].reason or "")
    assert "files:read" in (outcomes[0].reason or "")


def test_file_deleted_before_download(services: Services, slack: SlackEmulator) -> None:
    job_ids = post_file(services, slack, images.jpeg())
    slack.delete_file("F0001")
    outcomes = ingest(services, job_ids)
    assert outcomes[0].state == IngestState.FAILED
    assert "deleted from Slack" in (outcomes[0].reason or "")


def test_token_goes_only_to_slack_hosts(services: Services, slack: SlackEmulator) -> None:
    assert token_allowed_for("https://files.slack.com/files-pri/T-F/x.jpg", api_host=None)
    assert not token_allowed_for("https://files.slack.com.evil.example/x.jpg", api_host=None)
    assert not token_allowed_for("http://files.slack.com/x.jpg", api_host=None)
    assert not token_allowed_for("https://example.com/x.jpg", api_host="127.0.0.1")
    # A file whose link points at another host (here: the emulator under another name).
    slack_file = slack.add_file(
        "F0ODD",
        name="odd.jpg",
        content=images.jpeg(),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    slack_file["url_private_download"] = slack_file["url_private_download"].replace(
        "127.0.0.1", "localhost"
    )
    job_ids = record_posted_files(
        services.factory,
        post=POST,
        files=[posted_file_from_slack(slack_file)],
        event_id=None,
        now=services.clock(),
    )
    outcomes = ingest(services, job_ids)
    assert outcomes[0].state == IngestState.FAILED
    assert "not Slack" in (outcomes[0].reason or "")
    assert slack.calls_to("files.download") == []


def test_slack_rate_limit_on_download_is_retried_later(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    slack.inject("files.download", "ratelimited")
    job_ids = post_file(services, slack, images.jpeg())
    assert ingest(services, job_ids)[0].state == IngestState.QUEUED
    assert services.ingestor.sweep() == []  # not due yet
    clock.advance(minutes=5)
    assert [o.state for o in services.ingestor.sweep()] == [IngestState.STORED]


def test_a_date_and_name_given_while_the_download_waited_are_kept(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    slack.inject("files.download", "ratelimited")
    job_ids = post_file(services, slack, images.jpeg())  # its EXIF says 2026-11-03
    assert ingest(services, job_ids)[0].state == IngestState.QUEUED
    given = image_row(services).sort_at.replace(year=2024)
    with session_scope(services.factory) as session:  # as the details form saves them
        image = session.scalars(select(Image)).one()
        image.shoot_date, image.sort_at, image.uploader_name = given, given, "Agency Kim"
    clock.advance(minutes=5)
    assert [o.state for o in services.ingestor.sweep()] == [IngestState.STORED]
    image = image_row(services)
    assert (image.shoot_date, image.sort_at, image.uploader_name) == (given, given, "Agency Kim")
    assert image.camera == "Canon EOS R5"  # the rest of what the file says is recorded


# -- Cloudinary outages -------------------------------------------------------------------


def test_cloudinary_500_then_recovery_stores_once(
    cloud_services: Services, slack: SlackEmulator, cloudinary: CloudinaryEmulator, clock: FakeClock
) -> None:
    cloudinary.inject("server_error", times=2)
    job_ids = post_file(cloud_services, slack, images.jpeg(seed=21))
    first = ingest(cloud_services, job_ids)[0]
    assert first.state == IngestState.QUEUED
    assert "server error" in (first.reason or "")
    job = job_row(cloud_services)
    assert job.next_attempt_at > clock()
    clock.advance(minutes=2)
    assert [o.state for o in cloud_services.ingestor.sweep()] == [IngestState.QUEUED]
    clock.advance(minutes=5)
    assert [o.state for o in cloud_services.ingestor.sweep()] == [IngestState.STORED]
    assert len(cloudinary.uploads) == 1
    assert image_row(cloud_services).storage_key in cloudinary.uploads
    assert job_row(cloud_services).attempts == 3


def test_cloudinary_rejecting_a_too_large_file_fails_with_that_reason(
    cloud_services: Services, slack: SlackEmulator, cloudinary: CloudinaryEmulator
) -> None:
    cloudinary.inject("too_large")
    outcomes = ingest(cloud_services, post_file(cloud_services, slack, images.jpeg()))
    assert outcomes[0].state == IngestState.FAILED
    assert "too large" in (outcomes[0].reason or "")
    assert cloudinary.uploads == {}


def test_retryable_failures_give_up_after_max_attempts(
    cloud_services: Services, slack: SlackEmulator, cloudinary: CloudinaryEmulator, clock: FakeClock
) -> None:
    cloudinary.inject("server_error", times=MAX_ATTEMPTS)
    ingest(cloud_services, post_file(cloud_services, slack, images.jpeg()))
    for _ in range(MAX_ATTEMPTS):
        clock.advance(hours=2)
        cloud_services.ingestor.sweep()
    job = job_row(cloud_services)
    assert job.state == IngestState.FAILED
    assert job.attempts == MAX_ATTEMPTS
    assert "server error" in (job.last_error or "")


# -- crashes, restarts and concurrency ------------------------------------------------------


def test_job_abandoned_mid_run_is_resumed_by_the_sweep(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    job_ids = post_file(services, slack, images.jpeg())
    assert services.ingestor.claim(job_ids[0])  # a process took it... and died
    assert services.ingestor.sweep() == []  # its lease still holds
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert [o.state for o in services.ingestor.sweep()] == [IngestState.STORED]
    assert count(services, Image) == 1


def test_a_live_run_keeps_its_job_and_a_killed_ones_is_taken_over_within_a_minute(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    """A process killed mid-ingest (kill -9) leaves its job `running`: the next claim may take
    it only once the lease ran out, so the lease is short and a live run renews it."""
    (job_id,) = post_file(services, slack, images.jpeg())
    run_a = services.ingestor.claim(job_id)
    assert isinstance(run_a, Claim)

    def lease() -> object:
        return job_row(services).lease_until

    claimed_until = lease()
    keeper = LeaseKeeper(services.factory, services.clock, every=0.01)
    with keeper.keep(run_a):  # run A is alive, working on a slow download
        clock.advance(seconds=LEASE.total_seconds() - 1)
        wait_until(lambda: lease() != claimed_until, what="the lease renewed")
        clock.advance(seconds=LEASE.total_seconds() - 1)  # past its first lease
        assert services.ingestor.sweep() == []  # still run A's
    # Run A's process is killed: nothing renews its lease any more.
    clock.advance(seconds=61)
    assert [o.state for o in services.ingestor.sweep()] == [IngestState.STORED]  # run B
    assert renew(services.factory, [run_a], now=clock()) == 0  # taken over: A renews nothing
    assert count(services, Image) == 1


def test_database_restart_between_two_events(
    empty_postgres_url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    env = app_env(database_url=empty_postgres_url, slack=slack, media_dir=tmp_path / "m")
    services = make_services(env, clock=clock, watch=True)
    ingest(services, post_file(services, slack, images.jpeg(seed=1), file_id="F0A"))
    # What a restart looks like to the app: every server connection of ours dropped, the
    # ones idle in its pool too (from outside the app's pool).
    outside = create_engine(empty_postgres_url, poolclass=NullPool)
    with outside.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    outside.dispose()
    assert ended >= 1
    # The next event is recorded at its first delivery (Slack would retry a failure, but
    # the poster's image should not wait for that), and stored.
    outcomes = ingest(services, post_file(services, slack, images.jpeg(seed=2), file_id="F0B"))
    assert [o.state for o in outcomes] == [IngestState.STORED]
    assert count(services, Image) == 2
    services.shutdown()


def test_a_date_saved_just_as_the_image_is_marked_stored_is_kept(
    empty_postgres_url: str,
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    """Postgres only: SQLite has one writer at a time, so the two cannot interleave there."""
    env = app_env(
        database_url=empty_postgres_url,
        slack=slack,
        media_dir=tmp_path / "m",
        cloudinary=cloudinary,
    )
    services = make_services(env, clock=clock, watch=True)
    [job_id] = post_file(services, slack, images.jpeg())  # its EXIF says 2026-11-03
    cloudinary.inject("slow", delay=3)  # the upload gives us time to take the row
    outcomes: list[object] = []
    ingest_run = threading.Thread(target=lambda: outcomes.append(services.ingestor.run(job_id)))
    ingest_run.start()
    given = image_row(services).sort_at.replace(year=2024)
    with services.engine.connect() as form:  # the details form, saving a date
        wait_until(lambda: image_row(services).sha256 is not None, what="the upload under way")
        form.execute(text("SELECT 1 FROM images FOR SHARE"))
        wait_until(lambda: waiting_on_a_lock(services), what="the ingest waiting for the row")
        form.execute(text("UPDATE images SET shoot_date = :d, sort_at = :d"), {"d": given})
        form.commit()
    ingest_run.join(timeout=30)
    assert [o.state for o in outcomes] == [IngestState.STORED]  # type: ignore[attr-defined]
    image = image_row(services)
    assert (image.shoot_date, image.sort_at) == (given, given)
    assert image.camera == "Canon EOS R5"
    services.shutdown()


def test_a_private_first_post_racing_a_public_one_leaves_the_channel_private(
    empty_postgres_url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    """Postgres only (SQLite has one writer at a time): the channel was made private between
    two first posts delivered at once; the one that says public commits first."""
    env = app_env(database_url=empty_postgres_url, slack=slack, media_dir=tmp_path / "m")
    services = make_services(env, clock=clock, watch=True)
    recorded: list[list[int]] = []
    with services.engine.connect() as public_post:  # its transaction, not committed yet
        public_post.execute(
            text(
                "INSERT INTO channels (team_id, channel_id, is_private, checked_at, created_at) "
                "VALUES (:team, :channel, false, :now, :now)"
            ),
            {"team": TEAM, "channel": PUBLIC_CHANNEL, "now": clock()},
        )
        private_post = threading.Thread(
            target=lambda: recorded.append(
                post_file(
                    services,
                    slack,
                    images.jpeg(),
                    event_id="Ev2",
                    post=replace(POST, channel_private=True),
                )
            )
        )
        private_post.start()
        wait_until(lambda: waiting_on_a_lock(services), what="the private post waiting")
        public_post.commit()
    private_post.join(timeout=30)
    assert len(recorded) == 1 and len(recorded[0]) == 1
    with session_scope(services.factory) as session:
        assert session.scalars(select(Channel.is_private)).all() == [True]
        assert session.scalars(select(Image.channel_private)).all() == [True]
    services.shutdown()


def test_two_workers_never_claim_the_same_job(services: Services, slack: SlackEmulator) -> None:
    for n in range(12):
        post_file(services, slack, images.jpeg(seed=n), file_id=f"F{n:04d}")
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(slot: int) -> None:
        barrier.wait()
        for _ in range(12):
            taken = claim_next(services.factory, now=services.clock())
            if taken is not None:
                claimed[slot].append(taken.job_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = claimed[0] + claimed[1]
    assert len(everything) == 12
    assert len(set(everything)) == 12


def taken_over(services: Services, slack: SlackEmulator, clock: FakeClock) -> Claim:
    """Run A claims a posted file and stalls past its lease; run B (a sweep) takes the job
    over and stores the image. Returns run A's claim, for it to finally get going."""
    (job_id,) = post_file(services, slack, images.jpeg())
    run_a = services.ingestor.claim(job_id)
    assert isinstance(run_a, Claim)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert [o.state for o in services.ingestor.sweep()] == [IngestState.STORED]
    return run_a


def test_a_run_that_outlived_its_lease_cannot_undo_the_newer_result(
    services: Services, slack: SlackEmulator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    run_a = taken_over(services, slack, clock)
    with caplog.at_level(logging.INFO, logger="bot.ingestor"):
        late = services.ingestor.process(run_a)  # run A finally gets going
    assert late.state == IngestState.STORED
    assert job_row(services).state == IngestState.STORED
    assert "finished after its lease" in caplog.text
    assert len(slack.calls_to("chat.postEphemeral")) == 1  # the poster was told once


def test_a_run_taken_over_while_it_stored_the_original_writes_nothing_after(
    cloud_services: Services,
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Run A's lease runs out while its upload hangs, after it announced the bytes; run B
    takes the job over and stores the image. When A's upload returns, its result is
    dropped: the image is stored once, with one "uploaded" in its history."""
    (job_id,) = post_file(cloud_services, slack, images.jpeg())
    cloudinary.inject("slow", delay=3)  # run A's upload only
    outcomes: list[object] = []
    run_a = threading.Thread(target=lambda: outcomes.append(cloud_services.ingestor.run(job_id)))
    with caplog.at_level(logging.INFO, logger="bot.ingestor"):
        run_a.start()
        wait_until(lambda: image_row(cloud_services).sha256 is not None, what="A uploading")
        clock.advance(seconds=LEASE.total_seconds() + 1)
        assert [o.state for o in cloud_services.ingestor.sweep()] == [IngestState.STORED]
        run_a.join(timeout=30)
    assert [o.state for o in outcomes] == [IngestState.STORED]  # type: ignore[attr-defined]
    assert "finished after its lease" in caplog.text
    job = job_row(cloud_services)
    assert (job.state, job.attempts) == (IngestState.STORED, 2)
    with session_scope(cloud_services.factory) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.image_id == image_row(cloud_services).id)
        ).all()
    assert actions == ["uploaded"]


def test_a_run_that_outlived_its_lease_and_then_failed_leaves_the_stored_image_alone(
    services: Services, slack: SlackEmulator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    run_a = taken_over(services, slack, clock)
    stored = image_row(services)
    slack.delete_file("F0001")  # run A's download now fails for good (file_not_found)
    with caplog.at_level(logging.INFO, logger="bot.ingestor"):
        late = services.ingestor.process(run_a)
    assert late.state == IngestState.STORED  # the newer run's result, not run A's failure
    job = job_row(services)
    assert (job.state, job.last_error, job.lease_until) == (IngestState.STORED, None, None)
    assert image_row(services).storage_key == stored.storage_key
    assert isinstance(services.media, LocalStore)
    assert services.media.path_for(stored.storage_key).read_bytes() == images.jpeg()
    assert "result of an expired run dropped" in caplog.text
    assert len(slack.calls_to("chat.postEphemeral")) == 1  # told once, of the stored image


def test_the_posters_home_lists_stored_images_newest_first_in_the_list_their_details_say(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    from bot.details import DetailsInput, save_details
    from bot.home import home_images

    def post_named(file_id: str, name: str) -> list[int]:
        clock.advance(minutes=1)
        return post_file(
            services,
            slack,
            images.jpeg(seed=int(file_id[1:])),
            file_id=file_id,
            name=name,
            post=replace(POST, message_ts=f"17000001{file_id[1:]}.1"),
        )

    older, newer = post_named("F0001", "older.jpg"), post_named("F0002", "newer.jpg")
    post_named("F0003", "still-coming.jpg")  # recorded, not stored yet: not on the Home tab
    ingest(services, older + newer)

    def home() -> tuple[list[str], list[str]]:
        missing, recent = home_images(
            services.factory, team_id=TEAM, user_id=POSTER, media=services.media
        )
        return [i.title for i in missing], [i.title for i in recent]

    assert home() == (["newer", "older"], [])
    save_details(
        services.factory,
        team_id=TEAM,
        actor_id=POSTER,
        details=DetailsInput(titles={image_row(services, "F0001").id: "Older, detailed"}),
        now=clock(),
    )
    assert home() == (["newer"], ["Older, detailed"])
