"""Uploading on the web: many files at once (one request each, so each has its own progress
bar and its own answer), through the library's ingest, then one details form for the batch
with the rules of the Slack modal."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage

from bot.admin import list_categories
from bot.details import DetailsError
from bot.details_form import details_form
from bot.editing import edit_refusal, save
from bot.finder import visible_image
from bot.reviews import review_url
from bot.uploads import UploadRefused, audience_for, receive, uploads_dir
from handlers.web.context import person, services, signed_in
from handlers.web.pages import MAX_ID, details_from_form, pickable_people

bp = Blueprint("upload", __name__)

MAX_BATCH = 100


@bp.get("/upload")
@signed_in
def upload_page() -> str:
    return render_template("upload.html", audiences=_audiences())


def _audiences() -> list[tuple[str, str]]:
    me, library = person(), services()
    choices = [] if me.is_guest else [("workspace", "Everyone in the workspace (not guests)")]
    named = library.people.conversations_named(me.team_id, me.user_id)
    for conversation, name in sorted(named.items(), key=lambda item: item[1]):
        choices.append((conversation, f"Only #{name}"))
    return choices


@bp.post("/upload")
@signed_in
def upload_files() -> Any:
    """One file from the page's script (JSON answer), or several from the plain form."""
    files = request.files.getlist("files")[:MAX_BATCH]
    wants_json = request.accept_mimetypes.best == "application/json"
    if not files or not any(f.filename for f in files):
        if wants_json:
            return {"error": "Choose at least one image to upload."}, 400
        return render_template(
            "upload.html", audiences=_audiences(), problem="Choose at least one image."
        ), 400
    try:
        audience = audience_for(services(), person(), request.form.get("audience", ""))
    except UploadRefused as exc:
        if wants_json:
            return {"error": str(exc)}, 400
        return render_template("upload.html", audiences=_audiences(), problem=str(exc)), 400
    results = [_take(file, audience) for file in files]
    if wants_json:
        return results[0]
    stored = [str(r["image_id"]) for r in results if r["state"] != "failed"]
    return render_template("upload_done.html", results=results, ids=",".join(stored))


def spool(file: FileStorage) -> tuple[Path, str]:
    """Keep a posted file in the uploads folder (werkzeug spooled it under the size cap) for
    the ingest; the file's own name, made one the database can keep (no folders, no control
    characters, valid UTF-8). Every door that takes files (the page, the API, upload links)
    comes through here."""
    folder = uploads_dir(services())
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as out:
        file.save(out)
    printable = "".join(c for c in Path(file.filename or "").name if c >= " " and c != "\x7f")
    return Path(out.name), printable.encode("utf-8", "replace").decode("utf-8") or "upload"


def _take(file: FileStorage, audience: Any) -> dict[str, Any]:
    """Keep one file, then ingest it."""
    library = services()
    path, name = spool(file)
    try:
        result = receive(
            library,
            person(),
            path=path,
            name=name,
            content_type=file.mimetype or "",
            audience=audience,
        )
    except UploadRefused as exc:
        path.unlink(missing_ok=True)
        return {"name": name, "image_id": None, "state": "failed", "reason": str(exc)}
    answer: dict[str, Any] = {
        "name": name,
        "image_id": result.image_id,
        "state": result.state,
        "title": result.title,
        "reason": result.reason,
        "url": url_for("pages.image_page", image_id=result.image_id)
        if result.state == "stored"
        else None,
    }
    if result.state == "stored":
        answer["thumb"] = url_for("pages.rendition", image_id=result.image_id, size="thumb")
    if result.duplicate_of is not None:
        answer["duplicate_of"] = {
            "id": result.duplicate_of,
            "url": url_for("pages.image_page", image_id=result.duplicate_of),
        }
    return answer


@bp.route("/upload/details", methods=["GET", "POST"])
@signed_in
def batch_details() -> Any:
    """One form for the images just uploaded: a title each, the rest shared."""
    me, library = person(), services()
    try:
        image_ids = sorted({int(i) for i in request.values.get("ids", "").split(",") if i})
    except ValueError:
        abort(404)
    if not image_ids or len(image_ids) > MAX_BATCH or max(image_ids) > MAX_ID:
        abort(404)
    visible = [visible_image(library.factory, image_id=i, viewer=me.viewer) for i in image_ids]
    if None in visible or edit_refusal(
        library.factory, library.people, team_id=me.team_id, user_id=me.user_id, image_ids=image_ids
    ):
        abort(404)  # an image this person may not see is one that does not exist
    form = details_form(library.factory, library.media, team_id=me.team_id, image_ids=image_ids)
    if form is None:
        abort(404)
    errors: dict[str, str] = {}
    titles = {i.image_id: i.title for i in form.images}
    values = {
        "tags": ", ".join(form.prefill.tags),
        "category": str(form.prefill.category[0]) if form.prefill.category else "",
        "shoot_date": form.prefill.shoot_date.isoformat() if form.prefill.shoot_date else "",
        "description": form.prefill.description,
    }
    chosen: list[str] = list(form.prefill.approvers)
    if request.method == "POST":
        titles = {i: request.form.get(f"title-{i}", "") for i in titles}
        values = {k: request.form.get(k, "") for k in values}
        chosen = request.form.getlist("approvers")
        try:
            saved = save(library, me, details_from_form(request.form, titles))
        except DetailsError as exc:
            errors = exc.fields
        else:
            first = image_ids[0]
            back = (
                url_for("pages.library", saved=len(image_ids))
                if len(image_ids) > 1
                else url_for("pages.image_page", image_id=first, saved=1)
            )
            if any(not link.emailed for link in saved.review_links):
                # One link per client covers every image asked: shown once, never stored.
                base = library.settings.public_base_url or request.host_url
                count = len(saved.approval_request_ids)
                return render_template(
                    "review_links_made.html",
                    what=f"{count} image{'s' if count != 1 else ''}",
                    back=back,
                    links=[(link, review_url(base, link.token)) for link in saved.review_links],
                )
            return redirect(back)
    people = pickable_people(me, {i.channel_id for i in visible if i is not None})
    return render_template(
        "batch_details.html",
        ids=",".join(map(str, image_ids)),
        titles=titles,
        values=values,
        errors=errors,
        chosen=chosen,
        people=people,
        categories=list_categories(library.factory, team_id=me.team_id),
    ), (400 if errors else 200)
