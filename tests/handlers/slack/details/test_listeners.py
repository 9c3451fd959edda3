"""Details: the "Add details" / "Edit details" buttons and the modal they open, tag and
category autocomplete, the modal's submission, the "Add to image library" message shortcut,
and the duplicate choices on the prompt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tests.conftest import ADMIN, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL
from tests.handlers.slack.harness import Harness, Sent, blocks_by_id, buttons, said
from tests.seed import add, categories


def details_form(
    image_ids: list[int],
    *,
    titles: list[str] | None = None,
    tags: Sequence[str] = (),
    category_id: str | None = None,
    shoot_date: str | None = None,
    description: str = "",
    approvers: Sequence[str] = (),
) -> dict[str, Any]:
    """`view.state.values` as Slack sends it when the details modal is submitted."""
    values: dict[str, Any] = {
        f"title:{image_id}": {
            "value": {
                "type": "plain_text_input",
                "value": titles[n] if titles else f"Image {image_id}",
            }
        }
        for n, image_id in enumerate(image_ids)
    }
    values["tags"] = {
        "tags": {
            "type": "multi_external_select",
            "selected_options": [
                {"text": {"type": "plain_text", "text": t[:75] or "-"}, "value": t} for t in tags
            ],
        }
    }
    values["category"] = {
        "category": {
            "type": "external_select",
            "selected_option": (
                {"text": {"type": "plain_text", "text": "c"}, "value": category_id}
                if category_id
                else None
            ),
        }
    }
    values["shoot_date"] = {"value": {"type": "datepicker", "selected_date": shoot_date}}
    values["description"] = {"value": {"type": "plain_text_input", "value": description or None}}
    values["approvers"] = {
        "value": {"type": "multi_users_select", "selected_users": list(approvers)}
    }
    return values


def open_form(h: Harness, image_id: int, *, user: str = POSTER) -> tuple[Sent, str, dict[str, Any]]:
    """Click "Add details" on the prompt; (the click, the modal's id, the modal)."""
    click = h.click("add_details", str(image_id), user=user)
    assert (click.status, click.body) == (200, "")
    view_id, view = h.opened_view(click)
    return click, view_id, view


def category_options(h: Harness, typed: str) -> list[tuple[str, str]]:
    sent = h.suggest("category", typed)
    assert sent.status == 200
    return [(o["text"]["text"], o["value"]) for o in sent.json()["options"]]


# -- the modal --------------------------------------------------------------------------------


def test_add_details_opens_the_form_prefilled_from_the_file(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0CMO", seed=1, name="CMO_keynote-2026.jpg")
    click, _, view = open_form(h, image_id)
    assert view["callback_id"] == "details.modal"
    fields = blocks_by_id(view)
    assert fields[f"title:{image_id}"]["element"]["initial_value"] == "CMO keynote 2026"
    assert fields["shoot_date"]["element"]["initial_date"] == "2026-11-03"  # from its EXIF
    assert fields["tags"]["element"]["type"] == "multi_external_select"
    assert fields["tags"]["element"]["action_id"] == "details.tags"
    assert fields["approvers"]["element"]["type"] == "multi_users_select"
    assert "category" not in fields  # no categories yet: a hint says how to add one
    assert "/images categories add" in said(view["blocks"])
    assert [b["slack_file"] for b in view["blocks"] if b["type"] == "image"] == [{"id": "F0CMO"}]
    # The form remembers which prompt to replace with the summary once saved.
    metadata = json.loads(view["private_metadata"])
    assert metadata == {"images": [image_id], "response_url": click.response_url}


def test_form_offers_the_channels_category_and_its_approvers(h: Harness) -> None:
    for text in (
        "categories add Marketing",
        "watch <#C0SHOOTS|marketing-shoots> Marketing",
        f"approvers Marketing <@{MEMBER}|max>",
    ):
        h.answer(h.command(text))
    image_id = h.posted_image("F0DEF", seed=2)
    _, _, view = open_form(h, image_id)
    fields = blocks_by_id(view)
    picker = fields["category"]["element"]
    assert (picker["type"], picker["action_id"]) == ("external_select", "details.category")
    assert picker["initial_option"]["text"]["text"] == "Marketing"
    assert fields["approvers"]["element"]["initial_users"] == [MEMBER]


def test_someone_elses_button_is_refused_privately_and_an_admin_may(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0MINE", seed=3)
    click = h.click("add_details", str(image_id), user=MEMBER)
    refusal = h.answer(click)
    assert "Only the person who posted these images, or an admin" in refusal["text"]
    assert (refusal["response_type"], refusal["replace_original"]) == ("ephemeral", False)
    assert h.calls("views.open") == []
    open_form(h, image_id, user=ADMIN)


def test_edit_from_app_home_by_someone_else_is_answered_by_dm(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0HOME", seed=4)
    h.click("edit_details", str(image_id), user=MEMBER, home=True)
    (told,) = h.wait_for("chat.postMessage", predicate=lambda c: c.params["channel"] == MEMBER)
    assert "Only the person who posted" in told.params["text"]
    click = h.click("edit_details", str(image_id), user=POSTER, home=True)
    _, view = h.opened_view(click)
    assert f"title:{image_id}" in blocks_by_id(view)
    assert json.loads(view["private_metadata"])["response_url"] is None  # nothing to replace


def test_an_expired_trigger_asks_to_click_again(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0LATE", seed=5)
    h.slack.inject("views.open", "error:expired_trigger_id")
    answer = h.answer(h.click("add_details", str(image_id)))
    assert "Slack took too long to open the form" in answer["text"]


# -- autocomplete -------------------------------------------------------------------------------


def test_tag_suggestions_put_the_typed_text_first_then_known_tags_most_used_first(
    h: Harness,
) -> None:
    for n in range(3):
        add(h.services.factory, f"Portrait {n}", tags=("CMO portrait",), channel=PUBLIC_CHANNEL)
    add(h.services.factory, "Keynote", tags=("CMO", "launch"), channel=PUBLIC_CHANNEL)
    sent = h.suggest("tags", "cm", user=POSTER, block_id="tags")
    assert sent.status == 200
    options = sent.json()["options"]
    assert [o["value"] for o in options] == ["cm", "CMO portrait", "CMO"]
    assert options[0]["text"]["text"] == "cm (new tag)"
    known = h.suggest("tags", "cmo", user=POSTER).json()["options"]
    assert [o["text"]["text"] for o in known] == ["CMO portrait", "CMO"]  # no "(new tag)"


def test_an_existing_tag_typed_exactly_is_offered_and_not_as_a_new_tag(h: Harness) -> None:
    for n in range(20):
        for copy in range(2):
            add(
                h.services.factory,
                f"Shot {n}-{copy}",
                tags=(f"CMO {n:02d}",),
                channel=PUBLIC_CHANNEL,
            )
    add(h.services.factory, "Keynote", tags=("CMO",), channel=PUBLIC_CHANNEL)
    options = h.suggest("tags", "cmo", user=POSTER).json()["options"]
    texts = [o["text"]["text"] for o in options]
    assert "cmo (new tag)" not in texts
    assert "CMO" in texts


def test_tag_suggestions_keep_a_private_channels_tags_in_it(h: Harness) -> None:
    add(
        h.services.factory,
        "Mock-up",
        tags=("Project Falcon",),
        channel=PRIVATE_CHANNEL,
        private=True,
    )
    add(h.services.factory, "Projector", tags=("Projects",), channel=PUBLIC_CHANNEL)

    def offered(user: str) -> list[str]:
        return [o["value"] for o in h.suggest("tags", "proj", user=user).json()["options"]]

    assert offered(MEMBER) == ["proj", "Projects"]  # not in #launch-secret
    assert offered(POSTER) == ["proj", "Project Falcon", "Projects"]


def test_category_options_answer_what_is_typed_within_slacks_limit_of_100(h: Harness) -> None:
    categories(h.services.factory, [f"Campaign {n:03d}" for n in range(150)])
    assert len(category_options(h, "")) == 100
    assert [name for name, _ in category_options(h, "campaign 14")] == [
        f"Campaign 14{n}" for n in range(10)
    ]
    ((name, value),) = category_options(h, "149")
    assert name == "Campaign 149"
    assert value.isdigit()
    assert category_options(h, "nothing like it") == []


# -- submitting -----------------------------------------------------------------------------------


def test_bad_input_comes_back_as_an_error_on_its_field(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0BAD", seed=6)
    click, view_id, _ = open_form(h, image_id)
    title = f"title:{image_id}"
    cases = [
        (details_form([image_id], titles=["   "]), title, "Give the image a title"),
        (details_form([image_id], tags=[f"t{n}" for n in range(21)]), "tags", "at most 20 tags"),
        (details_form([image_id], tags=["x" * 51]), "tags", "at most 50 characters"),
        (details_form([image_id], shoot_date="2999-01-01"), "shoot_date", "in the future"),
        (details_form([image_id], shoot_date="1800-01-01"), "shoot_date", "before photography"),
        (details_form([image_id], approvers=["UOTHERBOT"]), "approvers", "is a bot"),
        (details_form([image_id], approvers=[POSTER]), "approvers", "your own request"),
    ]
    # Slack keeps the modal open on errors: the same modal is submitted again and again.
    for values, field, words in cases:
        sent = h.submit(view_id, values)
        assert sent.status == 200
        answer = sent.json()
        assert answer["response_action"] == "errors", (field, words)
        assert list(answer["errors"]) == [field]
        assert words in answer["errors"][field]
    assert h.answers(click) == []  # nothing saved: the prompt stays as it was
    assert h.dms(POSTER) == []


def test_good_input_is_saved_and_the_prompt_becomes_a_summary(watching: Harness) -> None:
    h = watching
    h.answer(h.command("categories add Marketing"))
    ((_, marketing),) = category_options(h, "Mark")
    image_id = h.posted_image("F0SAVE", seed=7)
    click, view_id, _ = open_form(h, image_id)
    sent = h.submit(
        view_id,
        details_form(
            [image_id],
            titles=["CMO keynote"],
            tags=["CMO", "keynote", "cmo "],
            category_id=marketing,
            shoot_date="2026-11-02",
            description="Opening talk",
        ),
    )
    assert (sent.status, sent.body) == (200, "")  # the modal closes
    summary = h.answer(click)
    assert (summary["replace_original"], summary["response_type"]) == (True, "ephemeral")
    text = said(summary["blocks"])
    for part in ("Saved *CMO keynote*", "CMO \u00b7 keynote", "Marketing", "2026-11-02"):
        assert part in text
    found = h.answer(h.command("search tag:keynote", user=MEMBER))
    assert "*1 image*" in said(found["blocks"])
    assert "Marketing" in said(found["blocks"])


def test_tags_are_shown_escaped_in_the_summary(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0ESC", seed=8)
    click, view_id, _ = open_form(h, image_id)
    h.submit(view_id, details_form([image_id], tags=["<!channel>", "<@U123>", "&amp;"]))
    text = said(h.answer(click)["blocks"])
    assert "<!channel>" not in text  # would ping the whole channel
    assert "<@U123>" not in text
    assert "&lt;!channel&gt;" in text
    assert "&amp;amp;" in text


def test_approvers_named_in_the_form_get_their_cards(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0APPR", seed=9)
    click, view_id, _ = open_form(h, image_id)
    sent = h.submit(view_id, details_form([image_id], titles=["Hero"], approvers=[ADMIN, MEMBER]))
    assert (sent.status, sent.body) == (200, "")
    assert "*Approval requested from*\\n<@UADMIN>, <@UMEMBER>" in said(h.answer(click))
    for approver in (ADMIN, MEMBER):
        (card,) = h.wait_for(
            "chat.postMessage",
            predicate=lambda c, a=approver: c.params["channel"] == a and "blocks" in c.params,
        )
        assert "<@UPOSTER> asks for your approval" in said(card.params["blocks"])
        assert len(buttons(card.params["blocks"], "approve")) == 1


def test_an_admins_save_refreshes_the_posters_home_too(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0THEIRS", seed=16, name="Before.jpg")
    assert "Before" in said(h.home(POSTER, containing="Still missing details"))
    _, view_id, _ = open_form(h, image_id, user=ADMIN)
    sent = h.submit(view_id, details_form([image_id], titles=["After"]), user=ADMIN)
    assert (sent.status, sent.body) == (200, "")
    # Refreshes of one person's Home are a second apart: the one after the ingest came first.
    home = h.home(POSTER, containing="After", timeout=2.0)
    assert "Nothing: all your images have their details." in said(home)
