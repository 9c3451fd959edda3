"""Web uploads through the library's own ingest, with no Slack: the same checks and refusal
reasons, who sees them, retries that find the file again, and the uploads folder kept tidy."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot import uploads
from bot.finder import visible_image
from bot.ports import DownloadError, FileSource
from bot.services import Services
from bot.uploads import Audience, UploadedFiles, UploadRefused, audience_for, prune, receive
from storage.media import MediaError, MediaInfo, MediaStore, StoredMedia
from tests import images
from tests.bot.fakes import (
    ADMIN,
    GUEST,
    MEMBER,
    POSTER,
    SECRET,
    TEAM,
    FakeClock,
    FakeFiles,
)

WORKSPACE = Audience(uploads.WORKSPACE, private=False)


@pytest.fixture
def files(tmp_path: Path) -> FileSource:
    """Web uploads read from the library's uploads folder, as wired in production."""
    return UploadedFiles(FakeFiles(), tmp_path / "uploads")


def upload(services: Services, who: str, data: bytes, name: str = "shot.jpg") -> Any:
    staged = services.settings.media_dir.parent / f"staged-{time.monotonic_ns()}"
    staged.write_bytes(data)
    person = services.people.person(TEAM, who)
    return receive(
        services, person, path=staged, name=name, content_type="image/jpeg", audience=WORKSPACE
    )


def left_in_uploads(services: Services) -> list[Path]:
    folder = uploads.uploads_dir(services)
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_an_upload_is_stored_for_members_and_its_file_is_not_kept(services: Services) -> None:
    result = upload(services, POSTER, images.jpeg(seed=3), name="Launch_party.jpg")
    assert (result.state, result.reason, result.title) == ("stored", None, "Launch party")
    member = services.people.person(TEAM, MEMBER)
    guest = services.people.person(TEAM, GUEST)
    assert visible_image(services.factory, image_id=result.image_id, viewer=member.viewer)
    assert not visible_image(services.factory, image_id=result.image_id, viewer=guest.viewer)
    assert left_in_uploads(services) == []


def test_bad_files_are_refused_with_the_reasons_slack_gives(services: Services) -> None:
    pdf = upload(services, POSTER, b"%PDF-1.4 brief", name="brief.pdf")
    assert pdf.state == "failed" and pdf.reason == "this file is a PDF, only images are kept"
    empty = upload(services, POSTER, b"", name="empty.jpg")
    assert empty.state == "failed" and empty.reason == "the file is empty"
    assert left_in_uploads(services) == []


def test_a_second_copy_is_named_a_duplicate_of_the_first(services: Services) -> None:
    first = upload(services, POSTER, images.jpeg(seed=8))
    second = upload(services, MEMBER, images.jpeg(seed=8))
    assert second.duplicate_of == first.image_id


def test_guests_and_outsiders_choose_only_their_own_conversations(services: Services) -> None:
    guest = services.people.person(TEAM, GUEST)
    with pytest.raises(UploadRefused, match="Guests can only share"):
        audience_for(services, guest, "workspace")
    admin = services.people.person(TEAM, ADMIN)  # an admin, but not in the private channel
    with pytest.raises(UploadRefused, match="conversation you are in"):
        audience_for(services, admin, SECRET)
    member = services.people.person(TEAM, MEMBER)
    assert audience_for(services, member, SECRET) == Audience(SECRET, private=True)
    assert audience_for(services, member, "workspace") == WORKSPACE


class DownOnce:
    """The media store, away for the first `times` uploads (an outage of Cloudinary)."""

    def __init__(self, inner: MediaStore, times: int = 1) -> None:
        self.inner, self.times, self.name = inner, times, inner.name

    def put(self, path: Path, info: MediaInfo) -> StoredMedia:
        if self.times:
            self.times -= 1
            raise MediaError("the media store is away", retryable=True)
        return self.inner.put(path, info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_upload_whose_store_was_away_is_kept_for_the_retry_then_tidied(
    services: Services,
) -> None:
    services.media = DownOnce(services.media)  # type: ignore[assignment]
    result = upload(services, POSTER, images.jpeg(seed=5))
    assert result.state == "queued" and "away" in (result.reason or "")
    assert prune(services) == 0 and len(left_in_uploads(services)) == 1
    clock = services.clock
    assert isinstance(clock, FakeClock)
    clock.advance(hours=2)
    [retried] = services.ingestor.sweep()
    assert retried.state == "stored" and retried.image_id == result.image_id
    assert prune(services) == 1 and left_in_uploads(services) == []


def test_files_no_job_points_at_are_removed_once_old(services: Services) -> None:
    folder = uploads.uploads_dir(services)
    folder.mkdir(parents=True, exist_ok=True)
    fresh, stale = folder / "fresh.part", folder / "stale.part"
    fresh.write_bytes(b"x")
    stale.write_bytes(b"x")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    assert prune(services) == 1
    assert left_in_uploads(services) == [fresh]


def test_pruning_many_uploaded_files_looks_their_jobs_up_together(services: Services) -> None:
    """download_url has no index (the ack writes it): one lookup per file read the whole
    jobs table once per file, hourly, after an agency's large upload."""
    folder = uploads.uploads_dir(services)
    folder.mkdir(parents=True, exist_ok=True)
    hours_ago = time.time() - 7200
    for n in range(30):
        stale = folder / f"stale{n}.part"
        stale.write_bytes(b"x")
        os.utime(stale, (hours_ago, hours_ago))
    engine = services.factory.kw["bind"]
    lookups: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM ingest_jobs" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        assert prune(services) == 30
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert len(lookups) == 1
    assert left_in_uploads(services) == []


def test_only_upload_tokens_are_read_from_the_uploads_folder(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    (tmp_path / "secret").write_bytes(b"not yours")
    files = UploadedFiles(FakeFiles(), folder)
    for url in ("upload:../secret", "upload:", "upload:a/b", "upload:" + "x" * 19):
        with pytest.raises(DownloadError, match="upload it again") as refused:
            files.fetch(TEAM, url, dest_dir=tmp_path / "dl", max_bytes=1024)
        assert not refused.value.retryable
    # A well-formed token whose file is not on this disk (taken by another web process):
    # retried, so that process's own polling can finish it.
    with pytest.raises(DownloadError, match="another machine") as elsewhere:
        files.fetch(TEAM, "upload:" + "y" * 32, dest_dir=tmp_path / "dl", max_bytes=1024)
    assert elsewhere.value.retryable
