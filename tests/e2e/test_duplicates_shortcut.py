"""End to end: duplicate detection and its choices; the "Add to image library" shortcut."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from sqlalchemy import text

from bot.duplicates import look_alikes
from handlers.slack.capture import ids as capture_ids
from storage.models import Image
from storage.visibility import Viewer
from tests import images
from tests.conftest import ADMIN, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL, TEAM
from tests.live import Live, wait_until


def all_text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def values_of(blocks: list[dict], action_id: str) -> list[str]:  # type: ignore[type-arg]
    return [
        e["value"]
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == action_id
    ]


def test_same_bytes_posted_again_is_flagged_and_can_be_discarded(live: Live) -> None:
    data = images.jpeg(seed=40)
    for file_id in ("F0ORIG", "F0AGAIN"):
        live.slack.add_file(
            file_id,
            name=f"{file_id}.jpg",
            content=data,
            mimetype="image/jpeg",
            filetype="jpg",
            user=POSTER,
        )
    live.post("F0ORIG")
    live.wait_for_prompt(count=1)
    live.post("F0AGAIN")
    prompt = live.wait_for_prompt(count=2)
    said = all_text(prompt.params["blocks"])
    assert "looks like the very same file as" in said
    assert "<@UPOSTER>" in said
    (discard,) = values_of(prompt.params["blocks"], capture_ids.DISCARD_DUPLICATE)
    assert values_of(prompt.params["blocks"], capture_ids.KEEP_DUPLICATE) == [discard]

    click = live.click(capture_ids.DISCARD_DUPLICATE, discard, user=MEMBER)
    refusal = wait_until(lambda: live.responses(click["response_url"]), what="refusal")[-1]
    assert "Only the person who posted" in refusal["text"]

    click = live.click(capture_ids.DISCARD_DUPLICATE, discard)
    answer = wait_until(lambda: live.responses(click["response_url"]), what="answer")[-1]
    assert answer["replace_original"] is True
    assert [i.slack_file_id for i in live.stored()] == ["F0ORIG"]
    (kept,) = live.stored()
    # Same bytes, same content address: the kept image's original is still there.
    assert kept.storage_key is not None
    assert (live.db.settings.media_dir / "originals" / kept.storage_key).read_bytes() == data


def test_near_duplicate_is_flagged_and_can_be_kept(live: Live) -> None:
    live.slack.add_file(
        "F0HQ",
        name="hq.jpg",
        content=images.jpeg(1200, 900, seed=41, quality=95),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    live.slack.add_file(
        "F0LQ",
        name="lq.jpg",
        content=images.jpeg(600, 450, seed=41, quality=60),
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    live.post("F0HQ")
    live.wait_for_prompt(count=1)
    live.post("F0LQ")
    prompt = live.wait_for_prompt(count=2)
    assert "almost the same picture as" in all_text(prompt.params["blocks"])
    (keep,) = values_of(prompt.params["blocks"], capture_ids.KEEP_DUPLICATE)
    click = live.click(capture_ids.KEEP_DUPLICATE, keep)
    answer = wait_until(lambda: live.responses(click["response_url"]), what="answer")[-1]
    assert capture_ids.KEEP_DUPLICATE not in all_text(answer["blocks"])
    assert len(live.stored()) == 2
    image = live.image(int(keep))
    assert image is not None
    assert image.duplicate_of_id is None


def test_different_pictures_are_not_flagged(live: Live) -> None:
    live.post(live.add_jpeg("F0ONE", seed=42))
    live.wait_for_prompt(count=1)
    live.post(live.add_jpeg("F0TWO", seed=43))
    prompt = live.wait_for_prompt(count=2)
    assert values_of(prompt.params["blocks"], capture_ids.KEEP_DUPLICATE) == []


def test_near_duplicate_lookup_uses_the_band_indexes(database_url: str) -> None:
    """With a realistic library (one team, thousands of images), the planner must answer
    the whole look-alike query (bands, stored, visible to the poster) from the four band
    indexes, not by walking the team's images."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from bot.imaging import phash_bands
    from storage.db import make_engine

    engine = make_engine(database_url)
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows = []
    for n in range(5000):
        phash = rng.getrandbits(64) - (1 << 63)
        b0, b1, b2, b3 = phash_bands(phash)
        rows.append(
            {
                "team_id": TEAM,
                "slack_file_id": f"F{n:06d}",
                "channel_id": PUBLIC_CHANNEL,
                "uploader_id": POSTER,
                "file_name": "x.jpg",
                "title": "x",
                "description": "",
                "tags": [],
                "tag_keys": [],
                "sort_at": now,
                "status": "draft",
                "exif": {},
                "phash": phash,
                "phash_b0": b0,
                "phash_b1": b1,
                "phash_b2": b2,
                "phash_b3": b3,
                "created_at": now,
                "updated_at": now,
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(Image), rows)
        connection.execute(
            text(
                "INSERT INTO ingest_jobs (team_id, image_id, state, attempts, next_attempt_at,"
                " created_at, updated_at) SELECT team_id, id, 'stored', 1, created_at,"
                " created_at, created_at FROM images"
            )
        )
        connection.execute(text("ANALYZE"))
    query = look_alikes(
        TEAM,
        0x1234_5678_9ABC_DEF0,
        exclude=0,
        viewer=Viewer(team_id=TEAM, is_guest=False, channels=frozenset({PRIVATE_CHANNEL})),
        sqlite=engine.dialect.name == "sqlite",
    )
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            plan = "\n".join(r[0] for r in connection.execute(text(f"EXPLAIN {compiled}")))
        else:
            plan = "\n".join(
                str(r[-1]) for r in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
    engine.dispose()
    for band in range(4):
        assert f"ix_images_team_phash_b{band}" in plan, plan
    assert "Seq Scan" not in plan
    assert "SCAN images" not in plan


# -- the message shortcut ----------------------------------------------------------------


def shortcut_payload(
    live: Live, *, user: str, channel: str, message: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": capture_ids.ADD_TO_LIBRARY_SHORTCUT,
        "trigger_id": live.slack.new_trigger_id(),
        "response_url": live.slack.new_response_url(channel=channel, user=user),
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "name": user.lower(), "team_id": TEAM},
        "channel": {"id": channel, "name": "random"},
        "message_ts": message["ts"],
        "message": message,
        "api_app_id": "A0EMUAPP1",
        "token": "x",
        "is_enterprise_install": False,
    }


def test_shortcut_on_an_unwatched_channel_saves_and_opens_the_form(live: Live) -> None:
    live.slack.add_channel("C0RANDOM", "random", members=[POSTER, MEMBER, "UBOT"])
    envelope = live.slack.message_event(
        channel="C0RANDOM",
        user=POSTER,
        files=[live.add_jpeg("F0SC1", seed=44), live.add_jpeg("F0SC2", seed=45)],
    )
    payload = shortcut_payload(live, user=POSTER, channel="C0RANDOM", message=envelope["event"])
    reply = live.sender.interactive(payload)
    assert reply.status == 200
    view_id, view = live.opened_view()
    assert "Saving 2 image(s)" in all_text(view)
    update = live.slack.wait_for("views.update", timeout=20)[-1]
    assert update.params["view_id"] == view_id
    blocks_ids = [b.get("block_id", "") for b in update.params["view"]["blocks"]]
    assert sum(1 for b in blocks_ids if b.startswith("title:")) == 2
    assert len(live.stored()) == 2
    assert live.slack.calls_to("chat.postEphemeral") == []  # the modal was the answer


def test_shortcut_by_someone_else_adds_but_leaves_details_to_the_poster(live: Live) -> None:
    envelope = live.slack.message_event(
        channel=PUBLIC_CHANNEL, user=POSTER, files=[live.add_jpeg("F0SC3", seed=46)]
    )
    payload = shortcut_payload(live, user=MEMBER, channel=PUBLIC_CHANNEL, message=envelope["event"])
    assert live.sender.interactive(payload).status == 200
    _, view = live.opened_view()
    assert "Only <@UPOSTER>" in all_text(view)
    wait_until(live.stored, what="the image to be stored")


def test_shortcut_on_a_message_without_images(live: Live) -> None:
    message = {"type": "message", "user": POSTER, "text": "no pictures", "ts": "1700000001.000100"}
    payload = shortcut_payload(live, user=POSTER, channel=PUBLIC_CHANNEL, message=message)
    assert live.sender.interactive(payload).status == 200
    _, view = live.opened_view()
    assert "no images to add" in all_text(view)


@pytest.mark.parametrize("who", [POSTER, ADMIN])
def test_shortcut_on_already_stored_images_opens_the_form_at_once(live: Live, who: str) -> None:
    envelope = live.post(live.add_jpeg("F0SC4", seed=47))
    live.wait_for_prompt()
    payload = shortcut_payload(live, user=who, channel=PUBLIC_CHANNEL, message=envelope["event"])
    assert live.sender.interactive(payload).status == 200
    _, view = live.opened_view()
    assert any(b.get("block_id", "").startswith("title:") for b in view["blocks"])


def test_shortcut_on_files_that_cannot_be_kept_says_why(live: Live) -> None:
    live.slack.add_file(
        "F0FAKE",
        name="fake.jpg",
        content=images.HTML,
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    envelope = live.slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0FAKE"])
    payload = shortcut_payload(live, user=POSTER, channel=PUBLIC_CHANNEL, message=envelope["event"])
    assert live.sender.interactive(payload).status == 200
    update = live.slack.wait_for("views.update", timeout=20)[-1]
    said = all_text(update.params["view"])
    assert "None of these files could be kept" in said
    assert "fake.jpg: this file is a web page, not an image" in said


def test_a_duplicate_the_poster_cannot_see_is_not_named(live: Live) -> None:
    live.command(f"watch <#{PRIVATE_CHANNEL}|launch-secret>")
    data = images.jpeg(seed=70)
    for file_id, user in (("F0SECRET", POSTER), ("F0SAME", MEMBER)):
        live.slack.add_file(
            file_id,
            name=f"{file_id}.jpg",
            content=data,
            mimetype="image/jpeg",
            filetype="jpg",
            user=user,
        )
    live.post("F0SECRET", channel=PRIVATE_CHANNEL)
    live.wait_for_prompt(user=POSTER)
    live.post("F0SAME", user=MEMBER)
    prompt = live.wait_for_prompt(user=MEMBER)
    said = all_text(prompt.params["blocks"])
    assert "looks like" not in said
    assert values_of(prompt.params["blocks"], capture_ids.DISCARD_DUPLICATE) == []
