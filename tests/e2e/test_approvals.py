"""End to end: asking for approval, deciding from the DM card, and every card, thread and
search result telling the same truth, safely under concurrent clicks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot import admin, approval_queue, approvals
from handlers.slack.approvals import ids as approvals_ids
from handlers.slack.capture import ids as capture_ids
from handlers.slack.details import ids as details_ids
from storage.db import session_scope
from storage.models import ApprovalRequest, AuditEvent
from tests.conftest import ADMIN, GUEST, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL, TEAM
from tests.live import Live, form_values, wait_until

APPROVER_A, APPROVER_B = MEMBER, "UBEN"


def said(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def posted_image(live: Live, file_id: str = "F0APP", seed: int = 50) -> int:
    live.post(live.add_jpeg(file_id, seed=seed))
    prompt = live.wait_for_prompt(count=len(live.slack.calls_to("chat.postEphemeral")) or 1)
    value = next(
        e["value"]
        for b in prompt.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == details_ids.ADD_DETAILS
    )
    return int(value.split(",")[0])


def ask_via_details(
    live: Live, image_id: int, approvers: list[str], category_id: int | None = None
) -> None:
    view_id, _ = live.click_to_open(details_ids.ADD_DETAILS, str(image_id))
    values = form_values(
        [image_id], titles=["Launch hero"], approvers=approvers, category_id=category_id
    )
    reply = live.submit(view_id, values)
    assert reply.status == 200 and not reply.body, reply


def cards(live: Live) -> dict[str, Any]:
    """The approval card DMed to each approver (channel -> call), once the app has written
    down where every one of them is (a click before that would find no card to update)."""
    sent = {
        c.params["channel"]: c
        for c in live.slack.calls_to("chat.postMessage")
        if any(b.get("block_id", "").startswith("approval:") for b in c.params.get("blocks", []))
    }
    return sent if live.cards_recorded() >= len(sent) else {}


def request_id_of(live: Live) -> int:
    with session_scope(live.db.factory) as session:
        return int(session.scalars(select(ApprovalRequest.id)).one())


def click_card(live: Live, action: str, request_id: int, user: str) -> None:
    """A click on the card in `user`'s DM with the bot."""
    payload = live.slack.block_action(
        user=user, action_id=action, value=str(request_id), channel=None
    )
    payload["container"] = {"type": "message", "channel_id": f"D{user}", "message_ts": "1.1"}
    assert live.sender.interactive(payload).status == 200


def with_setup(live: Live) -> None:
    live.slack.add_user(APPROVER_B, "ben", real_name="Ben Brand")


def test_request_sends_cards_confirms_and_notes_the_thread(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A, APPROVER_B])
    sent = wait_until(lambda: len(cards(live)) == 2 and cards(live), what="two cards")
    card = sent[APPROVER_A].params["blocks"]
    assert "Launch hero" in said(card)
    assert "<@UPOSTER> asks for your approval" in said(card)
    actions = [e["action_id"] for b in card if b["type"] == "actions" for e in b["elements"]]
    assert actions[:2] == [approvals_ids.APPROVE, approvals_ids.REJECT]
    thread = wait_until(
        lambda: [c for c in live.slack.calls_to("chat.postMessage") if c.params.get("thread_ts")],
        what="thread line",
    )
    assert thread[0].params["text"] == "Sent for approval to <@UMEMBER>, <@UBEN>."
    assert any(
        c.params["channel"] == POSTER and "for approval to" in c.params["text"]
        for c in live.slack.calls_to("chat.postMessage")
    )
    image = live.image(image_id)
    assert image is not None and image.status == "pending"


def test_any_policy_first_decision_settles_and_updates_every_card(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A, APPROVER_B])
    wait_until(lambda: len(cards(live)) == 2, what="cards")
    request_id = request_id_of(live)
    click_card(live, approvals_ids.APPROVE, request_id, APPROVER_B)
    updates = wait_until(
        lambda: len(live.slack.calls_to("chat.update")) >= 2 and live.slack.calls_to("chat.update"),
        what="cards updated",
    )
    for update in updates[:2]:
        text = said(update.params["blocks"])
        assert "Approved by <@UBEN>" in text
        assert approvals_ids.APPROVE not in text  # buttons gone
    wait_until(
        lambda: any(
            "Approved by" in (c.params.get("text") or "")
            for c in live.slack.calls_to("chat.postMessage")
            if c.params.get("thread_ts")
        ),
        what="thread told",
    )
    image = live.image(image_id)
    assert image is not None and image.status == "approved"
    answer = live.command("status:approved", user=POSTER)
    assert "Launch hero" in said(answer["blocks"])


