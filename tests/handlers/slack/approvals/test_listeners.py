"""Approvals: asking from a search result (the request modal), Approve / Reject on the
approvers' DM cards, the reject reason modal, cancelling from App Home. What each person
sees: the cards as they read now in Slack, the DMs, the line in the image's thread."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import update

from bot import approvals, decisions
from bot.approval_queue import OUTCOME_GRACE, untold_outcomes
from storage.models import ApprovalRequest
from tests.conftest import ADMIN, MEMBER, POSTER, PUBLIC_CHANNEL, TEAM
from tests.fakes.slack_api import Call
from tests.handlers.slack.harness import Harness, Sent, buttons, said

BEN = "UBEN"
OTHER = "UOTHER"


@pytest.fixture
def h(watching: Harness) -> Harness:
    """#marketing-shoots watched, and two more people: Ben (an approver), Olaf (not one)."""
    watching.slack.add_user(BEN, "ben", real_name="Ben Brand")
    watching.slack.add_user(OTHER, "olaf", real_name="Olaf Other")
    return watching


def request_form(
    approvers: list[str], *, note: str = "for the launch", due: str | None = None
) -> dict[str, Any]:
    """`view.state.values` of the request modal as Slack sends it."""
    return {
        "approvers": {"value": {"type": "multi_users_select", "selected_users": approvers}},
        "note": {"value": {"type": "plain_text_input", "value": note}},
        "due": {"value": {"type": "datepicker", "selected_date": due}},
    }


def open_request_form(
    h: Harness, image_id: int, *, user: str = POSTER
) -> tuple[str, dict[str, Any]]:
    """Click "Request approval" on a search result; the modal it opened."""
    click = h.click("request_approval", str(image_id), user=user)
    assert (click.status, click.body) == (200, "")
    return h.opened_view(click)


def ask(h: Harness, image_id: int, approvers: list[str]) -> dict[str, Call]:
    """The poster asks `approvers`; the card each of them got (approver -> the post)."""
    view_id, _ = open_request_form(h, image_id)
    sent = h.submit(view_id, request_form(approvers))
    assert (sent.status, sent.body) == (200, ""), sent.body
    h.settle()  # the cards are sent, and where they are written down, after the ack
    return {a: card_of(h, a) for a in approvers}


def card_of(h: Harness, approver: str) -> Call:
    (card,) = [c for c in h.dms(approver) if buttons(c.params.get("blocks", []), "approve")]
    return card


def reads_now(h: Harness, card: Call) -> dict[str, Any]:
    """The card as it reads in the approver's DM now (after any chat.update)."""
    message = h.slack.message(card.response["channel"], card.response["ts"])
    assert message is not None
    return message


def thread_lines(h: Harness) -> list[str]:
    """What the bot said in the thread of the image's post in #marketing-shoots."""
    return [
        c.params["text"]
        for c in h.calls("chat.postMessage")
        if c.params["channel"] == PUBLIC_CHANNEL and c.params.get("thread_ts")
    ]


def decide(h: Harness, card: Call, action: str, *, user: str) -> Sent:
    sent = h.click_on(card, action, user=user)
    assert (sent.status, sent.body) == (200, "")
    h.settle()
    return sent


def test_request_form_is_prefilled_with_the_categorys_approvers(h: Harness) -> None:
    for text in (
        "categories add Marketing",
        "watch <#C0SHOOTS|marketing-shoots> Marketing",
        f"approvers Marketing <@{BEN}|ben>",
    ):
        h.answer(h.command(text))
    image_id = h.posted_image("F0FORM", seed=1)
    _, view = open_request_form(h, image_id)
    assert view["callback_id"] == "approvals.request_modal"
    approvers = next(b for b in view["blocks"] if b.get("block_id") == "approvers")
    assert approvers["element"]["initial_users"] == [BEN]


