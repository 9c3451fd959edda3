"""End to end: `/images <query>` as people see it, paging, sharing and who sees what."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

from handlers.slack.details import ids as details_ids
from handlers.slack.search import ids as search_ids
from storage.db import session_scope
from storage.models import Image
from tests import images
from tests.conftest import ADMIN, GUEST, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL, TEAM
from tests.live import Live, wait_until
from tests.seed import START, add

FILES = itertools.count(1)


def seed(live: Live, title: str, **kw: Any) -> int:
    """A stored image whose Slack file exists (so Slack can show its preview)."""
    file_id = f"F0S{next(FILES):05d}"
    live.slack.add_file(
        file_id,
        name=f"{title}.jpg",
        content=images.jpeg(seed=len(title)),
        mimetype="image/jpeg",
        filetype="jpg",
        user=kw.get("uploader", POSTER),
    )
    kw.setdefault("channel", PUBLIC_CHANNEL)
    kw.setdefault("uploader", POSTER)
    return add(live.db.factory, title, file_id=file_id, **kw)


def search(live: Live, text: str, *, user: str = MEMBER, channel: str = PUBLIC_CHANNEL) -> dict:  # type: ignore[type-arg]
    return live.command(text, user=user, channel=channel)


def said(answer: dict) -> str:  # type: ignore[type-arg]
    return json.dumps(answer.get("blocks", []), ensure_ascii=False)


def result_titles(answer: dict) -> list[str]:  # type: ignore[type-arg]
    return [
        b["text"]["text"].split("\n")[0].strip("*").split("|")[-1].rstrip(">")
        for b in answer["blocks"]
        if b["type"] == "section" and "\n" in b["text"]["text"] and "by <@" in b["text"]["text"]
    ]


def buttons(answer: dict, action_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        e
        for b in answer["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    ]


def test_search_answers_privately_with_previews_and_actions(live: Live) -> None:
    seed(live, "CMO keynote", tags=("CMO", "keynote"), category="Marketing")
    seed(live, "Team lunch", tags=("team",))
    answer = search(live, "CMO")
    assert answer["response_type"] == "ephemeral"
    assert "*1 image* for `CMO`" in said(answer)
    assert result_titles(answer) == ["CMO keynote"]
    image_blocks = [b for b in answer["blocks"] if b["type"] == "image"]
    assert len(image_blocks) == 1
    assert "slack_file" in image_blocks[0]
    text = said(answer)
    for part in ("CMO \u00b7 keynote", "Marketing", "2026-11-01", "by <@UPOSTER>", "approved"):
        assert part in text
    assert len(buttons(answer, search_ids.SHARE_IMAGE)) == 1
    assert buttons(answer, details_ids.EDIT_DETAILS) == []  # MEMBER did not post it
    assert len(buttons(search(live, "CMO", user=POSTER), details_ids.EDIT_DETAILS)) == 1
    assert len(buttons(search(live, "search CMO", user=ADMIN), details_ids.EDIT_DETAILS)) == 1


def test_empty_search_shows_help(live: Live) -> None:
    assert "tag:CMO" in said(search(live, "search"))
    assert "tag:CMO" in said(search(live, ""))


def test_unknown_filters_and_bad_values_are_explained(live: Live) -> None:
    seed(live, "CMO keynote", tags=("CMO",))
    answer = said(search(live, "CMO colour:red tag: by:nobody in:#nowhere"))
    assert "I don't know the filter \u201ccolour:\u201d" in answer
    assert "\u201ctag:\u201d needs something after it" in answer
    assert "I can't tell who \u201cnobody\u201d is" in answer
    assert "I can't find the channel \u201c#nowhere\u201d" in answer
    assert "*1 image* for `CMO`" in answer


def test_no_results_suggest_the_closest_tags(live: Live) -> None:
    seed(live, "CMO keynote", tags=("keynote",))
    answer = said(search(live, "kenote"))
    assert "Nothing found" in answer
    assert "`tag:keynote`" in answer
    typo = search(live, "tag:keynot")
    assert result_titles(typo) == ["CMO keynote"]
    assert "showing *keynote*" in said(typo)


def test_hostile_and_huge_queries_get_an_answer(live: Live) -> None:
    seed(live, "CMO keynote", tags=("CMO",))
    for text in ["'; DROP TABLE images; --", '"unbalanced', "x" * 2000, "<!channel> <@U123>"]:
        answer = search(live, text)
        assert "image" in said(answer)
    assert "&lt;!channel&gt;" in said(search(live, "<!channel>"))
    assert result_titles(search(live, "CMO")) == ["CMO keynote"]


def test_paging_replaces_the_message_in_place(live: Live) -> None:
    for n in range(12):
        seed(live, f"Shot {n:02d}", tags=("series",), when=START + timedelta(hours=n))
    first = search(live, "tag:series")
    assert "*12 images*" in said(first)
    assert result_titles(first) == [f"Shot {n:02d}" for n in (11, 10, 9, 8, 7)]
    assert buttons(first, search_ids.SEARCH_NEWER) == []
    (older,) = buttons(first, search_ids.SEARCH_OLDER)
    click = live.click(search_ids.SEARCH_OLDER, older["value"], user=MEMBER)
    second = wait_until(lambda: live.responses(click["response_url"]), what="page 2")[-1]
    assert second["replace_original"] is True
    assert result_titles(second) == [f"Shot {n:02d}" for n in (6, 5, 4, 3, 2)]
    (newer,) = buttons(second, search_ids.SEARCH_NEWER)
    (older2,) = buttons(second, search_ids.SEARCH_OLDER)

    # The library changes under the open message: paging still answers sensibly.
    with session_scope(live.db.factory) as session:
        for image in session.query(Image).filter(Image.title.in_(["Shot 01", "Shot 00"])):
            session.delete(image)
    click = live.click(search_ids.SEARCH_OLDER, older2["value"], user=MEMBER)
    third = wait_until(lambda: live.responses(click["response_url"]), what="page 3")[-1]
    assert result_titles(third) == []
    assert "Nothing found" in said(third)
    click = live.click(search_ids.SEARCH_NEWER, newer["value"], user=MEMBER)
    back = wait_until(lambda: live.responses(click["response_url"]), what="page 1 again")[-1]
    assert result_titles(back) == [f"Shot {n:02d}" for n in (11, 10, 9, 8, 7)]


# -- visibility ---------------------------------------------------------------------------


def test_private_channel_images_only_for_its_members(live: Live) -> None:
    seed(live, "Secret launch", tags=("launch",), channel=PRIVATE_CHANNEL, private=True)
    seed(live, "Public launch", tags=("launch",))
    assert result_titles(search(live, "launch", user=MEMBER)) == ["Public launch"]
    assert sorted(result_titles(search(live, "launch", user=POSTER))) == [
        "Public launch",
        "Secret launch",
    ]


def test_guests_see_only_images_from_their_channels(live: Live) -> None:
    live.slack.add_channel("C0GUESTS", "agency", members=[GUEST, POSTER, "UBOT"])
    seed(live, "Agency pick", tags=("launch",), channel="C0GUESTS")
    seed(live, "Public launch", tags=("launch",))
    assert result_titles(search(live, "launch", user=GUEST, channel="C0GUESTS")) == ["Agency pick"]
    assert len(result_titles(search(live, "launch", user=MEMBER))) == 2


def tag_options(live: Live, typed: str, *, user: str) -> list[str]:
    """What the details modal's tag select offers `user` as they type `typed`."""
    payload = {
        "type": "block_suggestion",
        "action_id": details_ids.TAGS,
        "block_id": details_ids.TAGS_BLOCK,
        "value": typed,
        "team": {"id": TEAM},
        "user": {"id": user},
        "api_app_id": "A0EMUAPP1",
        "view": {"id": "V1", "type": "modal", "callback_id": details_ids.DETAILS_MODAL},
    }
    reply = live.sender.interactive(payload)
    assert reply.status == 200
    return [o["value"] for o in reply.json()["options"]]


