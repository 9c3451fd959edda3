"""The library in a browser: the wall of thumbnails with the Slack query language, one
image with its history and sizes, editing, archiving and asking for approval. Every view
looks the image up through the visibility rule first: an image someone may not see is a
404, exactly like one that does not exist."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from bot import finder
from bot.admin import list_categories
from bot.approval_queue import history
from bot.approvals import ApprovalError, open_request_for, request_view
from bot.decisions import ask_for_approval, may_ask
from bot.details import DetailsError, DetailsInput, can_edit, clean_tags, suggest_tags
from bot.details_form import details_form
from bot.duplicates import hamming, look_alikes
from bot.editing import archive, save, settle_duplicate
from bot.finder import visible_image
from bot.people import Person
from bot.pixels import InvalidImage
from bot.reviews import Reviewer, outside_line, parse_reviewers, review_url
from bot.uploads import WORKSPACE
from handlers.web.context import person, services, signed_in
from handlers.web.security import media_headers
from storage.db import session_scope
from storage.media import CONTENT_TYPES, CloudinaryStore, LocalStore, MediaError
from storage.models import Category, Image
from storage.query import STATUSES, parse
from storage.search import COUNT_CAP, Cursor

bp = Blueprint("pages", __name__)

PER_PAGE = 48
MAX_ID = 2**63 - 1
# name: (width, height, crop) - the ready-made sizes of every image
RENDITIONS = {
    "grid": (480, 360, True),
    "large": (1600, 1200, False),
    "web": (1600, 1600, False),
    "square": (1080, 1080, True),
    "thumb": (360, 240, True),
}
DOWNLOADS = (("web", "Web, 1600 px"), ("square", "Square, 1080 px"), ("thumb", "Thumbnail"))


@bp.get("/")
@signed_in
def library() -> str:
    me = person()
    text = request.args.get("q", "")[:1000]
    query = parse(text)
    cursor = Cursor.decode(request.args.get("after", ""))
    page = finder.search(services(), me, query, cursor=cursor, per_page=PER_PAGE)
    total = f"{COUNT_CAP}+" if page.total > COUNT_CAP else str(page.total)
    more = url_for("pages.library", q=text or None, after=page.older.encode()) if page.older else ""
    if request.args.get("fragment"):  # the next tiles, for Load more: no chips, no counts
        return render_template("grid_items.html", page=page, more=more)
    return render_template(
        "library.html",
        q=text,
        query=query,
        page=page,
        total=total,
        more=more,
        chips=_chips(me, text, page.results),
    )


def _chips(me: Person, text: str, results: list[finder.Result]) -> dict[str, list[dict[str, Any]]]:
    """Filters one click away: each adds (or removes) a term of the query language."""

    def chip(term: str, label: str) -> dict[str, Any]:
        active = term in text.split()
        changed = " ".join(t for t in text.split() if t != term) if active else f"{text} {term}"
        href = url_for("pages.library", q=changed.strip())
        return {"label": label, "active": active, "href": href}

    categories = finder.categories_in_view(services().factory, viewer=me.viewer)
    tags = Counter(t for r in results for t in r.tags).most_common(8)
    today = date.today()
    return {
        "Category": [chip(f"category:{_term(name)}", name) for name in categories],
        "Tags": [chip(f"tag:{_term(t)}", t) for t, _ in tags],
        "Status": [chip(f"status:{s}", s.capitalize()) for s in STATUSES],
        "Shot": [
            chip(f"after:{today.year}-01-01", "This year"),
            chip(f"before:{today.year}-01-01", "Before this year"),
        ],
    }


def _term(value: str) -> str:
    return f'"{value}"' if " " in value else value


def _visible(image_id: int) -> Image:
    if image_id > MAX_ID:  # what no database column holds is an image that does not exist
        abort(404)
    image = visible_image(services().factory, image_id=image_id, viewer=person().viewer)
    if image is None or image.storage_key is None:
        abort(404)
    return image


@bp.get("/tags")
@signed_in
def tags() -> dict[str, list[str]]:
    """Tag suggestions for the details forms: only tags on images this person may see."""
    with session_scope(services().factory) as session:
        found = suggest_tags(session, viewer=person().viewer, typed=request.args.get("q", "")[:50])
    return {"tags": found[:10]}


@bp.get("/images/<int:image_id>")
@signed_in
def image_page(image_id: int) -> str:
    me, library = person(), services()
    image = _visible(image_id)
    with session_scope(library.factory) as session:
        category = session.get(Category, image.category_id) if image.category_id else None
        open_request = open_request_for(session, team_id=me.team_id, image_id=image.id)
        request_shown = request_view(session, open_request) if open_request else None
    events = history(library.factory, team_id=me.team_id, image_id=image.id)
    approvers = request_shown.workspace_approvers if request_shown is not None else []
    names = _names(me, {image.uploader_id, *approvers, *(e.actor_id for e in events)})
    if request_shown is not None:
        names |= {a: f"{n} (client)" for a, n in request_shown.outside.items()}
    return render_template(
        "image.html",
        image=image,
        category=category.name if category else None,
        conversation=_conversation_label(me, image),
        events=events,
        outside_lines={
            e.id: line
            for e in events
            if (line := outside_line(e.action, e.actor_id, e.detail or {})) is not None
        },
        names=names,
        open_request=request_shown,
        similar=_similar(me, image),
        downloads=DOWNLOADS,
        may_edit=can_edit(image, user_id=me.user_id, is_admin=me.is_admin),
        may_ask=may_ask(me, image) and request_shown is None,
        may_revoke=request_shown is not None
        and (me.is_admin or request_shown.requested_by == me.user_id),
        duplicate_of=_duplicate_shown(me, image),
    )


def _duplicate_shown(me: Person, image: Image) -> Image | None:
    """The image this one duplicates, when `me` may see it and settle the question."""
    if image.duplicate_of_id is None or not can_edit(
        image, user_id=me.user_id, is_admin=me.is_admin
    ):
        return None
    return visible_image(services().factory, image_id=image.duplicate_of_id, viewer=me.viewer)


def _names(me: Person, user_ids: set[str]) -> dict[str, str]:
    """Workspace people by name (clients' `review:` ids are named by their requests)."""
    people = services().people
    return {
        u: people.facts(me.team_id, u).name or u for u in user_ids if not u.startswith("review:")
    }


def _conversation_label(me: Person, image: Image) -> str:
    if image.channel_id == WORKSPACE:
        return "Uploaded on the web, for the whole workspace"
    name = services().people.conversation_name(me.team_id, image.channel_id)
    return f"#{name}" if name else "a conversation"


def _similar(me: Person, image: Image, limit: int = 8) -> list[Image]:
    """Images that look alike (perceptual hash sharing a 16-bit band, closest first), among
    those `me` may see."""
    if image.phash is None:
        return []
    with session_scope(services().factory) as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        candidates = session.scalars(
            look_alikes(me.team_id, image.phash, exclude=image.id, viewer=me.viewer, sqlite=sqlite)
        ).all()
        ranked = sorted(candidates, key=lambda c: hamming(c.phash or 0, image.phash or 0))
        return [c for c in ranked if hamming(c.phash or 0, image.phash or 0) <= 12][:limit]


@bp.get("/images/<int:image_id>/<any(original, grid, large, web, square, thumb):size>")
@signed_in
def rendition(image_id: int, size: str) -> Response:
    """The original or a ready-made size, after the same visibility check as the page."""
    image = _visible(image_id)
    store = services().media
    key = image.storage_key or ""
    download = request.args.get("download") == "1"
    if isinstance(store, CloudinaryStore):  # made and delivered by Cloudinary, signed
        if size == "original":
            return redirect(store.download_url(key) if download else store.signed_original(key))
        width, height, crop = RENDITIONS[size]
        return redirect(
            store.rendition_url(key, width=width, height=height, crop=crop, download=download)
        )
    if not isinstance(store, LocalStore):
        abort(404)
    try:
        if size == "original":
            path = store.path_for(key)
            suffix = path.suffix[1:]  # of the format the bytes were checked to be
            name = f"{_file_stem(image)}.{suffix}"
        else:
            width, height, crop = RENDITIONS[size]
            path = store.thumbnail_path(key, width=width, height=height, crop=crop)
            suffix, name = "jpg", f"{_file_stem(image)}-{size}.jpg"
    except (FileNotFoundError, InvalidImage, MediaError):
        abort(404)
    # The type comes from what the bytes are, never from a name someone typed: an image
    # that is also valid HTML or script must not run on this site.
    response = send_file(
        path,
        mimetype=CONTENT_TYPES[suffix],
        as_attachment=download,
        download_name=name,
        conditional=True,
    )
    response.headers["Cache-Control"] = "private, max-age=86400"
    return media_headers(response)


def _file_stem(image: Image) -> str:
    stem = re.sub(r"[^\w.-]+", "-", image.title or image.file_name or "image").strip("-.")
    return stem[:80] or "image"


@bp.route("/images/<int:image_id>/edit", methods=["GET", "POST"])
@signed_in
def edit(image_id: int) -> Any:
    me, library = person(), services()
    image = _visible(image_id)
    if not can_edit(image, user_id=me.user_id, is_admin=me.is_admin):
        abort(403)
    form = details_form(library.factory, library.media, team_id=me.team_id, image_ids=[image.id])
    if form is None:
        abort(404)
    errors: dict[str, str] = {}
    values = {
        "title": image.title,
        "tags": ", ".join(form.prefill.tags),
        "category": str(form.prefill.category[0]) if form.prefill.category else "",
        "shoot_date": form.prefill.shoot_date.isoformat() if form.prefill.shoot_date else "",
        "description": form.prefill.description,
    }
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in values}
        try:
            details = details_from_form(request.form, {image.id: values["title"]})
            save(library, me, details)
        except DetailsError as exc:
            errors = exc.fields
        else:
            return redirect(url_for("pages.image_page", image_id=image.id, saved=1))
    return render_template(
        "edit.html",
        image=image,
        values=values,
        errors=errors,
        categories=list_categories(library.factory, team_id=me.team_id),
    ), (400 if errors else 200)


