"""Asking for an approval, deciding and cancelling (bot.decisions), with no Slack: who may,
what they are refused with, and what everyone concerned is told through the Notifier."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot import admin, decisions
from bot.approvals import NOT_AN_APPROVER, OWN_REQUEST, ApprovalError, RequestView
from bot.services import Services
from tests import seed
from tests.bot.fakes import (
    ADMIN,
    BOT,
    GUEST,
    LEFT,
    MEMBER,
    OTHER,
    POSTER,
    SECRET,
    SHOOTS,
    TEAM,
    FakeClock,
    FakeDirectory,
    FakeFiles,
    RecordingNotifier,
    make_services,
)


def draft(services: Services, *, channel: str = SHOOTS, uploader: str = POSTER) -> int:
    """A stored image without a decision yet, posted by `uploader` in `channel`."""
    return seed.add(
        services.factory,
        "Launch hero",
        uploader=uploader,
        channel=channel,
        private=channel == SECRET,
        status="draft",
    )


def ask(
    services: Services, user: str, image_id: int, approvers: list[str], **kwargs: object
) -> RequestView:
    return decisions.ask_for_approval(
        services,
        services.people.person(TEAM, user),
        image_id=image_id,
        approvers=approvers,
        **kwargs,  # type: ignore[arg-type]
    ).request


def decide(
    services: Services, user: str, request_id: int, decision: str, reason: str | None = None
) -> decisions.Decision:
    return decisions.decide(
        services,
        services.people.person(TEAM, user),
        request_id=request_id,
        decision=decision,
        reason=reason,
    )


# -- Asking -------------------------------------------------------------------------------------


def test_each_approver_is_asked_about_the_open_request(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    request = ask(services, POSTER, image_id, [MEMBER, ADMIN], note="  For the launch page  ")

    assert notifier.kinds == ["approval_requested"]
    told = notifier.of("approval_requested")[0]
    assert told == request
    assert (told.state, told.requested_by, told.image_id) == ("open", POSTER, image_id)
    assert told.approvers == [MEMBER, ADMIN]
    assert told.note == "For the launch page"
    assert all(v.decision is None for v in told.votes)


def test_on_saved_gets_the_request_before_anyone_is_asked(
    services: Services, notifier: RecordingNotifier
) -> None:
    seen: list[tuple[RequestView, list[str]]] = []
    request = ask(
        services,
        POSTER,
        draft(services),
        [MEMBER],
        on_saved=lambda saved: seen.append((saved, notifier.kinds)),
    )
    assert seen == [(request, [])]
    assert notifier.kinds == ["approval_requested"]


def test_only_the_poster_or_an_admin_may_send_an_image_for_approval(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    with pytest.raises(ApprovalError) as refused:
        ask(services, MEMBER, image_id, [ADMIN])
    assert str(refused.value) == decisions.NOT_THE_POSTER
    assert refused.value.field == "approvers"
    assert notifier.told == []

    on_behalf = ask(services, ADMIN, image_id, [MEMBER])
    assert on_behalf.requested_by == ADMIN
    assert notifier.of("approval_requested") == [on_behalf]


def test_an_image_from_a_conversation_the_asker_is_not_in_is_gone_to_them(
    services: Services, notifier: RecordingNotifier
) -> None:
    secret = draft(services, channel=SECRET)
    # An admin may ask on anyone's behalf, but not about an image they may not see.
    with pytest.raises(ApprovalError) as refused:
        ask(services, ADMIN, secret, [MEMBER])
    assert str(refused.value) == decisions.GONE
    assert notifier.told == []


def refusal(services: Services, approvers: list[str], *, channel: str) -> str | None:
    """What the uploader of a new draft in `channel` is told when naming these approvers
    (None: the request was opened)."""
    uploader = ADMIN if channel == OTHER else POSTER
    try:
        ask(services, uploader, draft(services, channel=channel, uploader=uploader), approvers)
    except ApprovalError as exc:
        assert exc.field == "approvers"
        return str(exc)
    return None


def test_approvers_who_could_not_decide_are_refused_by_name(
    services: Services, notifier: RecordingNotifier
) -> None:
    cannot_see = "{} cannot see this image (it comes from a channel they are not in)."
    assert {
        "nobody": refusal(services, [], channel=SHOOTS),
        "a bot": refusal(services, [BOT], channel=SHOOTS),
        "deactivated": refusal(services, [LEFT], channel=SHOOTS),
        "themself": refusal(services, [MEMBER, POSTER], channel=SHOOTS),
        # Someone the directory does not know has no rights, not even to approve.
        "unknown": refusal(services, ["UNOBODY"], channel=SHOOTS),
        # Guests see only their own channels, even public ones.
        "guest elsewhere": refusal(services, [GUEST], channel=OTHER),
        "guest in the channel": refusal(services, [GUEST], channel=SHOOTS),
        "not in the private conversation": refusal(services, [ADMIN], channel=SECRET),
        "in the private conversation": refusal(services, [MEMBER], channel=SECRET),
    } == {
        "nobody": "Name at least one person to approve it.",
        "a bot": "Another Bot is a bot; bots cannot approve.",
        "deactivated": "Lee Left is no longer in the workspace.",
        "themself": "You cannot approve your own request; name someone else.",
        "unknown": "UNOBODY is no longer in the workspace.",
        "guest elsewhere": cannot_see.format("Gil Guest"),
        "guest in the channel": None,
        "not in the private conversation": cannot_see.format("Ana Admin"),
        "in the private conversation": None,
    }
    # Only the two requests that could be decided were opened, and their approvers asked.
    assert [r.approvers for r in notifier.of("approval_requested")] == [[GUEST], [MEMBER]]


def test_a_refused_request_leaves_the_image_ready_to_send_again(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    with pytest.raises(ApprovalError):
        ask(services, POSTER, image_id, [BOT])
    assert notifier.told == []
    assert ask(services, POSTER, image_id, [MEMBER]).state == "open"


def test_when_the_directory_will_not_say_who_is_in_a_private_conversation_nobody_approves(
    services: Services, directory: FakeDirectory, notifier: RecordingNotifier
) -> None:
    image_id = draft(services, channel=SECRET)
    directory.silence("members", SECRET)
    with pytest.raises(ApprovalError, match="Max Member cannot see this image"):
        ask(services, POSTER, image_id, [MEMBER])
    assert notifier.told == []


def test_a_due_date_in_the_past_is_refused_on_the_due_field(
    services: Services, notifier: RecordingNotifier
) -> None:
    yesterday = services.clock() - timedelta(days=1)
    with pytest.raises(ApprovalError) as refused:
        ask(services, POSTER, draft(services), [MEMBER], due_at=yesterday)
    assert (str(refused.value), refused.value.field) == ("The due date is in the past.", "due")
    assert notifier.told == []


def test_an_image_with_an_open_request_is_not_sent_twice(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    ask(services, POSTER, image_id, [MEMBER])
    with pytest.raises(ApprovalError, match="already has an open approval request"):
        ask(services, POSTER, image_id, [ADMIN])
    assert notifier.kinds == ["approval_requested"]


# -- Deciding -----------------------------------------------------------------------------------


def test_the_first_approval_settles_an_any_request_and_the_cards_say_so(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER, ADMIN])
    result = decide(services, MEMBER, request.id, "approved")

    assert (result.settled, result.counted) == (True, True)
    told = notifier.told[-1]
    assert (told.kind, told.settled) == ("approval_changed", True)
    assert told.what.state == "approved"
    assert told.what.approved_by == [MEMBER]
    assert told.what.decided_at == services.clock()


def test_a_repeat_decision_on_a_settled_request_re_tells_the_cards_unsettled(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER, ADMIN])
    decide(services, MEMBER, request.id, "approved")
    # The other approver clicks a card that was not updated yet (or Slack retries a click).
    late = decide(services, ADMIN, request.id, "rejected", reason="Too dark")

    assert (late.settled, late.counted) == (False, False)
    told = notifier.told[-1]
    assert (told.kind, told.settled) == ("approval_changed", False)
    assert told.what.state == "approved"  # the truth, which the late card must now show
    assert told.what.rejection is None
    assert [t.settled for t in notifier.told if t.kind == "approval_changed"] == [True, False]


def test_a_rejection_needs_a_reason_and_changes_nothing_without_one(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER])
    with pytest.raises(ApprovalError) as refused:
        decide(services, MEMBER, request.id, "rejected", reason="   ")
    assert (str(refused.value), refused.value.field) == ("Say why it is rejected.", "reason")
    assert notifier.kinds == ["approval_requested"]

    decide(services, MEMBER, request.id, "rejected", reason="Logo is cut off")
    rejected = notifier.of("approval_changed")[-1]
    assert rejected.state == "rejected"
    assert rejected.rejection is not None
    assert (rejected.rejection.approver_id, rejected.rejection.reason) == (
        MEMBER,
        "Logo is cut off",
    )


def test_someone_not_named_may_not_decide_and_nobody_is_told(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER])
    with pytest.raises(ApprovalError) as refused:
        decide(services, GUEST, request.id, "approved")  # in the channel: sees the image
    assert str(refused.value) == NOT_AN_APPROVER
    # Someone who cannot see the image is not even told that the request exists.
    with pytest.raises(ApprovalError, match="This approval request no longer exists"):
        decide(services, "UNOBODY", request.id, "approved")
    # The approver's id, acting from another workspace, finds no such request there.
    elsewhere = services.people.person("T0ELSEWHERE", MEMBER)
    with pytest.raises(ApprovalError, match="This approval request no longer exists"):
        decisions.decide(
            services, elsewhere, request_id=request.id, decision="approved", reason=None
        )
    assert notifier.kinds == ["approval_requested"]


def test_an_admin_decides_in_the_approvers_place_but_never_on_their_own_request(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER])
    decide(services, ADMIN, request.id, "approved")
    told = notifier.of("approval_changed")[-1]
    assert told.state == "approved"
    assert told.approved_by == [ADMIN]
    assert told.votes[-1].decided_by == ADMIN

    own = ask(services, ADMIN, draft(services), [MEMBER])
    with pytest.raises(ApprovalError) as refused:
        decide(services, ADMIN, own.id, "approved")
    assert str(refused.value) == OWN_REQUEST
    assert notifier.kinds[-1] == "approval_requested"


def test_all_policy_waits_for_every_approver(
    services: Services, notifier: RecordingNotifier
) -> None:
    now = services.clock()
    admin.add_category(services.factory, team_id=TEAM, name="Press", actor_id=ADMIN, now=now)
    admin.set_approvers(
        services.factory,
        team_id=TEAM,
        category="Press",
        approvers=[],
        policy="all",
        actor_id=ADMIN,
        now=now,
    )
    image_id = seed.add(
        services.factory,
        "Press kit",
        uploader=POSTER,
        channel=SHOOTS,
        category="Press",
        status="draft",
    )
    request = ask(services, POSTER, image_id, [MEMBER, GUEST])
    assert request.policy == "all"

    first = decide(services, MEMBER, request.id, "approved")
    assert (first.settled, first.counted) == (False, True)
    assert notifier.told[-1].settled is False
    assert notifier.told[-1].what.state == "open"
    assert notifier.told[-1].what.approved_by == [MEMBER]

    decide(services, GUEST, request.id, "approved")
    assert notifier.told[-1].settled is True
    assert notifier.told[-1].what.state == "approved"


def test_on_saved_gets_the_decision_before_the_cards_change(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER])
    seen: list[list[str]] = []
    result = decisions.decide(
        services,
        services.people.person(TEAM, MEMBER),
        request_id=request.id,
        decision="approved",
        reason=None,
        on_saved=lambda saved: seen.append(notifier.kinds),
    )
    assert result.settled
    assert seen == [["approval_requested"]]
    assert notifier.kinds == ["approval_requested", "approval_changed"]


# -- Cancelling ---------------------------------------------------------------------------------


def test_the_requester_cancels_and_every_card_says_so_once(
    services: Services, notifier: RecordingNotifier
) -> None:
    request = ask(services, POSTER, draft(services), [MEMBER])
    with pytest.raises(ApprovalError, match="Only the person who asked, or an admin"):
        decisions.cancel(services, services.people.person(TEAM, MEMBER), request_id=request.id)
    assert notifier.kinds == ["approval_requested"]

    poster = services.people.person(TEAM, POSTER)
    cancelled = decisions.cancel(services, poster, request_id=request.id)
    assert (cancelled.settled, cancelled.request.state) == (True, "cancelled")
    again = decisions.cancel(services, poster, request_id=request.id)
    assert again.settled is False
    assert [(t.what.state, t.settled) for t in notifier.told if t.kind == "approval_changed"] == [
        ("cancelled", True),
        ("cancelled", False),
    ]
    # Back to a draft: it can be sent again.
    assert ask(services, POSTER, request.image_id, [ADMIN]).state == "open"


# -- No notifier connected ----------------------------------------------------------------------


def test_with_no_notifier_connected_requests_are_still_asked_decided_and_cancelled(
    tmp_path: Path, directory: FakeDirectory
) -> None:
    services = make_services(
        tmp_path, directory=directory, files=FakeFiles(), notifier=None, clock=FakeClock()
    )
    try:
        request = ask(services, POSTER, draft(services), [MEMBER])
        result = decide(services, MEMBER, request.id, "approved")
        assert (result.settled, result.request.state) == (True, "approved")
        other = ask(services, POSTER, draft(services), [MEMBER])
        poster = services.people.person(TEAM, POSTER)
        assert decisions.cancel(services, poster, request_id=other.id).request.state == (
            "cancelled"
        )
    finally:
        services.shutdown()


def test_an_admin_cannot_decide_or_cancel_a_request_about_an_image_they_cannot_see(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services, channel=SECRET)  # the admin is not in it
    request = ask(services, POSTER, image_id, [MEMBER])
    for act in (
        lambda: decide(services, ADMIN, request.id, "rejected", reason="no"),
        lambda: decisions.cancel(
            services, services.people.person(TEAM, ADMIN), request_id=request.id
        ),
    ):
        with pytest.raises(ApprovalError, match="This approval request no longer exists"):
            act()
    assert notifier.kinds == ["approval_requested"]
    decide(services, MEMBER, request.id, "approved")  # the approver still can
