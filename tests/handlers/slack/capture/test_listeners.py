"""Capture: `message` events with images in watched channels, and the channel events (the
bot invited, a channel made private)."""

from __future__ import annotations

from typing import Any

import pytest

from tests import images
from tests.conftest import ADMIN, MEMBER, POSTER, PUBLIC_CHANNEL
from tests.fakes.signed import encode_event
from tests.handlers.slack.harness import Harness, blocks_by_id, buttons, said
from tests.seed import add


def jobs(h: Harness) -> list[tuple[Any, ...]]:
    """(Slack file id, ingest state) of every image the app has recorded."""
    return h.rows(
        "SELECT images.slack_file_id, ingest_jobs.state FROM ingest_jobs "
        "JOIN images ON images.id = ingest_jobs.image_id ORDER BY images.slack_file_id"
    )


def test_image_post_is_recorded_before_the_ack_and_the_poster_is_prompted(
    watching: Harness,
) -> None:
    h = watching
    sent = h.post(h.add_jpeg("F0CMO", seed=1, name="CMO_keynote.jpg"))
    assert (sent.status, sent.body) == (200, "")
    # Recorded in the middleware, before Bolt answered Slack: a crash now loses nothing.
    assert [file_id for file_id, _ in jobs(h)] == ["F0CMO"]
    prompt = h.wait_for("chat.postEphemeral")[-1]
    assert prompt.params["user"] == POSTER
    assert prompt.params["channel"] == PUBLIC_CHANNEL
    assert "Your image is in the library" in said(prompt.params["blocks"])
    (add_details,) = buttons(prompt.params["blocks"], "add_details")
    assert add_details["value"].isdigit()
    (reaction,) = h.calls("reactions.add")
    assert reaction.params == {
        "channel": PUBLIC_CHANNEL,
        "timestamp": sent.payload["event"]["ts"],
        "name": "frame_with_picture",
    }
    assert jobs(h) == [("F0CMO", "stored")]


def test_slack_retries_of_one_event_keep_the_image_once(watching: Harness) -> None:
    h = watching
    envelope = h.slack.message_event(
        channel=PUBLIC_CHANNEL, user=POSTER, files=[h.add_jpeg("F0RETRY", seed=2)]
    )
    replies = [h.deliver(envelope)] + [h.deliver(envelope, retry_num=n) for n in (1, 2, 3)]
    assert [r.status for r in replies] == [200, 200, 200, 200]
    h.wait_for("chat.postEphemeral")
    h.settle()
    assert jobs(h) == [("F0RETRY", "stored")]
    assert len(h.calls("files.download")) == 1
    assert len(h.ephemerals(POSTER)) == 1


def test_the_file_shared_companion_is_answered_200_and_does_no_work_twice(
    watching: Harness,
) -> None:
    """Slack sends `file_shared` beside the `message` event for the same file: answered 404,
    Slack would deliver it three more times; the message alone records the image."""
    h = watching
    file_id = h.add_jpeg("F0SHARED", seed=5)
    companion = h.slack.file_shared_event(file_id, channel=PUBLIC_CHANNEL, user=POSTER)
    before = h.deliver(companion)
    h.post(file_id)
    after = h.deliver(h.slack.file_shared_event(file_id, channel=PUBLIC_CHANNEL, user=POSTER))
    assert [before.status, after.status] == [200, 200]
    h.wait_for("chat.postEphemeral")
    h.settle()
    assert jobs(h) == [("F0SHARED", "stored")]
    assert len(h.calls("files.download")) == 1
    assert len(h.ephemerals(POSTER)) == 1


def test_several_images_in_one_message_get_one_prompt(watching: Harness) -> None:
    h = watching
    h.slack.add_file(
        "F0BRIEF",
        name="brief.pdf",
        content=images.PDF,
        mimetype="application/pdf",
        filetype="pdf",
        user=POSTER,
    )
    _, prompt = h.post_and_prompt(
        h.add_jpeg("F0ONE", seed=3), h.add_jpeg("F0TWO", seed=4), "F0BRIEF"
    )
    text = said(prompt.params["blocks"])
    assert "2 images are in the library" in text
    assert "brief.pdf" not in text  # not an image: not kept, and no noise about it
    (add_details,) = buttons(prompt.params["blocks"], "add_details")
    assert len(add_details["value"].split(",")) == 2
    assert [file_id for file_id, _ in jobs(h)] == ["F0ONE", "F0TWO"]


