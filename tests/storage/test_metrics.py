"""The facts /metrics reads from the database: failed ingests by a few categories of reason
(the reasons the app really writes), on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client.core import Metric
from sqlalchemy.orm import Session, sessionmaker

from bot.ingest_queue import UNFINISHED
from bot.ingestor import INTERNAL_ERROR
from storage.db import make_engine, make_session_factory, session_scope
from storage.metrics import LibraryFacts
from storage.models import IngestJob, IngestState
from tests import seed

REASONS = {
    f"gave up after 6 attempts: {UNFINISHED}": "unfinished",
    "the file is over 50 MB, the limit for the library": "too_large",
    "the image has 200 megapixels; the limit is 100 megapixels": "too_large",
    "the image is 9000 x 9000 pixels and would need about 310 MB to read; the limit is 256 MB": (
        "too_large"
    ),
    "Cloudinary refused the file as too large (File size too large.)": "too_large",
    "this file is not an image (JPEG, PNG, GIF, WebP or HEIC are kept)": "not_an_image",
    "the JPEG file is damaged and cannot be read": "not_an_image",
    "the file is empty": "not_an_image",
    "gave up after 6 attempts: Cloudinary had a server error": "media_store",
    "gave up after 6 attempts: could not write the original to disk: [Errno 28]": "media_store",
    f"gave up after 6 attempts: {INTERNAL_ERROR}": "internal",
    "Slack sent its login page instead of the file: the app is missing the files:read scope": (
        "download"
    ),
    "the app is not installed in this workspace": "download",
    "the uploaded file is gone; upload it again": "download",
    "a reason written by a later version": "other",
}


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def samples(facts: LibraryFacts) -> dict[tuple[str, tuple[str, ...]], float]:
    found: list[Metric] = list(facts.collect())
    return {(s.name, tuple(s.labels.values())): s.value for m in found for s in m.samples}


def add_job(factory: sessionmaker[Session], state: IngestState, reason: str | None) -> None:
    """An image and its ingest job in `state`, posted at seed.START."""
    image_id = seed.add(factory, "picture")
    with session_scope(factory) as session:
        session.add(
            IngestJob(
                team_id=seed.TEAM,
                image_id=image_id,
                state=state,
                next_attempt_at=seed.START,
                last_error=reason,
                created_at=seed.START,
                updated_at=seed.START,
            )
        )


def test_failed_ingests_are_counted_by_category_of_reason(
    factory: sessionmaker[Session],
) -> None:
    for reason in REASONS:
        add_job(factory, IngestState.FAILED, reason)
    add_job(factory, IngestState.QUEUED, None)

    found = samples(LibraryFacts(factory, lambda: seed.START + timedelta(minutes=3)))

    expected: dict[str, int] = {}
    for category in REASONS.values():
        expected[category] = expected.get(category, 0) + 1
    by_reason = {
        labels[0]: value for (name, labels), value in found.items() if name.endswith("failed_jobs")
    }
    assert by_reason == expected
    assert found[("imglib_ingest_jobs", ("queued",))] == 1
    assert found[("imglib_ingest_oldest_job_age_seconds", ())] == 180
    assert found[("imglib_database_up", ())] == 1
