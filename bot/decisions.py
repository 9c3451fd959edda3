"""The approval use cases a front door calls: ask for an approval, decide, cancel. Each one
checks who acts, changes the library, and tells everyone concerned through the Notifier, so
a decision taken on the web updates the approvers' cards in Slack just as a click there does.

`on_saved`, when given, gets the result once it is saved, before anyone is told: a door that
must answer its request quickly (Slack's three seconds) answers there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot import approvals
from bot.approvals import ApprovalError, Decision, RequestView
from bot.approvers import check_approvers, policy_of
from bot.finder import visible_image
from bot.people import Person
from bot.services import Services
from storage.models import Image

NOT_THE_POSTER = "Only the person who posted this image, or an admin, can send it for approval."
GONE = "That image is no longer in the library."
NO_SUCH_REQUEST = "This approval request no longer exists."


def may_ask(actor: Person, image: Image) -> bool:
    """The poster of an image, or an admin, may send it for approval."""
    return actor.is_admin or image.uploader_id == actor.user_id


def ask_for_approval(
    services: Services,
    actor: Person,
    *,
    image_id: int,
    approvers: list[str],
    note: str = "",
    due_at: datetime | None = None,
    on_saved: Callable[[RequestView], None] | None = None,
) -> RequestView:
    """Open a request on an image `actor` may see and send for approval, with approvers who
    may decide it; each approver is asked. ApprovalError (with the form field) otherwise."""
    image = visible_image(services.factory, image_id=image_id, viewer=actor.viewer)
    if image is None:
        raise ApprovalError(GONE, field="approvers")
    if not may_ask(actor, image):
        raise ApprovalError(NOT_THE_POSTER, field="approvers")
    check_approvers(
        services.people,
        team_id=actor.team_id,
        requester=actor.user_id,
        approvers=approvers,
        image=image,
    )
    request = approvals.request_approval(
        services.factory,
        team_id=actor.team_id,
        image_id=image_id,
        requested_by=actor.user_id,
        approvers=approvers,
        policy=policy_of(services.factory, image),
        note=note,
        due_at=due_at,
        now=services.clock(),
    )
    if on_saved is not None:
        on_saved(request)
    if services.notifier is not None:
        services.notifier.approval_requested(request)
    return request


def _check_in_sight(services: Services, actor: Person, *, request_id: int) -> None:
    """An admin acting in someone's place must be able to see the image, like anyone
    else: a request about an image they cannot see is, to them, one that does not exist.
    The approvers and the requester were checked when it was asked."""
    request = approvals.get_request(services.factory, team_id=actor.team_id, request_id=request_id)
    if request is None:
        raise ApprovalError(NO_SUCH_REQUEST)
    involved = actor.user_id == request.requested_by or actor.user_id in request.approvers
    if (
        not involved
        and visible_image(services.factory, image_id=request.image_id, viewer=actor.viewer) is None
    ):
        raise ApprovalError(NO_SUCH_REQUEST)


def decide(
    services: Services,
    actor: Person,
    *,
    request_id: int,
    decision: str,
    reason: str | None,
    on_saved: Callable[[Decision], None] | None = None,
) -> Decision:
    """`actor` approves or rejects (an approver, or an admin in their place). Every place
    the request is shown tells the truth afterwards, even for a repeat click on a settled
    request. ApprovalError when they may not decide."""
    _check_in_sight(services, actor, request_id=request_id)
    result = approvals.decide(
        services.factory,
        team_id=actor.team_id,
        request_id=request_id,
        user_id=actor.user_id,
        decision=decision,
        reason=reason,
        is_admin=actor.is_admin,
        now=services.clock(),
    )
    if on_saved is not None:
        on_saved(result)
    if services.notifier is not None:
        services.notifier.approval_changed(result.request, settled=result.settled)
    return result


def cancel(services: Services, actor: Person, *, request_id: int) -> Decision:
    """The requester (or an admin) withdraws an open request; the image goes back to draft."""
    _check_in_sight(services, actor, request_id=request_id)
    result = approvals.cancel(
        services.factory,
        team_id=actor.team_id,
        request_id=request_id,
        user_id=actor.user_id,
        is_admin=actor.is_admin,
        now=services.clock(),
    )
    if services.notifier is not None:
        services.notifier.approval_changed(result.request, settled=result.settled)
    return result