def test_private_channel_tags_stay_in_the_channel(live: Live) -> None:
    live.slack.add_channel("C0GUESTS", "agency", members=[GUEST, POSTER, "UBOT"])
    seed(live, "Falcon mock-up", tags=("Project Falcon",), channel=PRIVATE_CHANNEL, private=True)
    seed(live, "Falcon sketch", tags=("Falcon",), channel=PRIVATE_CHANNEL, private=True)
    seed(live, "Projector", tags=("Projects",), uploader=MEMBER)  # the member's own image
    seed(live, "Agency pick", tags=("Agency",), channel="C0GUESTS", uploader=GUEST)

    # Autocomplete in the details modal, as each of them types a prefix of the private tag.
    assert tag_options(live, "proj", user=MEMBER) == ["proj", "Projects"]
    assert tag_options(live, "proj", user=GUEST) == ["proj"]
    assert tag_options(live, "proj", user=POSTER) == ["proj", "Project Falcon", "Projects"]

    # `tag:` with a typo of the private tag: not corrected to it, and no "did you mean" it.
    for user in (MEMBER, GUEST):
        channel = "C0GUESTS" if user == GUEST else PUBLIC_CHANNEL
        for text in ("tag:falcn", "tag:falcom", "falcn"):
            answer = said(search(live, text, user=user, channel=channel))
            assert "Nothing found" in answer
            assert "falcon" not in answer.casefold().replace(text.casefold(), "")
    typo = search(live, "tag:falcn", user=POSTER)
    assert result_titles(typo) == ["Falcon sketch"]
    assert "showing *Falcon*" in said(typo)
    assert "`tag:Falcon`" in said(search(live, "falcn", user=POSTER))