def pickable_people(me: Person, conversations: set[str]) -> list[tuple[str, str]]:
    """Whom `me` may name as an approver, by name: everyone in the workspace, but for a
    guest (who is not shown the directory in Slack either) only the people in the images'
    conversations."""
    people = services().people
    everyone = [(u, f.name or u) for u, f in people.everyone(me.team_id) if u != me.user_id]
    if not me.is_guest:
        return everyone
    shared: set[str] | None = None
    for conversation in conversations:
        members = set(people.members(me.team_id, conversation) or ())
        shared = members if shared is None else shared & members
    return [(u, name) for u, name in everyone if u in (shared or set())]


def details_from_form(form: Any, titles: dict[int, str]) -> DetailsInput:
    """The details form's fields as the library takes them (the Slack modal's rules)."""
    problems: dict[str, str] = {}
    shoot: date | None = None
    raw_date = form.get("shoot_date", "").strip()
    if raw_date:
        try:
            shoot = date.fromisoformat(raw_date)
        except ValueError:
            problems["shoot_date"] = "Give the date as YYYY-MM-DD."
    category = form.get("category", "").strip()
    if category and not category.isdigit():
        problems["category"] = "Choose a category from the list."
    reviewers: list[Reviewer] = []
    try:
        reviewers = parse_reviewers(form.get("outside", "")[:5000])
    except ApprovalError as exc:
        problems["reviewers"] = str(exc)
    if problems:
        raise DetailsError(problems)
    return DetailsInput(
        titles=titles,
        tags=clean_tags(t for t in form.get("tags", "").split(",")),
        category_id=int(category) if category else None,
        shoot_date=shoot,
        description=form.get("description", ""),
        approvers=tuple(form.getlist("approvers")),
        reviewers=reviewers,
    )