def test_a_file_that_is_not_really_an_image_gets_a_reason(watching: Harness) -> None:
    h = watching
    h.slack.add_file(
        "F0FAKE",
        name="fake.jpg",
        content=images.HTML,
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    _, prompt = h.post_and_prompt("F0FAKE")
    text = said(prompt.params["blocks"])
    assert "This file was not kept" in text
    assert "fake.jpg" in text
    assert "web page, not an image" in text
    assert [c.params["name"] for c in h.calls("reactions.add")] == ["warning"]


def test_images_in_an_unwatched_channel_are_not_kept(h: Harness) -> None:
    sent = h.post(h.add_jpeg("F0RANDOM", seed=5))
    assert sent.status == 200
    h.settle()
    assert jobs(h) == []
    assert h.calls("files.download") == []
    assert h.calls("chat.postEphemeral") == []


def test_messages_without_images_are_acknowledged_not_retried(watching: Harness) -> None:
    h = watching
    plain = h.slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, text="lunch?")
    assert h.deliver(plain).status == 200  # a 404 would make Slack deliver it 3 more times
    h.settle()
    assert jobs(h) == []


def test_bot_posts_and_edits_are_not_captured(watching: Harness) -> None:
    h = watching
    bot_post = h.slack.message_event(
        channel=PUBLIC_CHANNEL, user="UOTHERBOT", files=[h.add_jpeg("F0BOT", seed=6)]
    )
    bot_post["event"]["bot_id"] = "B0OTHER"
    edit = h.slack.message_event(
        channel=PUBLIC_CHANNEL, user=POSTER, files=[h.add_jpeg("F0EDIT", seed=7)]
    )
    edit["event"]["subtype"] = "message_changed"
    assert h.deliver(bot_post).status == 200
    assert h.deliver(edit).status == 200
    h.settle()
    assert jobs(h) == []


def test_slack_connect_file_stub_is_looked_up_and_kept(watching: Harness) -> None:
    h = watching
    h.add_jpeg("F0EXT", seed=8)
    envelope = h.slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0EXT"])
    envelope["event"]["files"] = [h.slack.file_stub("F0EXT")]
    assert h.deliver(envelope).status == 200
    prompt = h.wait_for("chat.postEphemeral")[-1]
    assert "Your image is in the library" in said(prompt.params["blocks"])
    assert [c.params["file"] for c in h.calls("files.info")] == ["F0EXT"]


def test_a_request_not_signed_by_slack_is_refused(watching: Harness) -> None:
    h = watching
    envelope = h.slack.message_event(
        channel=PUBLIC_CHANNEL, user=POSTER, files=[h.add_jpeg("F0FORGED", seed=9)]
    )
    body, content_type = encode_event(envelope)
    response = h.dispatch(body, content_type, signature="v0=" + "0" * 64)
    assert response.status == 401
    stale = h.dispatch(body, content_type, timestamp=1_000_000_000)  # signed, but from 2001
    assert stale.status == 401
    h.settle()
    assert jobs(h) == []


def test_bot_invited_to_an_unwatched_channel_tells_the_inviter_how_to_watch(h: Harness) -> None:
    h.slack.add_channel("C0NEW", "new-shoots", members=[MEMBER, "UBOT"])
    sent = h.event(
        {
            "type": "member_joined_channel",
            "user": "UBOT",
            "channel": "C0NEW",
            "channel_type": "C",
            "inviter": MEMBER,
            "event_ts": "1.1",
        }
    )
    assert sent.status == 200
    (told,) = h.wait_for("chat.postEphemeral")
    assert (told.params["channel"], told.params["user"]) == ("C0NEW", MEMBER)
    assert "`/images watch <#C0NEW> [category]`" in told.params["text"]


def test_bot_invited_to_a_watched_channel_or_someone_else_joining_says_nothing(
    watching: Harness,
) -> None:
    h = watching
    for user, inviter in (("UBOT", MEMBER), (ADMIN, MEMBER)):
        sent = h.event(
            {
                "type": "member_joined_channel",
                "user": user,
                "channel": PUBLIC_CHANNEL,
                "channel_type": "C",
                "inviter": inviter,
                "event_ts": "1.2",
            }
        )
        assert sent.status == 200
    h.settle()
    assert h.calls("chat.postEphemeral") == []