def test_category_counts_are_of_images_the_person_may_see(live: Live) -> None:
    seed(live, "Public one", category="Marketing")
    seed(live, "Secret one", category="Marketing", channel=PRIVATE_CHANNEL, private=True)
    seed(live, "Secret two", category="Marketing", channel=PRIVATE_CHANNEL, private=True)

    def marketing(user: str) -> str:
        answer = said(live.command("categories", user=user))
        return answer.split("*Marketing* \u2014 ")[1].split(" image")[0]

    assert marketing(MEMBER) == "1"
    assert marketing(GUEST) == "0"
    assert marketing(POSTER) == "3"


# -- sharing ------------------------------------------------------------------------------


def share(live: Live, image_id: int, *, user: str, channel: str) -> dict:  # type: ignore[type-arg]
    click = live.click(search_ids.SHARE_IMAGE, str(image_id), user=user, channel=channel)
    return wait_until(lambda: live.responses(click["response_url"]), what="share answer")[-1]


def test_share_to_channel_posts_the_image_with_attribution(live: Live) -> None:
    image_id = seed(live, "CMO keynote", tags=("CMO",))
    answer = share(live, image_id, user=MEMBER, channel=PUBLIC_CHANNEL)
    assert "Shared *CMO keynote*" in answer["text"]
    (post,) = live.slack.calls_to("chat.postMessage")
    assert post.params["channel"] == PUBLIC_CHANNEL
    text = json.dumps(post.params["blocks"])
    assert "shared by <@UMEMBER>" in text
    assert "posted by <@UPOSTER>" in text


def test_share_refused_for_a_channel_the_user_is_not_in(live: Live) -> None:
    live.slack.add_channel("C0ELSE", "elsewhere", members=[ADMIN, "UBOT"])
    image_id = seed(live, "CMO keynote", tags=("CMO",))
    answer = share(live, image_id, user=MEMBER, channel="C0ELSE")
    assert "only share into a channel you are in" in answer["text"]
    assert live.slack.calls_to("chat.postMessage") == []


def test_private_image_is_not_shared_to_people_outside_its_channel(live: Live) -> None:
    image_id = seed(live, "Secret launch", channel=PRIVATE_CHANNEL, private=True)
    answer = share(live, image_id, user=POSTER, channel=PUBLIC_CHANNEL)
    assert "private conversation" in answer["text"]
    assert live.slack.calls_to("chat.postMessage") == []
    answer = share(live, image_id, user=MEMBER, channel=PUBLIC_CHANNEL)  # cannot even see it
    assert "not yours to see" in answer["text"]
    assert live.slack.calls_to("chat.postMessage") == []


# -- previews that always load ----------------------------------------------------------------


def test_a_preview_slack_cannot_load_does_not_sink_the_answer(live: Live) -> None:
    image_id = seed(live, "CMO keynote", tags=("CMO",))
    with session_scope(live.db.factory) as session:
        image = session.get(Image, image_id)
        assert image is not None
        image.slack_file_id = "F0GONE"  # Slack no longer has the file the preview points at
    answer = search(live, "CMO")
    assert [b for b in answer["blocks"] if b["type"] == "image"] == []
    assert result_titles(answer) == ["CMO keynote"]
    assert len(live.slack.calls_to("response_url")) == 2  # refused, then sent without preview


def test_formats_slack_cannot_preview_get_a_text_line(live: Live) -> None:
    seed(live, "Phone shot", tags=("phone",), format="HEIF")
    answer = search(live, "phone")
    assert [b for b in answer["blocks"] if b["type"] == "image"] == []
    assert result_titles(answer) == ["Phone shot"]


def test_public_image_not_shared_to_guests_or_other_organisations(live: Live) -> None:
    image_id = seed(live, "CMO keynote", tags=("CMO",))
    live.slack.add_channel("C0AGENCY", "with-agency", members=[MEMBER, GUEST, "UBOT"])
    answer = share(live, image_id, user=MEMBER, channel="C0AGENCY")
    assert "guest" in answer["text"]
    live.slack.add_channel("C0CONNECT", "partner", members=[MEMBER, "UBOT"], is_ext_shared=True)
    answer = share(live, image_id, user=MEMBER, channel="C0CONNECT")
    assert "another organisation" in answer["text"]
    assert live.slack.calls_to("chat.postMessage") == []
