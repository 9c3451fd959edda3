"""Approval requests: the ones you are asked to decide or asked for, sending an image for
approval, deciding and cancelling. The library's use cases do the work and tell Slack, so
an approver's DM card says what was decided here."""

from __future__ import annotations

from typing import Any, NoReturn

from flask import request

from bot import decisions
from bot.approval_list import requests_of
from bot.approvals import NOT_AN_APPROVER, OWN_REQUEST, ApprovalError
from bot.decisions import GONE, NO_SUCH_REQUEST, NOT_THE_POSTER
from bot.reviews import Reviewer, review_url
from handlers.web.api import schemas
from handlers.web.api.guard import api_blueprint, person
from handlers.web.api.images import visible
from handlers.web.api.problems import fail
from handlers.web.api.views import request_view
from handlers.web.context import services

bp = api_blueprint("approval_requests", "Send images for approval and decide.")

NOT_FOUND = (GONE, NO_SUCH_REQUEST)
FORBIDDEN = (NOT_THE_POSTER, NOT_AN_APPROVER, OWN_REQUEST)


@bp.get("/approvals")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.arguments(schemas.ApprovalListArgs, location="query")
@bp.response(200, schemas.ApprovalsSchema)
def approvals(args: dict[str, Any]) -> dict[str, Any]:
    """Requests you were asked to decide (`role=approver`) or asked for
    (`role=requester`), newest first."""
    me = person()
    found = requests_of(
        services().factory,
        team_id=me.team_id,
        user_id=me.user_id,
        role=args["role"],
        state=args.get("state"),
        limit=args["limit"],
    )
    return {"items": [request_view(r) for r in found]}


@bp.post("/images/<int:image_id>/approvals")
@bp.arguments(schemas.ApprovalArgs)
@bp.response(201, schemas.AskedSchema)
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
def ask(args: dict[str, Any], image_id: int) -> dict[str, Any]:
    """Send an image for approval (its poster or an admin). Each approver gets a DM card;
    each client (`reviewers`) a review link, e-mailed when the server sends mail and
    otherwise returned here, once, for you to forward."""
    visible(image_id)
    library = services()
    try:
        asked = decisions.ask_for_approval(
            library,
            person(),
            image_id=image_id,
            approvers=list(dict.fromkeys(args["approvers"])),
            note=args["note"],
            due_at=args.get("due_at"),
            reviewers=[Reviewer(r["name"], r["email"]) for r in args["reviewers"]],
        )
    except ApprovalError as exc:
        _refused(exc)
    base = library.settings.public_base_url or request.host_url
    return request_view(asked.request) | {
        "review_links": [
            {
                "name": link.name,
                "email": link.email,
                "approver_id": link.approver_id,
                "url": None if link.emailed else review_url(base, link.token),
                "emailed": link.emailed,
                "expires_at": link.expires_at,
            }
            for link in asked.links
        ]
    }


@bp.post("/approvals/<int:request_id>/decision")
@bp.arguments(schemas.DecisionArgs)
@bp.response(200, schemas.DecisionSchema)
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
def decide(args: dict[str, Any], request_id: int) -> dict[str, Any]:
    """Approve or reject (an approver, or an admin in their place); a rejection needs a
    reason. Deciding a settled request changes nothing: `counted` is false."""
    _known(request_id)
    try:
        result = decisions.decide(
            services(),
            person(),
            request_id=request_id,
            decision="approved" if args["decision"] == "approve" else "rejected",
            reason=args["reason"],
        )
    except ApprovalError as exc:
        _refused(exc)
    return {"request": request_view(result.request), "counted": result.counted}


@bp.post("/approvals/<int:request_id>/cancel")
@bp.response(200, schemas.DecisionSchema)
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
def cancel(request_id: int) -> dict[str, Any]:
    """Withdraw an open request you asked for (or, as an admin, anyone's); the image goes
    back to draft."""
    _known(request_id)
    try:
        result = decisions.cancel(services(), person(), request_id=request_id)
    except ApprovalError as exc:
        _refused(exc)
    return {"request": request_view(result.request), "counted": result.counted}


def _known(request_id: int) -> None:
    if request_id > schemas.MAX_ID:
        fail(404)


def _refused(exc: ApprovalError) -> NoReturn:
    message = str(exc)
    if message in NOT_FOUND:
        fail(404)
    if message in FORBIDDEN or message.startswith("Only the person who asked"):
        fail(403, message)
    if exc.field:
        fail(422, errors={"due_at" if exc.field == "due" else exc.field: message})
    fail(409, message)
