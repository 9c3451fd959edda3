"""The approval use cases a front door calls: ask for an approval, decide, cancel. Each one
checks who acts, changes the library, and tells everyone concerned through the Notifier, so
a decision taken on the web updates the approvers' cards in Slack just as a click there does.

`on_saved`, when given, gets the result once it is saved, before anyone is told: a door that
must answer its request quickly (Slack's three seconds) answers there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot import approvals, cancellation, reviews
from bot.approval_queue import claim_outcome, mark_outcome_told
from bot.approvals import ApprovalError, Decision, RequestView
from bot.approvers import check_approvers, policy_of
from bot.finder import visible_image
from bot.people import Person
from bot.ports import MailError
from bot.reviews import NewLink, Reviewer
from bot.services import Services
from storage.models import Image

log = logging.getLogger(__name__)

NOT_THE_POSTER = "Only the person who posted this image, or an admin, can send it for approval."
GONE = "That image is no longer in the library."
NO_SUCH_REQUEST = "This approval request no longer exists."
LINK_CLOSED = "This review link no longer works."


@dataclass(frozen=True)
class Asked:
    """A new request, and the links of the clients named on it: each link's token is known
    only here. `emailed` links were sent; the others are for the requester to forward."""

    request: RequestView
    links: list[NewLink]


def show_change(services: Services, request: RequestView, *, settled: bool) -> None:
    """Every card shows the request as it now is; when it has just settled, its requester is
    told how it ended, once: the telling is claimed first (bot.approval_queue), so a double
    click tells nothing twice, and a process that dies before telling leaves it to the
    worker (bot.scheduler.tell_outcomes)."""
    notifier = services.notifier
    if notifier is None:
        return
    telling = claim_outcome(services.factory, request.id, now=services.clock()) if settled else None
    notifier.approval_changed(
        request, settled=telling is not None, told_maybe=telling is not None and telling.again
    )
    if telling is not None:
        mark_outcome_told(services.factory, request.id, now=services.clock())


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
    reviewers: Sequence[Reviewer] = (),
    on_saved: Callable[[RequestView], None] | None = None,
) -> Asked:
    """Open a request on an image `actor` may see and send for approval, with approvers who
    may decide it and clients (`reviewers`, each given a review link); each approver is
    asked, each client e-mailed when SMTP is configured. ApprovalError (with the form field)
    otherwise."""
    image = visible_image(services.factory, image_id=image_id, viewer=actor.viewer)
    if image is None:
        raise ApprovalError(GONE, field="approvers")
    if not may_ask(actor, image):
        raise ApprovalError(NOT_THE_POSTER, field="approvers")
    reviewers = reviews.check_reviewers(reviewers)
    if approvers or not reviewers:
        check_approvers(
            services.people,
            team_id=actor.team_id,
            requester=actor.user_id,
            approvers=approvers,
            image=image,
        )
    policy, now = policy_of(services.factory, image), services.clock()
    request, links = reviews.request_with_reviewers(
        services.factory,
        team_id=actor.team_id,
        image_id=image_id,
        requested_by=actor.user_id,
        approvers=approvers,
        reviewers=reviewers,
        policy=policy,
        note=note,
        due_at=due_at,
        now=now,
    )
    if on_saved is not None:
        on_saved(request)
    if services.notifier is not None:
        services.notifier.approval_requested(request)
    if not links:
        return Asked(request, [])
    what = reviews.request_titles(services.factory, request)
    sent = [
        email_link(services, actor, link, what=what, note=request.note, due_at=request.due_at)
        for link in links
    ]
    return Asked(request, sent)


def review_base_url(services: Services) -> str:
    """Where clients open their links: PUBLIC_BASE_URL, else this machine."""
    settings = services.settings
    return settings.public_base_url or f"http://localhost:{settings.port}"


def email_link(
    services: Services,
    actor: Person,
    link: NewLink,
    *,
    what: str,
    note: str = "",
    due_at: datetime | None = None,
) -> NewLink:
    """E-mail a client their link when SMTP is configured (`what`: “Title”, or “3 images”);
    the link marked `emailed`, or as it was when it could not be sent (it is then handed to
    the requester to forward)."""
    mailer = services.mailer
    if mailer is None:
        return link
    asker = services.people.facts(actor.team_id, actor.user_id).name or "A colleague"
    url = reviews.review_url(review_base_url(services), link.token)
    lines = [
        f"Hello {link.name},",
        "",
        f"{asker} asks you to review {what}.",
        *([f"Their note: {note}"] if note else []),
        *([f"Please decide by {due_at.date().isoformat()}."] if due_at else []),
        "",
        f"Open this link to see it and approve or reject it: {url}",
        f"The link is yours alone and works until {link.expires_at.date().isoformat()}.",
    ]
    try:
        mailer.send(to=link.email, subject=f"Please review {what}", body="\n".join(lines))
    except MailError as exc:
        log.warning("review link %s not e-mailed: %s", link.link_id, exc)
        return link
    return replace(link, emailed=True)


def decide_as_reviewer(
    services: Services,
    *,
    token: str,
    request_id: int,
    decision: str,
    reason: str | None,
    name: str,
) -> Decision:
    """A client decides through their review link, exactly like an approver in Slack (the
    same rules, cards and notices); `name` is the one they signed with. ApprovalError when
    the link no longer works or does not name this request."""
    now = services.clock()
    page = reviews.review_page(services.factory, token=token, now=now)
    if page is None or page.state != "active":
        raise ApprovalError(LINK_CLOSED)
    signed = reviews.clean_name(name)
    if len(signed) > reviews.MAX_NAME:
        raise ApprovalError(f"Keep your name under {reviews.MAX_NAME} characters.", field="name")
    result = approvals.decide(
        services.factory,
        team_id=page.team_id,
        request_id=request_id,
        user_id=page.approver_id,
        decision=decision,
        reason=reason,
        is_admin=False,
        now=now,
        reviewer=signed or page.name,
    )
    show_change(services, result.request, settled=result.settled)
    return result


def revoke_review_link(services: Services, actor: Person, *, link_id: int) -> reviews.Revoked:
    """The requester (or an admin) revokes a client's link: it stops working and no open
    request waits for it any more (see bot.reviews). The cards show the change."""
    revoked = reviews.revoke(
        services.factory,
        team_id=actor.team_id,
        link_id=link_id,
        actor_id=actor.user_id,
        is_admin=actor.is_admin,
        now=services.clock(),
    )
    for request, settled in revoked.changed:
        show_change(services, request, settled=settled)
    return revoked


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
    show_change(services, result.request, settled=result.settled)
    return result


def cancel(services: Services, actor: Person, *, request_id: int) -> Decision:
    """The requester (or an admin) withdraws an open request; the image goes back to draft."""
    _check_in_sight(services, actor, request_id=request_id)
    result = cancellation.cancel(
        services.factory,
        team_id=actor.team_id,
        request_id=request_id,
        user_id=actor.user_id,
        is_admin=actor.is_admin,
        now=services.clock(),
    )
    show_change(services, result.request, settled=result.settled)
    return result