def test_a_request_sends_each_approver_a_card_and_tells_the_poster_and_the_thread(
    h: Harness,
) -> None:
    image_id = h.posted_image("F0ASK", seed=2)
    cards = ask(h, image_id, [MEMBER, BEN])
    for card in cards.values():
        text = said(card.params["blocks"])
        assert "<@UPOSTER> asks for your approval: \u201cfor the launch\u201d" in text
        assert [b["action_id"] for b in buttons(card.params["blocks"], "approve")] == [
            "approvals.approve"
        ]
        assert len(buttons(card.params["blocks"], "reject")) == 1
    (told,) = h.dms(POSTER)
    assert "for approval to <@UMEMBER>, <@UBEN>" in told.params["text"]
    assert thread_lines(h) == ["Sent for approval to <@UMEMBER>, <@UBEN>."]
    found = h.answer(h.command("status:pending", user=POSTER))
    assert "*1 image*" in said(found["blocks"])


def test_a_bad_request_is_an_error_on_its_field(h: Harness) -> None:
    image_id = h.posted_image("F0BAD", seed=3)
    view_id, _ = open_request_form(h, image_id)
    cases = [
        (request_form(["UOTHERBOT"]), "approvers", "bots cannot approve"),
        (request_form([POSTER]), "approvers", "You cannot approve your own request"),
        (request_form([]), "approvers", "Name at least one person"),
        (request_form([MEMBER], due="2020-01-01"), "due", "The due date is in the past"),
    ]
    for values, field, words in cases:  # the same modal, kept open by the errors
        answer = h.submit(view_id, values).json()
        assert answer["response_action"] == "errors", words
        assert words in answer["errors"][field]
    h.settle()
    assert h.dms(MEMBER) == []


def test_asking_again_while_a_request_is_open_is_refused(h: Harness) -> None:
    image_id = h.posted_image("F0TWICE", seed=4)
    ask(h, image_id, [MEMBER])
    view_id, _ = open_request_form(h, image_id)
    answer = h.submit(view_id, request_form([BEN])).json()
    assert "already" in answer["errors"]["approvers"]


def test_an_approvers_approve_updates_every_card_and_tells_the_thread(h: Harness) -> None:
    image_id = h.posted_image("F0YES", seed=5)
    cards = ask(h, image_id, [MEMBER, BEN])
    decide(h, cards[BEN], "approve", user=BEN)
    for card in cards.values():
        now = reads_now(h, card)
        assert "Approved by <@UBEN>" in said(now["blocks"])
        assert buttons(now["blocks"], "approve") == []  # settled: no buttons left
    (line,) = [t for t in thread_lines(h) if "Approved" in t]
    assert line.startswith("<@UPOSTER> :white_check_mark: Approved by <@UBEN>")
    found = h.answer(h.command("status:approved", user=MEMBER))
    assert "*1 image*" in said(found["blocks"])


