"""EXIF is untrusted input: broken or hostile EXIF ends as a stored image without the field
(never a crashed job), through the real Ingestor against the Slack emulator, on SQLite and
on Postgres (which refuses NUL in text and JSON, and over-long strings in String(255))."""

from __future__ import annotations

import json
import shutil

import pytest

from bot.services import Services
from storage.models import IngestState
from tests import images
from tests.bot import test_ingestor as ingest_tests
from tests.bot.test_ingestor import image_row, ingest, job_row, post_file
from tests.conftest import FakeClock
from tests.fakes.slack_api import SlackEmulator

# The same fixtures as the ingest tests: the real Services on SQLite and on Postgres.
clock = ingest_tests.clock
services = ingest_tests.services


def test_jpeg_whose_exif_has_an_invalid_tiff_header_is_stored_without_exif(
    services: Services, slack: SlackEmulator
) -> None:
    data = images.with_app1(images.tiny_jpeg(), images.BAD_TIFF_HEADER_EXIF)
    assert len(data) < 1024  # the whole attack is a few hundred bytes
    outcomes = ingest(services, post_file(services, slack, data))
    assert [o.state for o in outcomes] == [IngestState.STORED]
    image = image_row(services)
    assert (image.width, image.height, image.format) == (8, 8, "JPEG")
    assert image.camera is None
    assert image.exif == {}
    assert job_row(services).last_error is None


def test_exif_text_over_255_characters_is_left_out(
    services: Services, slack: SlackEmulator
) -> None:
    data = images.jpeg_with_exif_text(
        make="M" * 300, model="X" * 400, lens="L" * 2000, taken="2026:11:03 14:05:09"
    )
    outcomes = ingest(services, post_file(services, slack, data))
    assert [o.state for o in outcomes] == [IngestState.STORED]
    image = image_row(services)
    assert image.camera is None
    assert "make" not in image.exif
    assert "model" not in image.exif
    assert "lens_model" not in image.exif
    # The rest of the EXIF is still read.
    assert image.shoot_date is not None
    assert image.shoot_date.isoformat() == "2026-11-03T14:05:09+00:00"


def test_nul_bytes_in_make_and_model_never_reach_the_database(
    services: Services, slack: SlackEmulator
) -> None:
    data = images.jpeg_with_exif_text(
        make="Canon\x00\x00junk",
        model="EOS R5\x00",
        lens="RF\x0024-70mm",
        taken="2026:11:03 14:05:09\x00\x00",
    )
    outcomes = ingest(services, post_file(services, slack, data))
    assert [o.state for o in outcomes] == [IngestState.STORED]
    image = image_row(services)
    # A NUL ends an EXIF string, as in C: what follows it is padding or garbage.
    assert image.camera == "Canon EOS R5"
    assert image.exif["lens_model"] == "RF"
    assert "\x00" not in json.dumps(image.exif, ensure_ascii=False)
    assert image.shoot_date is not None


def test_an_unforeseen_error_keeps_the_job_for_a_retry(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    # The local store's temporary directory vanished (someone cleaned the disk): not an
    # error the store maps, so it reaches the ingest's last-resort handler.
    tmp_dir = services.settings.media_dir / "tmp"
    shutil.rmtree(tmp_dir)
    outcomes = ingest(services, post_file(services, slack, images.jpeg(seed=21)))
    assert [o.state for o in outcomes] == [IngestState.QUEUED]
    job = job_row(services)
    assert job.state == IngestState.QUEUED
    assert job.last_error == "an internal error; will retry"
    assert job.lease_until is None
    tmp_dir.mkdir()
    clock.advance(hours=1)
    assert [o.state for o in services.ingestor.sweep()] == [IngestState.STORED]


@pytest.mark.parametrize(
    ("taken", "offset"),
    [
        # Moved to UTC, these fall outside Python's years 1-9999: every attempt used to crash.
        ("0001:01:01 00:00:00", "+01:00"),
        ("9999:12:31 23:59:59", "-01:00"),
        ("1000:06:01 12:00:00", None),  # before photography: junk, not a date to show
    ],
)
def test_an_impossible_exif_date_is_left_out(
    services: Services, slack: SlackEmulator, taken: str, offset: str | None
) -> None:
    data = images.jpeg_with_exif_text(
        make="Canon", model="EOS R5", lens="RF", taken=taken, offset=offset
    )
    outcomes = ingest(services, post_file(services, slack, data))
    assert [o.state for o in outcomes] == [IngestState.STORED]
    image = image_row(services)
    assert image.shoot_date is None
    assert image.camera == "Canon EOS R5"  # the rest of the EXIF is still read
    assert job_row(services).last_error is None