def test_a_channel_made_private_hides_its_images_from_non_members(watching: Harness) -> None:
    h = watching
    h.slack.add_user("UOUT", "otto", real_name="Otto Outside")  # a full member, not in #shoots
    add(h.services.factory, "Launch teaser", tags=("launch",), channel=PUBLIC_CHANNEL)

    def otto_finds() -> str:
        return said(h.answer(h.command("launch", user="UOUT"))["blocks"])

    assert "*1 image*" in otto_finds()
    made_private = h.slack.message_event(
        channel=PUBLIC_CHANNEL, user=ADMIN, subtype="channel_convert_to_private"
    )
    assert h.deliver(made_private).status == 200
    h.settle()
    assert "*0 images*" in otto_finds()
    assert "*1 image*" in said(h.answer(h.command("launch", user=MEMBER))["blocks"])


# -- the message shortcut -------------------------------------------------------------------------


def test_shortcut_on_a_message_without_images_says_so(h: Harness) -> None:
    message = {"type": "message", "user": POSTER, "text": "no pictures", "ts": "1700000001.000100"}
    sent = h.message_shortcut("add_to_library", message)
    assert (sent.status, sent.body) == (200, "")
    _, view = h.opened_view(sent)
    assert "This message has no images to add" in said(view)


def test_shortcut_in_an_unwatched_channel_saves_the_images_then_shows_the_form(
    h: Harness,
) -> None:
    h.slack.add_channel("C0RANDOM", "random", members=[POSTER, MEMBER, "UBOT"])
    envelope = h.slack.message_event(
        channel="C0RANDOM",
        user=POSTER,
        files=[h.add_jpeg("F0SC1", seed=10), h.add_jpeg("F0SC2", seed=11)],
    )
    sent = h.message_shortcut("add_to_library", envelope["event"], channel="C0RANDOM")
    assert sent.status == 200
    view_id, view = h.opened_view(sent)
    assert "Saving 2 image(s)" in said(view)
    (update,) = h.wait_for("views.update", predicate=lambda c: c.params["view_id"] == view_id)
    titles = [b for b in blocks_by_id(update.params["view"]) if b.startswith("title:")]
    assert len(titles) == 2
    assert h.ephemerals(POSTER) == []  # the modal was the answer, no prompt in the channel


def test_shortcut_by_someone_else_keeps_the_images_but_leaves_details_to_the_poster(
    h: Harness,
) -> None:
    envelope = h.slack.message_event(
        channel=PUBLIC_CHANNEL, user=POSTER, files=[h.add_jpeg("F0SC3", seed=12)]
    )
    sent = h.message_shortcut("add_to_library", envelope["event"], user=MEMBER)
    _, view = h.opened_view(sent)
    assert "Only <@UPOSTER>, who posted them, or an admin" in said(view)
    reaction = h.wait_for("reactions.add")[-1]  # kept all the same
    assert reaction.params["name"] == "frame_with_picture"


@pytest.mark.parametrize("who", [POSTER, ADMIN])
def test_shortcut_on_images_already_kept_opens_the_form_at_once(
    watching: Harness, who: str
) -> None:
    h = watching
    envelope, _ = h.post_and_prompt(h.add_jpeg("F0SC4", seed=13))
    sent = h.message_shortcut("add_to_library", envelope.payload["event"], user=who)
    _, view = h.opened_view(sent)
    assert view["callback_id"] == "details.modal"
    assert any(block_id.startswith("title:") for block_id in blocks_by_id(view))


# -- duplicates -----------------------------------------------------------------------------------


def test_a_repost_of_the_same_picture_can_be_discarded_from_the_prompt(watching: Harness) -> None:
    h = watching
    data = images.jpeg(320, 240, seed=14)
    for file_id in ("F0ORIG", "F0AGAIN"):
        h.slack.add_file(
            file_id,
            name=f"{file_id.lower()}.jpg",
            content=data,
            mimetype="image/jpeg",
            filetype="jpg",
            user=POSTER,
        )
    h.post_and_prompt("F0ORIG")
    _, prompt = h.post_and_prompt("F0AGAIN")
    assert "looks like" in said(prompt.params["blocks"])
    (discard,) = buttons(prompt.params["blocks"], "discard_duplicate")
    answer = h.answer(h.click("discard_duplicate", discard["value"]))
    assert answer["replace_original"] is True
    assert "Discarded. Nothing from that message is in the library now." in answer["text"]
    found = h.answer(h.command("f0again", user=POSTER))
    assert "*0 images*" in said(found["blocks"])
