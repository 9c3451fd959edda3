"""End to end: from an image post to saved details, as the poster sees it in Slack."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from bot import admin
from handlers.slack.details import ids as details_ids
from storage.db import session_scope
from storage.models import AuditEvent, Category, Tag
from tests import images
from tests.conftest import ADMIN, MEMBER, POSTER, PUBLIC_CHANNEL, TEAM
from tests.live import Live, form_values, wait_until
from tests.seed import add


def button_values(blocks: list[dict], action_id: str) -> list[str]:  # type: ignore[type-arg]
    return [
        element["value"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]


def all_text(blocks: list[dict]) -> str:  # type: ignore[type-arg]
    return json.dumps(blocks, ensure_ascii=False)


def post_and_prompt(live: Live, *file_ids: str) -> tuple[dict, list[int]]:  # type: ignore[type-arg]
    envelope = live.post(*file_ids)
    prompt = live.wait_for_prompt()
    (value,) = button_values(prompt.params["blocks"], details_ids.ADD_DETAILS)
    return envelope, [int(v) for v in value.split(",")]


# -- catching --------------------------------------------------------------------------


def test_poster_gets_a_reaction_and_one_prompt_for_all_images(live: Live) -> None:
    envelope = live.post(live.add_jpeg("F0A", seed=1), live.add_jpeg("F0B", seed=2))
    prompt = live.wait_for_prompt()
    ts = envelope["event"]["ts"]
    reactions = [c.params for c in live.slack.calls_to("reactions.add")]
    assert reactions == [{"channel": PUBLIC_CHANNEL, "timestamp": ts, "name": "frame_with_picture"}]
    assert prompt.params["channel"] == PUBLIC_CHANNEL
    assert "2 images are in the library" in all_text(prompt.params["blocks"])
    (value,) = button_values(prompt.params["blocks"], details_ids.ADD_DETAILS)
    assert sorted(int(v) for v in value.split(",")) == [i.id for i in live.stored()]
    assert len(live.slack.calls_to("chat.postEphemeral")) == 1


def test_failed_image_gets_another_reaction_and_the_reason(live: Live) -> None:
    live.slack.add_file(
        "F0PDF",
        name="scan.jpg",
        content=images.PDF,
        mimetype="image/jpeg",
        filetype="jpg",
        user=POSTER,
    )
    live.post(live.add_jpeg("F0OK", seed=3), "F0PDF")
    prompt = live.wait_for_prompt()
    names = sorted(c.params["name"] for c in live.slack.calls_to("reactions.add"))
    assert names == ["frame_with_picture", "warning"]
    text = all_text(prompt.params["blocks"])
    assert "scan.jpg" in text
    assert "this file is a PDF, only images are kept" in text


def test_ten_images_and_three_pdfs_in_one_message(live: Live) -> None:
    photos = [live.add_jpeg(f"F0IMG{n}", seed=10 + n) for n in range(10)]
    pdfs = []
    for n in range(3):
        live.slack.add_file(
            f"F0DOC{n}",
            name=f"brief{n}.pdf",
            content=images.PDF,
            mimetype="application/pdf",
            filetype="pdf",
            user=POSTER,
        )
        pdfs.append(f"F0DOC{n}")
    live.post(*photos, *pdfs)
    prompt = live.wait_for_prompt()
    assert len(live.stored()) == 10
    text = all_text(prompt.params["blocks"])
    assert "10 images are in the library" in text
    assert "brief0.pdf" not in text  # not an image: ignored without noise
    (value,) = button_values(prompt.params["blocks"], details_ids.ADD_DETAILS)
    assert len(value.split(",")) == 10


def test_threads_edits_and_bot_posts(live: Live) -> None:
    live.post(live.add_jpeg("F0THR", seed=4), thread_ts="1700000000.000100")
    live.wait_for_prompt()
    (image,) = live.stored()
    assert image.thread_ts == "1700000000.000100"
    edit = live.slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0THR"])
    edit["event"]["subtype"] = "message_changed"
    bot_post = live.slack.message_event(
        channel=PUBLIC_CHANNEL, user="UOTHERBOT", files=[live.add_jpeg("F0BOTX", seed=5)]
    )
    bot_post["event"]["bot_id"] = "B0OTHER"
    assert live.sender.event(edit).status == 200
    assert live.sender.event(bot_post).status == 200
    assert len(live.stored()) == 1


def test_slack_connect_stub_is_stored(live: Live) -> None:
    live.add_jpeg("F0EXT", seed=6)
    envelope = live.slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0EXT"])
    envelope["event"]["files"] = [live.slack.file_stub("F0EXT")]
    live.sender.event(envelope)
    live.wait_for_prompt()
    assert [i.slack_file_id for i in live.stored()] == ["F0EXT"]
    assert live.slack.calls_to("files.info")


# -- the details modal -------------------------------------------------------------------


def test_add_details_opens_a_prefilled_modal_and_saves(live: Live) -> None:
    admin.add_category(
        live.db.factory, team_id=TEAM, name="Marketing", actor_id=ADMIN, now=live.db.clock()
    )
    (category,) = admin.list_categories(live.db.factory, team_id=TEAM)
    live.add_jpeg("F0CMO", name="CMO_keynote-2026.jpg", seed=7)
    _, image_ids = post_and_prompt(live, "F0CMO")
    click = live.click(details_ids.ADD_DETAILS, ",".join(map(str, image_ids)))
    view_id, view = live.opened_view()
    blocks_by_id = {b.get("block_id"): b for b in view["blocks"]}
    title = blocks_by_id[f"title:{image_ids[0]}"]["element"]["initial_value"]
    assert title == "CMO keynote 2026"
    assert blocks_by_id["shoot_date"]["element"]["initial_date"] == "2026-11-03"
    assert blocks_by_id["category"]["element"]["action_id"] == details_ids.CATEGORY  # searched

    reply = live.submit(
        view_id,
        form_values(
            image_ids,
            titles=["CMO keynote"],
            tags=["CMO", "keynote", "cmo "],
            category_id=category.id,
            shoot_date="2026-11-02",
            description="Opening talk",
        ),
    )
    assert reply.status == 200
    assert not reply.body or json.loads(reply.body).get("response_action") != "errors"
    summary = wait_until(lambda: live.responses(click["response_url"]), what="the summary")[-1]
    assert summary["replace_original"] is True
    text = all_text(summary["blocks"])
    assert "CMO keynote" in text
    assert "CMO \u00b7 keynote" in text
    assert "Marketing" in text
    assert "2026-11-02" in text
    image = live.image(image_ids[0])
    assert image is not None
    assert (image.title, image.tags, image.category_id) == (
        "CMO keynote",
        ["CMO", "keynote"],
        category.id,
    )
    assert image.shoot_date is not None and image.shoot_date.date().isoformat() == "2026-11-02"
    assert image.description == "Opening talk"
    with session_scope(live.db.factory) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.image_id == image.id)
        ).all()
    assert actions == ["uploaded", "details_added"]
    live.slack.wait_for("views.publish", predicate=lambda c: c.params.get("user_id") == POSTER)


def test_invalid_details_come_back_as_field_errors(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0BAD", seed=8))
    live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    view_id, _ = live.opened_view()
    cases = [
        (form_values(image_ids, titles=["  "]), f"title:{image_ids[0]}", "title"),
        (form_values(image_ids, tags=[f"tag{n}" for n in range(21)]), "tags", "at most 20 tags"),
        (form_values(image_ids, tags=["x" * 51]), "tags", "at most 50 characters"),
        (form_values(image_ids, shoot_date="2999-01-01"), "shoot_date", "in the future"),
    ]
    for values, block_id, words in cases:
        reply = live.submit(view_id, values)
        answer = reply.json()
        assert answer["response_action"] == "errors"
        assert words in answer["errors"][block_id]
    image = live.image(image_ids[0])
    assert image is not None
    assert image.details_added_at is None


def test_tags_are_kept_literally_and_shown_escaped(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0ESC", seed=9))
    click = live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    view_id, _ = live.opened_view()
    tags = ["<!channel>", "<@U123>", "*bold*", "&amp;", "\U0001f4f8 photo"]
    reply = live.submit(view_id, form_values(image_ids, tags=tags))
    assert reply.status == 200
    summary = wait_until(lambda: live.responses(click["response_url"]), what="the summary")[-1]
    text = all_text(summary["blocks"])
    assert "<!channel>" not in text
    assert "<@U123>" not in text
    assert "&lt;!channel&gt;" in text
    assert "&amp;amp;" in text
    image = live.image(image_ids[0])
    assert image is not None
    assert image.tags == tags


def test_tag_autocomplete_offers_known_tags_most_used_first_and_the_typed_text(live: Live) -> None:
    add(live.db.factory, "Tagged", tags=("CMO", "CMO portrait", "launch"), channel=PUBLIC_CHANNEL)
    with session_scope(live.db.factory) as session:
        for name, uses in (("CMO", 5), ("CMO portrait", 9), ("launch", 2)):
            session.execute(update(Tag).where(Tag.name == name).values(use_count=uses))
    payload = {
        "type": "block_suggestion",
        "action_id": details_ids.TAGS,
        "block_id": "tags",
        "value": "cm",
        "team": {"id": TEAM},
        "user": {"id": POSTER},
        "api_app_id": "A0EMUAPP1",
        "view": {"id": "V1", "type": "modal", "callback_id": details_ids.DETAILS_MODAL},
    }
    reply = live.sender.interactive(payload)
    assert reply.status == 200
    options = [o["value"] for o in reply.json()["options"]]
    assert options == ["cm", "CMO portrait", "CMO"]
    assert reply.elapsed < 3.0


def test_someone_elses_button_is_refused_privately(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0MINE", seed=10))
    click = live.click(details_ids.ADD_DETAILS, str(image_ids[0]), user=MEMBER)
    answer = wait_until(lambda: live.responses(click["response_url"]), what="the refusal")[-1]
    assert "Only the person who posted these images" in answer["text"]
    assert answer["replace_original"] is False
    assert live.slack.calls_to("views.open") == []
    live.click(details_ids.ADD_DETAILS, str(image_ids[0]), user=ADMIN)  # an admin may
    live.opened_view()


def test_expired_trigger_tells_the_user_instead_of_silence(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0LATE", seed=11))
    live.slack.inject("views.open", "error:expired_trigger_id")
    click = live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    answer = wait_until(lambda: live.responses(click["response_url"]), what="the message")[-1]
    assert "took too long" in answer["text"]


def test_same_button_twice_saves_once_per_submit_without_double_counting(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0TWICE", seed=12))
    live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    first, _ = live.opened_view(0)
    second, _ = live.opened_view(1)
    assert first != second
    values = form_values(image_ids, tags=["CMO"])
    assert live.submit(first, values).status == 200
    assert live.submit(second, values).status == 200
    with session_scope(live.db.factory) as session:
        tag = session.scalars(select(Tag).where(Tag.name_key == "cmo")).one()
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.image_id == image_ids[0])
        ).all()
    assert tag.use_count == 1
    assert actions == ["uploaded", "details_added", "details_edited"]


def test_edit_from_app_home_only_for_uploader_and_admins(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0HOME", seed=13))
    live.click(details_ids.EDIT_DETAILS, str(image_ids[0]), user=MEMBER, channel=None)
    refusal = live.slack.wait_for(
        "chat.postMessage", predicate=lambda c: c.params["channel"] == MEMBER
    )
    assert "Only the person who posted" in refusal[0].params["text"]
    live.click(details_ids.EDIT_DETAILS, str(image_ids[0]), user=POSTER, channel=None)
    _, view = live.opened_view()
    assert any(b.get("block_id") == f"title:{image_ids[0]}" for b in view["blocks"])


def test_app_home_lists_images_missing_details(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0LIST", seed=14))
    event = live.slack.event_envelope(
        {
            "type": "app_home_opened",
            "user": POSTER,
            "tab": "home",
            "channel": "D0POSTER",
            "event_ts": "1.2",
        }
    )
    assert live.sender.event(event).status == 200
    # Refreshes are coalesced per person (the one after the ingest may be the one that
    # answers the tab being opened): what counts is what the Home tab shows in the end.
    calls = live.slack.wait_for(
        "views.publish",
        predicate=lambda c: (
            c.params.get("user_id") == POSTER
            and "Still missing details" in all_text(c.params["view"]["blocks"])
        ),
    )
    home = calls[-1].params["view"]
    assert [
        b["accessory"]["value"]
        for b in home["blocks"]
        if b.get("accessory", {}).get("action_id") == details_ids.ADD_DETAILS
    ] == [str(image_ids[0])]


def test_images_posted_in_unwatched_channels_are_not_kept(live: Live) -> None:
    live.slack.add_channel("C0CHAT", "random", members=[POSTER, "UBOT"])
    live.post(live.add_jpeg("F0RANDOM", seed=15), channel="C0CHAT")
    assert live.stored() == []
    assert live.slack.calls_to("files.download") == []
    assert live.slack.calls_to("chat.postEphemeral") == []


def test_stored_summary_message_uses_a_preview_slack_can_load(live: Live) -> None:
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0PREV", seed=16))
    click = live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    view_id, view = live.opened_view()
    image_blocks = [
        {k: v for k, v in b.items() if k != "block_id"}
        for b in view["blocks"]
        if b["type"] == "image"
    ]
    assert image_blocks == [{"type": "image", "slack_file": {"id": "F0PREV"}, "alt_text": "f0prev"}]
    live.submit(view_id, form_values(image_ids, titles=["Preview"]))
    summary = wait_until(lambda: live.responses(click["response_url"]), what="the summary")[-1]
    assert summary["blocks"][0]["slack_file"] == {"id": "F0PREV"}


def test_send_for_approval_to_records_the_request(live: Live) -> None:
    from storage.models import ApprovalRequest, ApprovalVote

    _, image_ids = post_and_prompt(live, live.add_jpeg("F0APPR", seed=17))
    click = live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    view_id, _ = live.opened_view()
    reply = live.submit(view_id, form_values(image_ids, approvers=[ADMIN, MEMBER]))
    assert reply.status == 200
    summary = wait_until(lambda: live.responses(click["response_url"]), what="the summary")[-1]
    assert "<@UADMIN>, <@UMEMBER>" in all_text(summary["blocks"])
    with session_scope(live.db.factory) as session:
        request = session.scalars(select(ApprovalRequest)).one()
        voters = session.scalars(select(ApprovalVote.approver_id).order_by(ApprovalVote.id)).all()
    assert (request.image_id, request.requested_by, request.state) == (image_ids[0], POSTER, "open")
    assert voters == [ADMIN, MEMBER]
    image = live.image(image_ids[0])
    assert image is not None
    assert image.status == "pending"


def test_modal_prefills_the_channel_categorys_default_approvers(live: Live) -> None:
    from storage.models import Category

    live.command("categories add Marketing")
    live.command(f"watch <#{PUBLIC_CHANNEL}|marketing-shoots> Marketing")
    with session_scope(live.db.factory) as session:
        category = session.scalars(select(Category)).one()
        category.default_approvers = [ADMIN]
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0DEF", seed=18))
    live.click(details_ids.ADD_DETAILS, str(image_ids[0]))
    _, view = live.opened_view()
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    assert by_id["approvers"]["element"]["initial_users"] == [ADMIN]
    assert by_id["category"]["element"]["initial_option"]["text"]["text"] == "Marketing"


def test_any_of_150_categories_can_be_picked_and_saving_keeps_it(live: Live) -> None:
    now = live.db.clock()
    names = [f"Campaign {n:03d}" for n in range(150)]
    for name in names:
        admin.add_category(live.db.factory, team_id=TEAM, name=name, actor_id=ADMIN, now=now)
    # The channel's default is the 150th: past what a static select of 100 could list.
    admin.watch(
        live.db.factory,
        team_id=TEAM,
        channel_id=PUBLIC_CHANNEL,
        category_name="Campaign 149",
        actor_id=ADMIN,
        now=now,
    )
    _, image_ids = post_and_prompt(live, live.add_jpeg("F0CATS", seed=31))
    view_id, view = live.click_to_open(details_ids.ADD_DETAILS, str(image_ids[0]))
    (picker,) = [b["element"] for b in view["blocks"] if b.get("block_id") == "category"]
    assert picker["type"] == "external_select"
    assert picker["initial_option"]["text"]["text"] == "Campaign 149"

    def options(typed: str) -> list[str]:
        reply = live.sender.interactive(
            {
                "type": "block_suggestion",
                "action_id": details_ids.CATEGORY,
                "block_id": "category",
                "value": typed,
                "team": {"id": TEAM},
                "user": {"id": POSTER},
                "api_app_id": "A0EMUAPP1",
                "view": {"id": view_id, "type": "modal", "callback_id": details_ids.DETAILS_MODAL},
            }
        )
        assert reply.status == 200
        return [o["text"]["text"] for o in reply.json()["options"]]

    assert len(options("")) == 100  # Slack's cap for one answer: typing narrows it
    assert options("campaign 14") == [f"Campaign 14{n}" for n in range(10)]
    assert options("149") == ["Campaign 149"]

    # Saved as it was prefilled: the category stays.
    values = form_values(image_ids, titles=["Keynote"])
    values["category"][details_ids.CATEGORY]["selected_option"] = picker["initial_option"]
    assert live.submit(view_id, values).status == 200
    with session_scope(live.db.factory) as session:
        category_id = dict(session.execute(select(Category.name, Category.id)).all())
    wait_until(
        lambda: (live.image(image_ids[0]) or None).category_id == category_id["Campaign 149"],
        what="category kept",
    )
    # A form opened before the upgrade (a static select) still saves its choice.
    view_id, _ = live.click_to_open(details_ids.EDIT_DETAILS, str(image_ids[0]))
    values = form_values(image_ids, titles=["Keynote"])
    values["category"] = {
        "value": {
            "type": "static_select",
            "selected_option": {
                "text": {"type": "plain_text", "text": "Campaign 007"},
                "value": str(category_id["Campaign 007"]),
            },
        }
    }
    assert live.submit(view_id, values).status == 200
    wait_until(
        lambda: (live.image(image_ids[0]) or None).category_id == category_id["Campaign 007"],
        what="category changed",
    )
