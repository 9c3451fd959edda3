"""End to end: the app runs as its own process (gunicorn, or Socket Mode), "Slack" delivers
signed events over real HTTP (or the Socket Mode WebSocket), and we check what was stored and
what Slack saw. Both databases; both media stores."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from bot.ingest_queue import LEASE
from bot.services import Services
from storage.db import session_scope
from storage.models import Image, IngestJob, IngestState
from tests import images
from tests.conftest import (
    POSTER,
    PUBLIC_CHANNEL,
    ROOT,
    AppProcess,
    app_env,
    free_port,
    make_services,
)
from tests.fakes.cloudinary_api import CloudinaryEmulator
from tests.fakes.slack_api import SlackEmulator
from tests.live import Live, RealClock, wait_until

SLACK_ACK_LIMIT = 3.0  # seconds: Slack's own deadline for every request


def open_picture(data: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(data))


def observer(
    env: dict[str, str], offset: timedelta = timedelta(), *, watch: bool = False
) -> Services:
    """The test's own view of the app's database (and, with an offset clock, a worker)."""
    return make_services(env, clock=RealClock(offset), watch=watch)


def stored_images(services: Services) -> list[Image]:
    with session_scope(services.factory) as session:
        return list(
            session.scalars(
                select(Image)
                .join(IngestJob, IngestJob.image_id == Image.id)
                .where(IngestJob.state == IngestState.STORED)
            )
        )


def image_count(services: Services) -> int:
    with session_scope(services.factory) as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


@pytest.mark.parametrize("store", ["local", "cloudinary"])
def test_posted_jpeg_is_stored_once_despite_slack_retries(
    store: str,
    database_url: str,
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
) -> None:
    env = app_env(
        database_url=database_url,
        slack=slack,
        media_dir=tmp_path / "media",
        cloudinary=cloudinary if store == "cloudinary" else None,
    )
    db = observer(env, watch=True)
    app = run_app(env)
    data = images.jpeg(2400, 1600, seed=7)
    slack.add_file(
        "F0CMO",
        name="CMO_keynote.jpg",
        content=data,
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    envelope = slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0CMO"])

    sender = app.sender()
    replies = [sender.event(envelope)]
    replies += [sender.event(envelope, retry_num=n, retry_reason="http_timeout") for n in (1, 2, 3)]

    assert [r.status for r in replies] == [200, 200, 200, 200]
    assert max(r.elapsed for r in replies) < SLACK_ACK_LIMIT
    wait_until(lambda: len(stored_images(db)) == 1, what="the image to be stored")
    time.sleep(0.3)  # give a wrongly duplicated job the chance to show itself
    assert image_count(db) == 1
    (image,) = stored_images(db)
    assert (image.width, image.height, image.format) == (2400, 1600, "JPEG")
    assert image.sha256 and len(image.sha256) == 64
    assert image.phash is not None
    assert image.shoot_date == datetime(2026, 11, 3, 13, 5, 9, tzinfo=UTC)
    assert image.channel_id == PUBLIC_CHANNEL
    assert image.uploader_id == POSTER
    assert len(slack.calls_to("files.download")) == 1
    if store == "cloudinary":
        assert list(cloudinary.uploads) == [image.storage_key]
        assert cloudinary.uploads[image.storage_key].data == data
    else:
        assert (tmp_path / "media" / "originals" / image.storage_key).read_bytes() == data
    db.shutdown()


def test_local_media_is_served_from_signed_links_only(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    port = free_port()
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media", port=port)
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    db = observer(env, watch=True)
    app = run_app(env)
    data = images.jpeg(1200, 800, seed=5)
    slack.add_file(
        "F0LINK",
        name="link.jpg",
        content=data,
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    app.sender().event(slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0LINK"]))
    wait_until(lambda: len(stored_images(db)) == 1, what="the image to be stored")
    (image,) = stored_images(db)
    assert image.storage_key is not None
    original = db.media.original_url(image.storage_key)
    thumb = db.media.thumbnail_url(image.storage_key, width=240, height=160)
    assert original is not None
    assert thumb is not None
    with urllib.request.urlopen(original, timeout=5) as response:
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.read() == data
    with urllib.request.urlopen(thumb, timeout=5) as response:
        preview = open_picture(response.read())
        assert max(preview.size) <= 240
        assert preview.format == "JPEG"
    for bad in (thumb.replace("w=240", "w=2000"), original.split("?")[0]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 403
    db.shutdown()


def test_app_killed_mid_ingest_loses_nothing(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    db = observer(env, watch=True)
    app = run_app(env)
    slack.add_file(
        "F0KILL",
        name="kill.jpg",
        content=images.jpeg(seed=9),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    slack.inject("files.download", "slow", delay=20)
    reply = app.sender().event(
        slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0KILL"])
    )
    assert reply.status == 200

    def job_state() -> str | None:
        with session_scope(db.factory) as session:
            return session.scalar(select(IngestJob.state))

    wait_until(lambda: job_state() == IngestState.RUNNING, what="the download to start")
    time.sleep(0.5)  # the app is mid-download (the emulator answers after 20 s)...
    app.kill()  # ...and dies without a chance to clean up
    assert job_state() == IngestState.RUNNING
    assert stored_images(db) == []

    # The worker's sweep, once the dead process's lease has run out.
    worker = observer(env, offset=LEASE + timedelta(seconds=5))
    assert [outcome.state for outcome in worker.ingestor.sweep()] == [IngestState.STORED]
    assert len(stored_images(db)) == 1
    assert image_count(db) == 1
    worker.shutdown()
    db.shutdown()


def test_requests_not_signed_by_slack_are_refused(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    db = observer(env, watch=True)
    app = run_app(env)
    slack.add_file(
        "F0SIG",
        name="a.jpg",
        content=images.jpeg(),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    body = json.dumps(slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0SIG"]))
    sender = app.sender()
    forged = sender.post(body, content_type="application/json", signature="v0=" + "0" * 64)
    stale = sender.post(body, content_type="application/json", timestamp=int(time.time()) - 600)
    assert (forged.status, stale.status) == (401, 401)
    assert image_count(db) == 0
    assert slack.calls_to("files.download") == []
    db.shutdown()


def test_messages_without_images_are_acknowledged_quietly(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    db = observer(env, watch=True)
    app = run_app(env)
    sender = app.sender()
    plain = sender.event(
        slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, text="hello", subtype=None)
    )
    slack.add_file(
        "F0BOT",
        name="b.jpg",
        content=images.jpeg(),
        mimetype="image/jpeg",
        filetype="jpg",
        user="UBOT",
    )
    own = sender.event(slack.message_event(channel=PUBLIC_CHANNEL, user="UBOT", files=["F0BOT"]))
    # 200, not 404: an unmatched event would make Slack retry it three more times.
    assert (plain.status, own.status) == (200, 200)
    time.sleep(0.5)
    assert image_count(db) == 0
    db.shutdown()


def test_socket_mode_receives_and_stores(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(
        database_url=database_url, slack=slack, media_dir=tmp_path / "media", socket_mode=True
    )
    db = observer(env, watch=True)
    app = run_app(env, command=("socket",))
    assert slack.socket_connected(timeout=20)
    # Socket Mode checks no signatures, so its HTTP side takes no Slack requests at all.
    forged = app.sender().command(
        **slack.slash_command("/images", user=POSTER, channel=PUBLIC_CHANNEL, text="help")
    )
    assert forged.status == 404
    assert slack.calls_to("response_url") == []
    slack.add_file(
        "F0SOCK",
        name="socket.png",
        content=images.png(seed=4),
        mimetype="image/png",
        filetype="png",
        user=POSTER,
    )
    envelope = slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0SOCK"])
    started = time.perf_counter()
    ack = slack.socket_send(envelope, type="events_api")
    assert time.perf_counter() - started < SLACK_ACK_LIMIT
    assert ack is not None
    assert ack["envelope_id"]
    wait_until(lambda: len(stored_images(db)) == 1, what="the image to be stored")
    (image,) = stored_images(db)
    assert (image.format, image.width, image.height) == ("PNG", 320, 240)
    db.shutdown()


def test_make_run_without_slack_serves_a_page_saying_what_to_set(
    tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(
        database_url=f"sqlite:///{tmp_path / 'fresh' / 'library.db'}",
        slack=None,
        media_dir=tmp_path / "media",
    )
    app = run_app(env, command=("run",))
    with urllib.request.urlopen(app.url + "/", timeout=5) as response:
        page = response.read().decode()
    assert "Slack is not connected" in page
    for variable in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        assert variable in page
    with urllib.request.urlopen(app.url + "/healthz", timeout=5) as response:
        health = json.loads(response.read())
    assert health == {
        "ok": True,
        "down": [],
        "reasons": {},
        "database": "ok",
        "media": "ok",
        "media_store": "local",
        "slack": "unconfigured",
    }
    reply = app.sender().event({"type": "event_callback"})
    assert reply.status == 503
    assert b"SLACK_BOT_TOKEN" in reply.body
    # `run` migrated the fresh database before serving.
    db = observer(env)
    assert image_count(db) == 0
    db.shutdown()


def test_missing_setting_fails_at_start_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,  # no stray .env
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SLACK_SIGNING_SECRET": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not: set it "
        "(one workspace), or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (install in any workspace)"
    ]


def test_a_stopping_app_finishes_the_ingest_under_way_and_tells_the_poster(live: Live) -> None:
    """A deploy stops the web process (SIGTERM) while an image is being downloaded: the
    process finishes that ingest and the prompt before it exits."""
    live.slack.inject("files.download", "slow", delay=2.0)
    live.post(live.add_jpeg("F0DEPLOY", seed=31))
    live.slack.wait_for("files.download", timeout=10)  # the download is under way...
    live.app.stop()  # ...when the process is told to stop
    assert [image.slack_file_id for image in live.stored()] == ["F0DEPLOY"]
    prompts = [
        c for c in live.slack.calls_to("chat.postEphemeral") if c.params.get("user") == POSTER
    ]
    assert len(prompts) == 1