def test_all_policy_needs_everyone_and_shows_progress(live: Live) -> None:
    with_setup(live)
    live.command("categories add Marketing")
    live.command(f"watch <#{PUBLIC_CHANNEL}|marketing-shoots> Marketing")
    answer = live.command(f"approvers Marketing <@{APPROVER_A}|max> <@{APPROVER_B}|ben> all")
    assert "every one of them must approve" in answer["text"]
    (marketing,) = admin.list_categories(live.db.factory, team_id=TEAM)
    image_id = posted_image(live)
    _, view = live.click_to_open(details_ids.ADD_DETAILS, str(image_id))
    prefilled = {b.get("block_id"): b for b in view["blocks"]}["approvers"]["element"]
    assert prefilled["initial_users"] == [APPROVER_A, APPROVER_B]
    ask_via_details(live, image_id, [APPROVER_A, APPROVER_B], category_id=marketing.id)
    wait_until(lambda: len(cards(live)) == 2, what="cards")
    request_id = request_id_of(live)
    click_card(live, approvals_ids.APPROVE, request_id, APPROVER_A)
    progress = wait_until(lambda: live.slack.calls_to("chat.update"), what="progress")
    assert "Approved so far by <@UMEMBER>; waiting for <@UBEN>" in said(progress[-1].params)
    image = live.image(image_id)
    assert image is not None and image.status == "pending"
    click_card(live, approvals_ids.APPROVE, request_id, APPROVER_B)
    wait_until(lambda: (live.image(image_id) or image).status == "approved", what="approved")


def test_reject_needs_a_reason_and_tells_everyone(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A, APPROVER_B])
    wait_until(lambda: len(cards(live)) == 2, what="cards")
    request_id = request_id_of(live)
    before = live.opened_views()
    click_card(live, approvals_ids.REJECT, request_id, APPROVER_A)
    view_id, view = live.opened_view(before)
    assert view["callback_id"] == approvals_ids.REJECT_MODAL
    empty = live.submit(
        view_id, {"reason": {"value": {"type": "plain_text_input", "value": ""}}}, user=APPROVER_A
    )
    assert empty.json()["errors"]["reason"] == "Say why it is rejected."
    too_long = live.submit(
        view_id,
        {"reason": {"value": {"type": "plain_text_input", "value": "x" * 501}}},
        user=APPROVER_A,
    )
    assert "under 500 characters" in too_long.json()["errors"]["reason"]
    live.submit(
        view_id,
        {"reason": {"value": {"type": "plain_text_input", "value": "wrong logo"}}},
        user=APPROVER_A,
    )
    updates = wait_until(
        lambda: len(live.slack.calls_to("chat.update")) >= 2 and live.slack.calls_to("chat.update"),
        what="cards",
    )
    assert "Rejected by <@UMEMBER>: wrong logo" in said(updates[0].params["blocks"])
    image = live.image(image_id)
    assert image is not None and image.status == "rejected"


def test_only_approvers_and_admins_decide(live: Live) -> None:
    with_setup(live)
    live.slack.add_user("UOTHER", "olaf")
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A])
    wait_until(lambda: cards(live), what="card")
    request_id = request_id_of(live)
    click_card(live, approvals_ids.APPROVE, request_id, "UOTHER")
    refusal = wait_until(
        lambda: [
            c for c in live.slack.calls_to("chat.postMessage") if c.params["channel"] == "UOTHER"
        ],
        what="refusal",
    )
    assert refusal[0].params["text"] == "You are not an approver of this request."
    image = live.image(image_id)
    assert image is not None and image.status == "pending"
    click_card(live, approvals_ids.APPROVE, request_id, ADMIN)
    wait_until(lambda: (live.image(image_id) or image).status == "approved", what="approved")
    with session_scope(live.db.factory) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "approved")).one()
    assert (event.actor_id, event.detail["as_admin"]) == (ADMIN, True)