@bp.post("/images/<int:image_id>/archive")
@signed_in
def archive_image(image_id: int) -> Response:
    image = _visible(image_id)
    try:
        archive(services(), person(), image_id=image.id)
    except DetailsError:
        abort(403)
    return redirect(url_for("pages.image_page", image_id=image.id))


@bp.route("/images/<int:image_id>/approval", methods=["GET", "POST"])
@signed_in
def request_approval(image_id: int) -> Any:
    me, library = person(), services()
    image = _visible(image_id)
    errors: dict[str, str] = {}
    chosen: list[str] = []
    if request.method == "POST":
        chosen = request.form.getlist("approvers")
        try:
            asked = ask_for_approval(
                library,
                me,
                image_id=image.id,
                approvers=chosen,
                note=request.form.get("note", ""),
                reviewers=parse_reviewers(request.form.get("outside", "")[:5000]),
            )
        except ApprovalError as exc:
            errors[exc.field if exc.field == "reviewers" else "approvers"] = str(exc)
        else:
            if any(not link.emailed for link in asked.links):
                # The only time these tokens exist in the clear: shown once, never stored.
                base = library.settings.public_base_url or request.host_url
                return render_template(
                    "review_links_made.html",
                    what=f"\u201c{image.title or image.file_name}\u201d",
                    back=url_for("pages.image_page", image_id=image.id, asked=1),
                    links=[(link, review_url(base, link.token)) for link in asked.links],
                )
            shown = {"asked": 1, "emailed": len(asked.links) or None}
            return redirect(url_for("pages.image_page", image_id=image.id, **shown))
    people = pickable_people(me, {image.channel_id})
    return render_template(
        "approval_form.html", image=image, people=people, chosen=chosen, errors=errors
    ), (400 if errors else 200)


@bp.post("/images/<int:image_id>/duplicate")
@signed_in
def settle(image_id: int) -> Response:
    """The poster's answer about a near-duplicate: keep both, or discard this one."""
    me = person()
    image = _visible(image_id)
    if image.duplicate_of_id is None or not can_edit(
        image, user_id=me.user_id, is_admin=me.is_admin
    ):
        abort(404)
    keep = request.form.get("keep") == "1"
    settle_duplicate(services(), me, image_id=image.id, keep=keep)
    if keep:
        return redirect(url_for("pages.image_page", image_id=image.id))
    return redirect(url_for("pages.image_page", image_id=image.duplicate_of_id))
