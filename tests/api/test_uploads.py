"""Uploading through the API: the web upload's ingest and refusals, answered per file, and
an `Idempotency-Key` that makes a retried upload store its images once."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image as PILImage
from sqlalchemy import func, select

from bot.scheduler import run_all_once
from storage.access import IdempotencyKey
from storage.db import session_scope
from storage.models import Image
from tests.api.conftest import ApiDoor
from tests.conftest import MEMBER, POSTER, PRIVATE_CHANNEL
from tests.images import jpeg


def image_rows(api: ApiDoor) -> int:
    with session_scope(api.live.db.factory) as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


def test_several_files_are_answered_one_by_one_with_the_ingests_reasons(api: ApiDoor) -> None:
    poster = api.client(POSTER)
    answer = poster.upload(
        [
            ("good.jpg", jpeg(seed=21)),
            ("brief.jpg", b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"),
            ("empty.jpg", b""),
            ("again.jpg", jpeg(seed=21)),
        ]
    )
    assert answer.status == 200, answer.text
    good, pdf, empty, again = answer.json()["items"]
    assert good["state"] == "stored" and good["reason"] is None and good["duplicate_of"] is None
    assert pdf["state"] == "failed" and "PDF" in pdf["reason"], pdf
    assert empty["state"] == "failed" and "empty" in empty["reason"], empty
    assert again["duplicate_of"] == good["image_id"]
    assert poster.get(f"/api/v1/images/{good['image_id']}").status == 200
    assert poster.get(f"/api/v1/images/{pdf['image_id']}").status == 404
    renditions = poster.get(f"/api/v1/images/{good['image_id']}/renditions").json()
    names = [r["name"] for r in renditions["items"]]
    assert names[0] == "original" and {"web", "square", "large", "thumb"} <= set(names)
    original = api.anonymous().get(renditions["items"][0]["url"].removeprefix(api.url))
    assert original.status == 200 and original.headers["Content-Type"] == "image/jpeg"
    assert original.body == jpeg(seed=21)
    # The square size is cropped to a square (the web page's Square download), not fitted.
    square = next(r for r in renditions["items"] if r["name"] == "square")
    assert square["crop"] is True
    squared = api.anonymous().get(square["url"].removeprefix(api.url))
    assert squared.status == 200 and squared.headers["Content-Type"] == "image/jpeg"
    with PILImage.open(io.BytesIO(squared.body)) as picture:
        assert picture.width == picture.height


def test_an_upload_for_a_conversation_the_uploader_is_not_in_is_refused(api: ApiDoor) -> None:
    member = api.client(MEMBER)
    refused = member.upload([("sneak.jpg", jpeg(seed=22))], audience=PRIVATE_CHANNEL)
    assert refused.status == 422 and "audience" in refused.json()["errors"]
    nothing = member.upload([])
    assert nothing.status == 422 and "file" in nothing.json()["errors"]
    assert image_rows(api) == 0


def test_a_retried_upload_stores_its_images_once_and_gets_the_same_answer(api: ApiDoor) -> None:
    poster = api.client(POSTER)
    files = [("one.jpg", jpeg(seed=23)), ("two.jpg", jpeg(seed=24))]
    first = poster.upload(files, key="upload-7f3a")
    assert first.status == 200 and [i["state"] for i in first.json()["items"]] == ["stored"] * 2
    retry = poster.upload(files, key="upload-7f3a")
    assert retry.status == 200 and retry.json() == first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert image_rows(api) == 2

    other = poster.upload([("three.jpg", jpeg(seed=25))], key="upload-7f3a")
    assert other.status == 422 and other.headers["Content-Type"] == "application/problem+json"
    assert other.json()["type"].endswith("#problem-idempotency-key-reused")
    assert image_rows(api) == 2
    # Keys are per person: someone else's same key is their own.
    assert api.client(MEMBER).upload([("m.jpg", jpeg(seed=26))], key="upload-7f3a").status == 200


def test_a_retry_while_the_first_is_still_working_is_told_to_wait(api: ApiDoor) -> None:
    """(A claimed key without an answer yet is what the first request leaves meanwhile.)"""
    poster = api.client(POSTER)
    files = [("slow.jpg", jpeg(seed=27))]
    assert poster.upload(files, key="slow-1").status == 200
    with session_scope(api.live.db.factory) as session:
        row = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "slow-1")).one()
        row.status, row.response = None, None
    busy = poster.upload(files, key="slow-1")
    assert busy.status == 409 and busy.headers["Retry-After"] == "2"
    assert busy.json()["type"].endswith("#problem-idempotency-key-in-use")
    assert image_rows(api) == 1


def test_keys_older_than_a_day_are_forgotten(api: ApiDoor) -> None:
    poster = api.client(POSTER)
    assert poster.upload([("old.jpg", jpeg(seed=28))], key="old-key").status == 200
    assert poster.upload([("new.jpg", jpeg(seed=29))], key="new-key").status == 200
    with session_scope(api.live.db.factory) as session:
        old = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "old-key")).one()
        old.created_at -= timedelta(hours=25)
    assert run_all_once(api.live.db)["prune_idempotency_keys"] == 1
    with session_scope(api.live.db.factory) as session:
        assert list(session.scalars(select(IdempotencyKey.key))) == ["new-key"]