def test_an_outcome_left_untold_by_a_dead_process_is_told_once_by_the_worker(h: Harness) -> None:
    """A process killed after its commit: either before telling (the worker tells) or after
    telling but before recording it (the worker sees the line in the thread, and is quiet)."""
    told, untold = (h.posted_image(f"F0DIED{n}", seed=20 + n) for n in range(2))
    decide(h, ask(h, told, [BEN])[BEN], "approve", user=BEN)  # told in the thread
    card = ask(h, untold, [MEMBER])[MEMBER]
    request_id = int(buttons(card.params["blocks"], "approve")[0]["value"])
    approvals.decide(
        h.services.factory,
        team_id=TEAM,
        request_id=request_id,
        user_id=MEMBER,
        decision="approved",
        reason=None,
        is_admin=False,
        now=h.services.clock(),
    )  # committed, and the process died before anyone was told
    assert len([t for t in thread_lines(h) if "Approved" in t]) == 1
    # Both as a dead teller leaves them: claimed a while ago, never stamped told.
    with h.services.engine.begin() as connection:
        connection.execute(
            update(ApprovalRequest).values(
                outcome_told_at=None,
                outcome_claimed_until=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    # What the worker's tell_outcomes does once they are OUTCOME_GRACE old.
    later = datetime.now(UTC) + OUTCOME_GRACE + timedelta(seconds=1)
    views = untold_outcomes(h.services.factory, now=later)
    assert len(views) == 2
    for view in views:
        decisions.show_change(h.services, view, settled=True)
    h.settle()
    assert len([t for t in thread_lines(h) if "Approved" in t]) == 2  # one each
    assert untold_outcomes(h.services.factory, now=later) == []


def test_approve_is_answered_only_once_the_decision_is_saved(h: Harness) -> None:
    """Slack's 200 tells the approver their click worked, so it comes once the decision is
    saved: answered first, a process killed or a database gone before the save would lose a
    decision the approver was told was taken. Here the database is busy for a second."""
    image_id = h.posted_image("F0SAVED", seed=9)
    cards = ask(h, image_id, [MEMBER])
    busy = sqlite3.connect(h.services.engine.url.database, check_same_thread=False)
    busy.execute("BEGIN IMMEDIATE")  # another writer holds the database
    threading.Timer(1.0, busy.commit).start()
    sent = h.click_on(cards[MEMBER], "approve", user=MEMBER)
    assert (sent.status, h.rows("SELECT decision FROM approval_votes")) == (200, [("approved",)])
    h.settle()
    busy.close()
    assert "Approved by <@UMEMBER>" in said(reads_now(h, cards[MEMBER])["blocks"])


def test_someone_who_is_not_an_approver_is_told_privately_and_nothing_changes(
    h: Harness,
) -> None:
    image_id = h.posted_image("F0NOPE", seed=6)
    cards = ask(h, image_id, [MEMBER])
    decide(h, cards[MEMBER], "approve", user=OTHER)  # a forwarded card, or a forged click
    assert [c.params["text"] for c in h.dms(OTHER)] == ["You are not an approver of this request."]
    assert h.calls("chat.update") == []
    assert len(buttons(reads_now(h, cards[MEMBER])["blocks"], "approve")) == 1
    decide(h, cards[MEMBER], "approve", user=ADMIN)  # an admin may decide in their place
    assert "Approved by" in said(reads_now(h, cards[MEMBER])["blocks"])


def test_an_admin_cannot_approve_their_own_request(h: Harness) -> None:
    image_id = h.posted_image("F0OWN", seed=7)
    view_id, _ = open_request_form(h, image_id, user=ADMIN)
    assert h.submit(view_id, request_form([MEMBER]), user=ADMIN).body == ""
    h.settle()
    decide(h, card_of(h, MEMBER), "approve", user=ADMIN)
    (told,) = [c for c in h.dms(ADMIN) if "blocks" not in c.params and "own" in c.params["text"]]
    assert "own" in told.params["text"]
    assert len(buttons(reads_now(h, card_of(h, MEMBER))["blocks"], "approve")) == 1


def test_reject_opens_a_modal_asking_why(h: Harness) -> None:
    image_id = h.posted_image("F0WHY", seed=8)
    cards = ask(h, image_id, [MEMBER])
    click = decide(h, cards[MEMBER], "reject", user=MEMBER)
    _, view = h.opened_view(click)
    assert view["callback_id"] == "approvals.reject_reason"
    assert [b["block_id"] for b in view["blocks"]] == ["reason"]
    assert "Approved" not in said(reads_now(h, cards[MEMBER]))  # nothing decided yet


def test_a_rejection_needs_a_reason_of_sensible_length(h: Harness) -> None:
    image_id = h.posted_image("F0REASON", seed=9)
    cards = ask(h, image_id, [MEMBER])
    view_id, _ = h.opened_view(decide(h, cards[MEMBER], "reject", user=MEMBER))
    for reason, words in (("", "Say why it is rejected."), ("x" * 501, "under 500 characters")):
        values = {"reason": {"value": {"type": "plain_text_input", "value": reason}}}
        answer = h.submit(view_id, values, user=MEMBER).json()
        assert answer["response_action"] == "errors"
        assert words in answer["errors"]["reason"]
    h.settle()
    assert h.calls("chat.update") == []
    assert len(buttons(reads_now(h, cards[MEMBER])["blocks"], "reject")) == 1


def test_a_rejection_with_a_reason_updates_every_card_and_tells_the_thread(h: Harness) -> None:
    image_id = h.posted_image("F0NO", seed=10)
    cards = ask(h, image_id, [MEMBER, BEN])
    view_id, _ = h.opened_view(decide(h, cards[MEMBER], "reject", user=MEMBER))
    values = {"reason": {"value": {"type": "plain_text_input", "value": "wrong <logo>"}}}
    sent = h.submit(view_id, values, user=MEMBER)
    assert (sent.status, sent.body) == (200, "")
    h.settle()
    for card in cards.values():
        now = said(reads_now(h, card)["blocks"])
        assert "Rejected by <@UMEMBER>: wrong &lt;logo&gt;" in now
    assert any("Rejected by <@UMEMBER>" in t for t in thread_lines(h))


def test_with_the_all_policy_every_approver_must_approve(h: Harness) -> None:
    for text in (
        "categories add Marketing",
        "watch <#C0SHOOTS|marketing-shoots> Marketing",
        f"approvers Marketing <@{MEMBER}|max> <@{BEN}|ben> all",
    ):
        h.answer(h.command(text))
    image_id = h.posted_image("F0ALL", seed=11)
    cards = ask(h, image_id, [MEMBER, BEN])
    decide(h, cards[MEMBER], "approve", user=MEMBER)
    progress = said(reads_now(h, cards[BEN])["blocks"])
    assert "Approved so far by <@UMEMBER>; waiting for <@UBEN>" in progress
    assert len(buttons(reads_now(h, cards[BEN])["blocks"], "approve")) == 1
    decide(h, cards[BEN], "approve", user=BEN)
    assert "Approved by <@UMEMBER>, <@UBEN>" in said(reads_now(h, cards[BEN])["blocks"])


def test_the_requester_cancels_from_app_home_and_no_one_else_can(h: Harness) -> None:
    image_id = h.posted_image("F0CANCEL", seed=12)
    cards = ask(h, image_id, [MEMBER])
    (approve,) = buttons(cards[MEMBER].params["blocks"], "approve")
    request_id = approve["value"]
    h.click("cancel_request", request_id, user=MEMBER, home=True)
    h.settle()
    assert any("Only the person who asked" in c.params["text"] for c in h.dms(MEMBER))
    assert h.calls("chat.update") == []
    h.click("cancel_request", request_id, user=POSTER, home=True)
    h.settle()
    assert "Request cancelled" in said(reads_now(h, cards[MEMBER])["blocks"])
    found = h.answer(h.command("status:draft", user=POSTER))
    assert "*1 image*" in said(found["blocks"])


def test_a_due_date_is_shown_on_the_card(h: Harness) -> None:
    image_id = h.posted_image("F0DUE", seed=13)
    due = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    view_id, _ = open_request_form(h, image_id)
    assert h.submit(view_id, request_form([MEMBER], due=due)).body == ""
    h.settle()
    assert f"due {due}" in said(card_of(h, MEMBER).params["blocks"])


def escalation_card(h: Harness, approver_card: Call) -> Call:
    """The card the worker DMs an admin when a request waits too long (`send_nudge` in
    handlers/slack/approvals/send.py): the request's card, in the admin's DM, not one of
    the approvers' cards."""
    WebClient(token=h.slack.bot_token, base_url=h.slack.api_url).chat_postMessage(
        channel=ADMIN,
        text="The approval needs an admin",
        blocks=approver_card.params["blocks"],
    )
    (card,) = [c for c in h.dms(ADMIN) if buttons(c.params.get("blocks", []), "reject")]
    return card


def test_an_admins_approve_on_an_escalation_card_updates_that_card_too(h: Harness) -> None:
    image_id = h.posted_image("F0ESCA", seed=14)
    cards = ask(h, image_id, [MEMBER])
    escalated = escalation_card(h, cards[MEMBER])
    decide(h, escalated, "approve", user=ADMIN)
    for card in (cards[MEMBER], escalated):
        now = said(reads_now(h, card)["blocks"])
        assert "Approved by" in now
        assert '"approve"' not in now


def test_an_admins_reject_on_an_escalation_card_updates_that_card_too(h: Harness) -> None:
    image_id = h.posted_image("F0ESCR", seed=15)
    cards = ask(h, image_id, [MEMBER])
    escalated = escalation_card(h, cards[MEMBER])
    view_id, _ = h.opened_view(decide(h, escalated, "reject", user=ADMIN))
    values = {"reason": {"value": {"type": "plain_text_input", "value": "off brand"}}}
    assert h.submit(view_id, values, user=ADMIN).body == ""
    h.settle()
    assert "Rejected by <@UADMIN>: off brand" in said(reads_now(h, cards[MEMBER])["blocks"])
    now = said(reads_now(h, escalated)["blocks"])
    assert "Rejected by <@UADMIN>: off brand" in now
    assert '"reject"' not in now
