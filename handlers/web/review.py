"""The review page a client (an approver outside the workspace) opens from their link: the
images of the requests that name the link, large, and Approve / Reject. Nothing else of the
library: no navigation, no other image, no people list. A decision here goes through the
same use case as a click on a Slack card, so every card, the thread and the web show it.

Image bytes are served only for the requests the link names, through a route scoped to the
link (the token is checked on every request), while the link works."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from bot.approvals import ApprovalError
from bot.decisions import decide_as_reviewer
from bot.pixels import InvalidImage
from bot.reviews import ReviewPage, media_key, review_page
from handlers.web.context import services
from handlers.web.outside import LINK_TOKEN, outside_page
from handlers.web.pages import MAX_ID, RENDITIONS
from handlers.web.security import media_headers
from storage.media import CloudinaryStore, LocalStore, MediaError

bp = Blueprint("review", __name__)

SIZE = "large"


def _page_for(token: str) -> ReviewPage:
    if not LINK_TOKEN.fullmatch(token):
        abort(404)
    library = services()
    page = review_page(library.factory, token=token, now=library.clock())
    if page is None:
        abort(404)
    return page


@bp.get("/review/<token>")
@outside_page
def review(token: str) -> Any:
    return _render(token, _page_for(token))


def _render(token: str, page: ReviewPage, problem: tuple[int, str] | None = None) -> Any:
    people = services().people
    askers = {
        item.request.requested_by: people.facts(page.team_id, item.request.requested_by).name
        or "A colleague"
        for item in page.items
    }
    done = request.args.get("done", "")
    return render_template(
        "review.html",
        token=token,
        page=page,
        askers=askers,
        done=int(done) if done.isdigit() and int(done) <= MAX_ID else None,
        problem=problem,
    ), (400 if problem else 200)


@bp.post("/review/<token>/<int:request_id>")
@outside_page
def decide(token: str, request_id: int) -> Any:
    _page_for(token)  # an unknown link is a plain 404, as on GET
    if request_id > MAX_ID:
        abort(404)
    decision = request.form.get("decision", "")
    if decision not in ("approved", "rejected"):
        abort(400)
    try:
        decide_as_reviewer(
            services(),
            token=token,
            request_id=request_id,
            decision=decision,
            reason=request.form.get("reason", "")[:2000].strip() or None,
            name=request.form.get("name", "")[:500],
        )
    except ApprovalError as exc:
        # Shown again as it is now (a link revoked meanwhile shows no buttons any more).
        return _render(token, _page_for(token), (request_id, str(exc)))
    return redirect(
        url_for("review.review", token=token, done=request_id, _anchor=f"request-{request_id}")
    )


@bp.get("/review/<token>/<int:request_id>/image")
@outside_page
def image(token: str, request_id: int) -> Response:
    """The image of a request the link names, at the large size; 404 for anything else."""
    if not LINK_TOKEN.fullmatch(token) or request_id > MAX_ID:
        abort(404)
    library = services()
    key = media_key(library.factory, token=token, request_id=request_id, now=library.clock())
    if key is None:
        abort(404)
    width, height, crop = RENDITIONS[SIZE]
    store = library.media
    if isinstance(store, CloudinaryStore):  # made and delivered by Cloudinary, signed
        return redirect(store.rendition_url(key, width=width, height=height, crop=crop))
    if not isinstance(store, LocalStore):
        abort(404)
    try:
        path = store.thumbnail_path(key, width=width, height=height, crop=crop)
    except (FileNotFoundError, InvalidImage, MediaError):
        abort(404)
    return media_headers(send_file(path, mimetype="image/jpeg", conditional=True))
