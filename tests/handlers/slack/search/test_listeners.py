"""Search: `/images <query>` answered privately with results, paging in place, sharing into
the channel (and when that is refused), opening the original, an image's history."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

from tests import images
from tests.conftest import ADMIN, GUEST, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL
from tests.handlers.slack.harness import Harness, Sent, buttons, said
from tests.seed import START, add

FILES = itertools.count(1)


def seed(h: Harness, title: str, **kw: Any) -> int:
    """An image in the library whose Slack file exists (so Slack can show its preview)."""
    file_id = f"F0S{next(FILES):05d}"
    kw.setdefault("uploader", POSTER)
    kw.setdefault("channel", PUBLIC_CHANNEL)
    h.slack.add_file(
        file_id,
        name=f"{title}.jpg",
        content=images.jpeg(64, 48, seed=len(title)),
        mimetype="image/jpeg",
        filetype="jpg",
        user=kw["uploader"],
    )
    return add(h.services.factory, title, file_id=file_id, **kw)


def search(h: Harness, text: str, *, user: str = MEMBER, channel: str = PUBLIC_CHANNEL) -> Sent:
    sent = h.command(text, user=user, channel=channel)
    assert (sent.status, sent.body) == (200, "")
    return sent


def titles(answer: dict[str, Any]) -> list[str]:
    """The titles of the results, in the order shown."""
    return [
        b["text"]["text"].split("\n")[0].strip("*")
        for b in answer["blocks"]
        if b["type"] == "section" and "by <@" in b["text"]["text"]
    ]


def test_search_answers_privately_with_previews_and_actions(h: Harness) -> None:
    seed(h, "CMO keynote", tags=("CMO", "keynote"), category="Marketing")
    seed(h, "Team lunch", tags=("team",))
    answer = h.answer(search(h, "search CMO"))
    assert answer["response_type"] == "ephemeral"
    text = said(answer["blocks"])
    assert "*1 image* for `CMO`" in text
    assert titles(answer) == ["CMO keynote"]
    for part in ("CMO \u00b7 keynote", "Marketing", "2026-11-01", "by <@UPOSTER>", "approved"):
        assert part in text
    (preview,) = [b for b in answer["blocks"] if b["type"] == "image"]
    assert "slack_file" in preview
    for action in ("share_image", "request_approval", "show_history"):
        assert len(buttons(answer["blocks"], action)) == 1
    assert buttons(answer["blocks"], "edit_details") == []  # MEMBER did not post it


def test_the_poster_and_admins_can_edit_from_a_result(h: Harness) -> None:
    seed(h, "CMO keynote", tags=("CMO",))
    for user in (POSTER, ADMIN):
        answer = h.answer(search(h, "CMO", user=user))
        assert len(buttons(answer["blocks"], "edit_details")) == 1


def test_a_preview_slack_cannot_load_does_not_sink_the_answer(h: Harness) -> None:
    add(
        h.services.factory,
        "CMO keynote",
        tags=("CMO",),
        file_id="F0GONE",
        uploader=POSTER,
        channel=PUBLIC_CHANNEL,
    )  # Slack no longer has the file its preview points at
    sent = search(h, "CMO")
    answer = h.answer(sent)
    assert titles(answer) == ["CMO keynote"]
    assert [b for b in answer["blocks"] if b["type"] == "image"] == []
    refused, accepted = h.calls("response_url")  # refused whole, then sent without previews
    assert (refused.status, accepted.status) == (400, 200)


def test_nothing_found_says_so_and_suggests_close_tags(h: Harness) -> None:
    seed(h, "CMO keynote", tags=("keynote",))
    answer = h.answer(search(h, "kenote"))
    text = said(answer["blocks"])
    assert "*0 images* for `kenote`" in text
    assert "Nothing found." in text
    assert "`tag:keynote`" in text
    assert titles(answer) == []


def test_an_empty_search_shows_how_to_search(h: Harness) -> None:
    assert "tag:CMO" in said(h.answer(search(h, "search")))


def test_filters_it_does_not_know_are_explained(h: Harness) -> None:
    seed(h, "CMO keynote", tags=("CMO",))
    text = said(h.answer(search(h, "CMO colour:red tag:"))["blocks"])
    assert "I don't know the filter \u201ccolour:\u201d" in text
    assert "\u201ctag:\u201d needs something after it" in text
    assert "*1 image* for `CMO`" in text


def test_paging_replaces_the_answer_in_place(h: Harness) -> None:
    for n in range(7):
        seed(h, f"Shot {n}", tags=("series",), when=START + timedelta(hours=n))
    first = h.answer(search(h, "tag:series"))
    assert "*7 images*" in said(first["blocks"])
    assert titles(first) == ["Shot 6", "Shot 5", "Shot 4", "Shot 3", "Shot 2"]
    assert buttons(first["blocks"], "search_newer") == []
    (older,) = buttons(first["blocks"], "search_older")
    assert json.loads(older["value"])["q"] == "tag:series"  # the button carries the query
    click = h.click("search_older", older["value"], user=MEMBER)
    assert (click.status, click.body) == (200, "")
    second = h.answer(click)
    assert second["replace_original"] is True
    assert titles(second) == ["Shot 1", "Shot 0"]
    (newer,) = buttons(second["blocks"], "search_newer")
    assert buttons(second["blocks"], "search_older") == []
    back = h.answer(h.click("search_newer", newer["value"], user=MEMBER))
    assert titles(back) == ["Shot 6", "Shot 5", "Shot 4", "Shot 3", "Shot 2"]


def test_a_private_channels_images_are_found_only_by_its_members(h: Harness) -> None:
    seed(h, "Secret launch", tags=("launch",), channel=PRIVATE_CHANNEL, private=True)
    seed(h, "Public launch", tags=("launch",))
    assert titles(h.answer(search(h, "launch", user=MEMBER))) == ["Public launch"]
    assert sorted(titles(h.answer(search(h, "launch", user=POSTER)))) == [
        "Public launch",
        "Secret launch",
    ]


def share(h: Harness, image_id: int, *, user: str = MEMBER, channel: str = PUBLIC_CHANNEL) -> str:
    """Click "Share to channel" on a result shown in `channel`; the private answer."""
    click = h.click("share_image", str(image_id), user=user, channel=channel)
    assert (click.status, click.body) == (200, "")
    answer = h.answer(click)
    assert (answer["response_type"], answer["replace_original"]) == ("ephemeral", False)
    return answer["text"]


def test_share_posts_the_image_in_the_channel_with_who_shared_it(h: Harness) -> None:
    image_id = seed(h, "CMO keynote", tags=("CMO",))
    assert "Shared *CMO keynote* in <#C0SHOOTS>" in share(h, image_id)
    (post,) = h.calls("chat.postMessage")
    assert post.params["channel"] == PUBLIC_CHANNEL
    text = said(post.params["blocks"])
    assert "shared by <@UMEMBER>" in text
    assert "posted by <@UPOSTER>" in text


def test_share_is_refused_where_the_image_may_not_go(h: Harness) -> None:
    public = seed(h, "CMO keynote", tags=("CMO",))
    secret = seed(h, "Secret launch", channel=PRIVATE_CHANNEL, private=True)
    h.slack.add_channel("C0ELSE", "elsewhere", members=[ADMIN, "UBOT"])
    h.slack.add_channel("C0AGENCY", "with-agency", members=[MEMBER, GUEST, "UBOT"])
    h.slack.add_channel("C0CONNECT", "partner", members=[MEMBER, "UBOT"], is_ext_shared=True)
    assert "only share into a channel you are in" in share(h, public, channel="C0ELSE")
    assert "private conversation" in share(h, secret, user=POSTER)
    assert "guest(s)" in share(h, public, channel="C0AGENCY")
    assert "another organisation" in share(h, public, channel="C0CONNECT")
    assert "not yours to see" in share(h, secret, user=MEMBER)  # cannot even see it
    assert h.calls("chat.postMessage") == []


def test_open_original_is_only_acknowledged(h: Harness) -> None:
    image_id = seed(h, "CMO keynote")
    click = h.click("open_original", str(image_id), user=MEMBER)
    assert (click.status, click.body) == (200, "")  # Slack opens the link itself
    assert h.answers(click) == []


def test_history_tells_who_did_what(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0HIST", seed=1)
    answer = h.answer(h.click("show_history", str(image_id), user=MEMBER))
    assert answer["replace_original"] is False
    assert "History of" in answer["text"]
    assert "<@UPOSTER> uploaded" in said(answer["blocks"])