def test_click_on_a_settled_card_shows_the_truth_and_settles_nothing_twice(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A, APPROVER_B])
    wait_until(lambda: len(cards(live)) == 2, what="cards")
    request_id = request_id_of(live)
    click_card(live, approvals_ids.APPROVE, request_id, APPROVER_A)
    wait_until(lambda: len(live.slack.calls_to("chat.update")) >= 2, what="cards updated")
    click_card(live, approvals_ids.APPROVE, request_id, APPROVER_A)  # a double click
    before = live.opened_views()
    click_card(live, approvals_ids.REJECT, request_id, APPROVER_B)  # too late: opens the modal...
    view_id, _ = live.opened_view(before)
    live.submit(
        view_id,
        {"reason": {"value": {"type": "plain_text_input", "value": "late"}}},
        user=APPROVER_B,
    )
    wait_until(lambda: len(live.slack.calls_to("chat.update")) >= 6, what="truth again")
    threads = [
        c
        for c in live.slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") and "Approved" in (c.params.get("text") or "")
    ]
    assert len(threads) == 1
    assert "Approved by <@UMEMBER>" in said(live.slack.calls_to("chat.update")[-1].params)
    image = live.image(image_id)
    assert image is not None and image.status == "approved"


def test_cancel_from_app_home(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A])
    wait_until(lambda: cards(live), what="card")
    request_id = request_id_of(live)
    live.click(approvals_ids.CANCEL_REQUEST, str(request_id), user=APPROVER_A, channel=None)
    refusal = wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if c.params["channel"] == APPROVER_A
            and "Only the person who asked" in c.params.get("text", "")
        ],
        what="refusal",
    )
    assert refusal
    live.click(approvals_ids.CANCEL_REQUEST, str(request_id), user=POSTER, channel=None)
    update = wait_until(lambda: live.slack.calls_to("chat.update"), what="card updated")
    assert "Request cancelled" in said(update[-1].params["blocks"])
    image = live.image(image_id)
    assert image is not None and image.status == "draft"


def test_request_from_search_with_bad_approvers_and_due_dates(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    view_id, view = live.click_to_open(approvals_ids.REQUEST_APPROVAL, str(image_id), user=POSTER)
    assert view["callback_id"] == approvals_ids.REQUEST_MODAL

    def submit(approvers: list[str], due: str | None = None) -> Any:
        values = {
            "approvers": {"value": {"type": "multi_users_select", "selected_users": approvers}},
            "note": {"value": {"type": "plain_text_input", "value": "for the launch"}},
            "due": {"value": {"type": "datepicker", "selected_date": due}},
        }
        return live.submit(view_id, values, user=POSTER)

    assert "bot" in submit(["UOTHERBOT"]).json()["errors"]["approvers"]
    assert "own request" in submit([POSTER]).json()["errors"]["approvers"]
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert "in the past" in submit([APPROVER_A], yesterday).json()["errors"]["due"]
    reply = submit([APPROVER_A])
    assert reply.status == 200 and not reply.body
    wait_until(lambda: cards(live), what="card")
    card = cards(live)[APPROVER_A].params["blocks"]
    assert "for the launch" in said(card)
    again = submit([APPROVER_B])
    assert "already has an open approval request" in again.json()["errors"]["approvers"]


def test_guest_who_cannot_see_the_image_is_refused_as_approver(live: Live) -> None:
    from bot.approvers import check_approvers

    live.command(f"watch <#{PRIVATE_CHANNEL}|launch-secret>")
    live.post(live.add_jpeg("F0PRIV", seed=51), channel=PRIVATE_CHANNEL)
    live.wait_for_prompt()
    (image,) = live.stored()
    try:
        check_approvers(
            live.db.people, team_id=TEAM, requester=POSTER, approvers=[GUEST], image=image
        )
    except approvals.ApprovalError as exc:
        assert "cannot see this image" in str(exc)
    else:
        raise AssertionError("a guest outside the channel was accepted as approver")
    check_approvers(live.db.people, team_id=TEAM, requester=POSTER, approvers=[ADMIN], image=image)


def test_history_shows_who_did_what(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A])
    wait_until(lambda: cards(live), what="card")
    click_card(live, approvals_ids.APPROVE, request_id_of(live), APPROVER_A)
    wait_until(lambda: (live.image(image_id) or None).status == "approved", what="approved")  # type: ignore[union-attr]
    click = live.click(approvals_ids.SHOW_HISTORY, str(image_id), user=POSTER)
    answer = wait_until(lambda: live.responses(click["response_url"]), what="history")[-1]
    text = said(answer["blocks"])
    for step in ("uploaded", "details added", "approval requested", "approved"):
        assert step in text


