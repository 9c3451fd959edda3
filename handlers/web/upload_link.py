"""Agency upload links on the web: the admin's create and revoke (a section of /admin), and
the page the link opens for someone outside the workspace (`/u/<token>`), which shows the
link's label, its category and what it still takes, and nothing of the library.

The page's files are posted one per request to `/u/<token>/files` (the uploader of
static/app.js). That POST is exempt from CSRF: the token in its address is the only thing
that grants anything (no cookie does), and the outside pages send no Referer, which
Flask-WTF's CSRF check insists on over https.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from bot.upload_links import (
    LinkClosed,
    LinkError,
    LinkView,
    create_link,
    find_link,
    receive_through,
    revoke_link,
)
from bot.uploads import UploadRefused
from handlers.web import admin
from handlers.web.context import admins_only, person, services
from handlers.web.outside import LINK_TOKEN, outside_page
from handlers.web.upload import spool

bp = Blueprint("upload_link", __name__)

MAX_BATCH = 100  # files in one post of the plain form (the page's script sends one each)
CHOOSE = "Choose at least one image to upload."


# -- The admin's side ---------------------------------------------------------------------------


@bp.post("/admin/upload-links")
@admins_only
def create() -> Any:
    me, library = person(), services()
    try:
        days = int(request.form.get("days") or 7)
        most = request.form.get("max_files", "").strip()
        max_files = int(most) if most else None
        category = request.form.get("category", "")
        made = create_link(
            library,
            me,
            label=request.form.get("label", ""),
            category_id=int(category) if category.isdigit() else None,
            conversation=request.form.get("conversation", "workspace"),
            days=days,
            max_files=max_files,
            notify=request.form.get("notify", ""),
        )
    except ValueError:
        return admin.admin_page("Days and the most files are whole numbers.", 400)
    except LinkError as exc:
        return admin.admin_page(str(exc), 400)
    # Shown once, in this answer only: it is not in any address we redirect to.
    base = library.settings.public_base_url or request.host_url.rstrip("/")
    return admin.admin_page(created=base + url_for("upload_link.page", token=made.token))


@bp.post("/admin/upload-links/<int:link_id>/revoke")
@admins_only
def revoke(link_id: int) -> Any:
    me, library = person(), services()
    if not revoke_link(library.factory, me, link_id=link_id, now=library.clock()):
        abort(404)
    return redirect(
        url_for("admin.admin_page", done="Upload link revoked: it takes no more files.")
    )


# -- The agency's side ----------------------------------------------------------------------


def _open(token: str) -> LinkView:
    link = find_link(services().factory, token) if LINK_TOKEN.fullmatch(token) else None
    if link is None:
        abort(404)
    return link


@bp.get("/u/<token>")
@outside_page
def page(token: str) -> Any:
    link = _open(token)
    state = link.state(services().clock())
    return render_template(
        "upload_link.html",
        link=link,
        closed=LinkClosed(state) if state != "live" else None,
        left=files_left(link),
        action=url_for("upload_link.take_file", token=token),
    )


@bp.post("/u/<token>/files")
@outside_page
def take_file(token: str) -> Any:
    """One file from the page's script, answered in JSON (its name and outcome, nothing
    else of the library), or several from the plain form, answered with the page."""
    link, library = _open(token), services()
    wants_json = request.accept_mimetypes.best == "application/json"
    state = link.state(library.clock())
    if state != "live":  # said before the file is read; the slot's UPDATE decides in the end
        return _answer(link, token, wants_json, [], error=str(LinkClosed(state)), status=410)
    try:
        files = [f for f in request.files.getlist("files")[:MAX_BATCH] if f.filename]
    except RequestEntityTooLarge:
        limit = library.settings.max_image_bytes // (1024 * 1024)
        too_big = f"the file is over {limit} MB, the limit for the library"
        return _answer(link, token, wants_json, [], error=too_big, status=413)
    if not files:
        return _answer(link, token, wants_json, [], error=CHOOSE, status=400)
    results = []
    for file in files:
        try:
            results.append(_take(link, file))
        except LinkClosed as exc:
            if wants_json:
                return _answer(link, token, wants_json, [], error=str(exc), status=410)
            results.append({"name": file.filename, "state": "failed", "reason": str(exc)})
    return _answer(link, token, wants_json, results)


def _take(link: LinkView, file: FileStorage) -> dict[str, Any]:
    library = services()
    path, name = spool(file)
    try:
        result = receive_through(
            library, link, path=path, name=name, content_type=file.mimetype or ""
        )
    except LinkClosed:
        path.unlink(missing_ok=True)
        raise
    except UploadRefused as exc:
        path.unlink(missing_ok=True)
        return {"name": name, "state": "failed", "reason": str(exc)}
    return {"name": name, "state": result.state, "reason": result.reason}


def _answer(
    link: LinkView,
    token: str,
    wants_json: bool,
    results: list[dict[str, Any]],
    *,
    error: str = "",
    status: int = 200,
) -> Any:
    fresh = find_link(services().factory, token) or link
    left = files_left(fresh)
    if wants_json:
        answer = dict(results[0]) if results else {"error": error}
        return {**answer, "left": left}, status
    state = fresh.state(services().clock())
    return render_template(
        "upload_link.html",
        link=fresh,
        closed=LinkClosed(state) if state != "live" else None,
        left=left,
        action=url_for("upload_link.take_file", token=token),
        problem=error,
        results=results,
    ), status


def files_left(link: LinkView) -> str:
    """ "You can send 8 more files until 7 December 2026, 14:00 UTC." (or no count)."""
    until = link.expires_at.strftime("%-d %B %Y, %H:%M UTC")
    remaining = link.remaining
    if remaining is None:
        return f"You can send images until {until}."
    noun = "file" if remaining == 1 else "files"
    return f"You can send {remaining} more {noun} until {until}."
