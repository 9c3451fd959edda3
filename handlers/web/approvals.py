"""Approvals on the web: what waits for me, what I asked for, and deciding. A decision here
goes through the same use case as a click on a Slack card, so the cards, the thread and
App Home are updated the same way."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from bot.approval_queue import pending_for, requested_by
from bot.approvals import ApprovalError, RequestView
from bot.decisions import cancel, decide, revoke_review_link
from bot.home import visible_titles
from handlers.web.context import person, services, signed_in
from handlers.web.pages import MAX_ID

bp = Blueprint("approvals", __name__)


@bp.get("/approvals")
@signed_in
def queue() -> str:
    return _page()


def _page(problem: str = "") -> str:
    me, library = person(), services()
    waiting = pending_for(library.factory, team_id=me.team_id, user_id=me.user_id, limit=100)
    mine = requested_by(library.factory, team_id=me.team_id, user_id=me.user_id, limit=100)
    requests: list[RequestView] = [*waiting, *mine]
    people = {u for r in requests for u in (r.requested_by, *r.workspace_approvers)}
    clients = {a: f"{n} (client)" for r in requests for a, n in r.outside.items()}
    return render_template(
        "approvals.html",
        waiting=waiting,
        mine=mine,
        # Only of images this person may still see (they may have left the channel since).
        titles=visible_titles(
            library.factory, viewer=me.viewer, image_ids=[r.image_id for r in requests]
        ),
        names={u: library.people.facts(me.team_id, u).name or u for u in people} | clients,
        problem=problem,
    )


@bp.post("/approvals/<int:request_id>/decide")
@signed_in
def decide_request(request_id: int) -> Any:
    if request_id > MAX_ID:
        abort(404)
    decision = request.form.get("decision", "")
    if decision not in ("approved", "rejected"):
        abort(400)
    reason = request.form.get("reason", "").strip() or None
    try:
        decide(services(), person(), request_id=request_id, decision=decision, reason=reason)
    except ApprovalError as exc:
        return _page(str(exc)), 400
    return redirect(url_for("approvals.queue", decided=request_id))


@bp.post("/approvals/<int:request_id>/cancel")
@signed_in
def cancel_request(request_id: int) -> Any:
    if request_id > MAX_ID:
        abort(404)
    try:
        cancel(services(), person(), request_id=request_id)
    except ApprovalError as exc:
        return _page(str(exc)), 400
    return redirect(url_for("approvals.queue"))


@bp.post("/review-links/<int:link_id>/revoke")
@signed_in
def revoke_link(link_id: int) -> Any:
    """The requester (or an admin) revokes a client's review link; back to where they were."""
    if link_id > MAX_ID:
        abort(404)
    try:
        revoke_review_link(services(), person(), link_id=link_id)
    except ApprovalError as exc:
        return _page(str(exc)), 400
    back = request.form.get("back", "")
    if back.isdigit() and int(back) <= MAX_ID:
        return redirect(url_for("pages.image_page", image_id=int(back), revoked=1))
    return redirect(url_for("approvals.queue", revoked=1))