def test_editing_details_does_not_reset_an_approval(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A])
    wait_until(lambda: cards(live), what="card")
    click_card(live, approvals_ids.APPROVE, request_id_of(live), APPROVER_A)
    wait_until(lambda: (live.image(image_id) or None).status == "approved", what="approved")  # type: ignore[union-attr]
    view_id, _ = live.click_to_open(details_ids.EDIT_DETAILS, str(image_id), channel=None)
    live.submit(view_id, form_values([image_id], titles=["Renamed"], approvers=[APPROVER_A]))
    image = live.image(image_id)
    assert image is not None
    assert (image.title, image.status) == ("Renamed", "approved")
    with session_scope(live.db.factory) as session:
        assert len(session.scalars(select(ApprovalRequest)).all()) == 1


def test_app_home_shows_what_waits_for_me(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A])
    wait_until(lambda: cards(live), what="card")
    homes = wait_until(
        lambda: [
            c for c in live.slack.calls_to("views.publish") if c.params["user_id"] == APPROVER_A
        ],
        what="home",
    )
    text = said(homes[-1].params["view"])
    assert "Waiting for your approval" in text
    assert approvals_ids.APPROVE in text

    # App Home refreshes are coalesced per person and run in the background: the requester's
    # Home tab shows the request once the refresh after it has run.
    def requesters_home() -> str:
        homes = [c for c in live.slack.calls_to("views.publish") if c.params["user_id"] == POSTER]
        return said(homes[-1].params["view"]) if homes else ""  # none published yet

    wait_until(
        lambda: "My requests" in requesters_home(), what="the requester's App Home with the request"
    )


# -- concurrency (domain level, real database) --------------------------------------------------


def test_concurrent_decisions_settle_exactly_once(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    voters = [f"UV{n}" for n in range(8)]
    request = approvals.request_approval(
        live.db.factory,
        team_id=TEAM,
        image_id=image_id,
        requested_by=POSTER,
        approvers=voters,
        policy="any",
        now=datetime.now(UTC),
    )
    results: list[approvals.Decision] = []
    barrier = threading.Barrier(len(voters))

    def vote(n: int, user: str) -> None:
        barrier.wait()
        results.append(
            approvals.decide(
                live.db.factory,
                team_id=TEAM,
                request_id=request.id,
                user_id=user,
                decision="approved" if n % 2 else "rejected",
                reason="no" if n % 2 == 0 else None,
                is_admin=False,
                now=datetime.now(UTC),
            )
        )

    threads = [threading.Thread(target=vote, args=(n, u)) for n, u in enumerate(voters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    settled = [r for r in results if r.settled]
    assert len(settled) == 1
    assert sum(1 for r in results if r.counted) == 1
    final = approvals.get_request(live.db.factory, team_id=TEAM, request_id=request.id)
    assert final is not None
    assert final.state == settled[0].request.state
    image = live.image(image_id)
    assert image is not None and image.status == final.state


def test_two_workers_remind_each_request_once(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    created = datetime.now(UTC)
    approvals.request_approval(
        live.db.factory,
        team_id=TEAM,
        image_id=image_id,
        requested_by=POSTER,
        approvers=[APPROVER_A],
        policy="any",
        now=created,
    )
    later = created + timedelta(hours=25)
    found: list[list[approval_queue.Nudge]] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        found.append(
            approval_queue.claim_reminders(
                live.db.factory,
                now=later,
                remind_after=timedelta(hours=24),
                escalate_after=timedelta(hours=72),
            )
        )

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(len(f) for f in found) == [0, 1]
    assert (
        approval_queue.claim_reminders(
            live.db.factory,
            now=later + timedelta(hours=1),
            remind_after=timedelta(hours=24),
            escalate_after=timedelta(hours=72),
        )
        == []
    )
    escalations = approval_queue.claim_reminders(
        live.db.factory,
        now=created + timedelta(hours=73),
        remind_after=timedelta(hours=24),
        escalate_after=timedelta(hours=72),
    )
    assert [n.escalate for n in escalations] == [True]


def test_discarding_an_image_cancels_its_request_and_updates_the_cards(live: Live) -> None:
    from tests import images

    with_setup(live)
    data = images.jpeg(seed=60)
    for file_id in ("F0FIRST", "F0COPY"):
        live.slack.add_file(
            file_id,
            name=f"{file_id}.jpg",
            content=data,
            mimetype="image/jpeg",
            filetype="jpg",
            user=POSTER,
        )
    live.post("F0FIRST")
    live.wait_for_prompt(count=1)
    live.post("F0COPY")
    prompt = live.wait_for_prompt(count=2)
    copy_id = int(
        next(
            e["value"]
            for b in prompt.params["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == capture_ids.DISCARD_DUPLICATE
        )
    )
    approvals.request_approval(
        live.db.factory,
        team_id=TEAM,
        image_id=copy_id,
        requested_by=POSTER,
        approvers=[APPROVER_A],
        policy="any",
        now=datetime.now(UTC),
    )
    request_id = request_id_of(live)
    approval_queue.record_card(
        live.db.factory, request_id=request_id, approver_id=APPROVER_A, channel="DMEMBER", ts="1.5"
    )
    live.click(capture_ids.DISCARD_DUPLICATE, str(copy_id))
    update = wait_until(lambda: live.slack.calls_to("chat.update"), what="card updated")
    assert update[-1].params["ts"] == "1.5"
    assert "Request cancelled" in said(update[-1].params["blocks"])
    assert live.image(copy_id) is None


def test_a_forged_click_on_a_settled_request_only_says_not_an_approver(live: Live) -> None:
    with_setup(live)
    live.slack.add_user("UOTHER", "olaf")
    image_id = posted_image(live)
    ask_via_details(live, image_id, [APPROVER_A])
    wait_until(live.cards_recorded, what="card recorded")
    request_id = request_id_of(live)
    click_card(live, approvals_ids.APPROVE, request_id, APPROVER_A)
    # Settled: the recorded card and the clicked one were both rewritten.
    wait_until(lambda: len(live.slack.calls_to("chat.update")) >= 2, what="cards updated")
    updates_before = len(live.slack.calls_to("chat.update"))
    # Olaf is no approver; his click names the settled request (a stale or forged value).
    click_card(live, approvals_ids.APPROVE, request_id, "UOTHER")
    refusal = wait_until(
        lambda: [
            c for c in live.slack.calls_to("chat.postMessage") if c.params["channel"] == "UOTHER"
        ],
        what="refusal",
    )
    assert [c.params["text"] for c in refusal] == ["You are not an approver of this request."]
    # Nothing about the request was shown to him: no card rewritten with the image.
    assert len(live.slack.calls_to("chat.update")) == updates_before
    assert "UOTHER" not in said([c.params for c in live.slack.calls_to("chat.update")])


def test_an_admin_cannot_approve_their_own_request(live: Live) -> None:
    with_setup(live)
    image_id = posted_image(live)
    # The admin edits the poster's image and sends it for approval: the admin asked.
    view_id, _ = live.click_to_open(details_ids.ADD_DETAILS, str(image_id), user=ADMIN)
    reply = live.submit(
        view_id, form_values([image_id], titles=["Hero"], approvers=[APPROVER_A]), user=ADMIN
    )
    assert reply.status == 200 and not reply.body, reply
    wait_until(lambda: cards(live), what="card")
    click_card(live, approvals_ids.APPROVE, request_id_of(live), ADMIN)
    told = wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if c.params["channel"] == ADMIN and c.params["text"] == approvals.OWN_REQUEST
        ],
        what="refusal",
    )
    assert len(told) == 1
    image = live.image(image_id)
    assert image is not None and image.status == "pending"
    click_card(live, approvals_ids.APPROVE, request_id_of(live), APPROVER_A)
    wait_until(lambda: (live.image(image_id) or image).status == "approved", what="approved")
