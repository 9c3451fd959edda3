"""Images: search (the Slack query language plus structured filters, keyset pages), one
image, its details, archiving, its ready-made sizes and its history. An image the token's
person may not see answers exactly like one that does not exist."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from datetime import UTC, date, datetime
from typing import Any

from flask import request

from bot import finder
from bot.approval_queue import history as image_history
from bot.details import DetailsError, DetailsInput, can_edit
from bot.editing import archive, save
from bot.finder import visible_image
from bot.reviews import outside_line
from handlers.web.api import schemas
from handlers.web.api.guard import api_blueprint, person
from handlers.web.api.problems import fail
from handlers.web.api.views import image_view, result_view
from handlers.web.context import services
from handlers.web.pages import RENDITIONS
from storage.db import session_scope
from storage.media import CloudinaryStore, LocalStore
from storage.models import Category, Image
from storage.query import Query, parse
from storage.search import COUNT_CAP, Cursor

bp = api_blueprint("images", "Search the library, read and change one image.")

LINK_SECONDS = 15 * 60  # rendition links: long enough to download, too short to share


@bp.get("/images")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.arguments(schemas.SearchArgs, location="query")
@bp.response(200, schemas.ImagePageSchema)
def search(args: dict[str, Any]) -> dict[str, Any]:
    """Search what your token may see: `q` in the Slack query language; the other filters
    narrow it further. Newest shoot date first; page with `cursor`."""
    cursor = None
    if args.get("cursor"):
        cursor = _decode_cursor(args["cursor"])
    query = _with_filters(parse(args["q"]), args)
    page = finder.search(services(), person(), query, cursor=cursor, per_page=args["limit"])
    return {
        "items": [result_view(r) for r in page.results],
        "total": min(page.total, COUNT_CAP),
        "total_is_capped": page.total > COUNT_CAP,
        "next_cursor": _encode_cursor(page.older),
        "prev_cursor": _encode_cursor(page.newer),
        "query": query.describe(),
        "problems": list(query.problems),
        "suggestions": page.suggestions,
    }


def _with_filters(query: Query, args: dict[str, Any]) -> Query:
    date_from: date | None = args.get("from_")
    date_to: date | None = args.get("to")
    if query.date_from and date_from:
        date_from = max(query.date_from, date_from)
    if query.date_to and date_to:
        date_to = min(query.date_to, date_to)
    return dataclasses.replace(
        query,
        tags=(*query.tags, *(t.strip() for t in args["tag"] if t.strip())),
        categories=(*query.categories, *(c.strip() for c in args["category"] if c.strip())),
        statuses=tuple(dict.fromkeys((*query.statuses, *args["status"]))),
        date_from=date_from or query.date_from,
        date_to=date_to or query.date_to,
    )


def _encode_cursor(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(cursor.encode().encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    cursor = Cursor.decode(raw)
    if cursor is None:
        fail(422, errors={"cursor": "Use a cursor from the previous page, unchanged."})
    return cursor


def visible(image_id: int) -> Image:
    """The image if the token's person may see it; else the 404 of a missing one."""
    if image_id > schemas.MAX_ID:
        fail(404)
    image = visible_image(services().factory, image_id=image_id, viewer=person().viewer)
    if image is None or image.storage_key is None:
        fail(404)
    return image


def _shown(image: Image) -> dict[str, Any]:
    with session_scope(services().factory) as session:
        category = session.get(Category, image.category_id) if image.category_id else None
        name = category.name if category else None
    return image_view(image, category=name, me=person())


def _editable(image_id: int) -> Image:
    image = visible(image_id)
    me = person()
    if not can_edit(image, user_id=me.user_id, is_admin=me.is_admin):
        fail(403, "Only the person who posted this image, or an admin, can change it.")
    return image


@bp.get("/images/<int:image_id>")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.response(200, schemas.ImageSchema)
@bp.alt_response(404, response="NOT_FOUND")
def image(image_id: int) -> dict[str, Any]:
    """One image and its details."""
    return _shown(visible(image_id))


@bp.patch("/images/<int:image_id>")
@bp.arguments(schemas.DetailsArgs)
@bp.response(200, schemas.ImageSchema)
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
def edit(args: dict[str, Any], image_id: int) -> dict[str, Any]:
    """Change an image's details (its poster or an admin): only the fields sent change.
    The rules are the details form's; a field that breaks one is named in `errors`."""
    current = _editable(image_id)
    shoot = args.get("shoot_date", current.shoot_date.date() if current.shoot_date else None)
    details = DetailsInput(
        titles={current.id: args.get("title", current.title)},
        tags=args.get("tags", list(current.tags)),
        category_id=args.get("category_id", current.category_id),
        shoot_date=shoot,
        description=args.get("description", current.description),
    )
    try:
        save(services(), person(), details)
    except DetailsError as exc:
        fail(422, errors={k.split(":")[0]: v for k, v in exc.fields.items()})
    return _shown(visible(image_id))


@bp.post("/images/<int:image_id>/archive")
@bp.response(200, schemas.ImageSchema)
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
def archive_image(image_id: int) -> dict[str, Any]:
    """Archive an image (its poster or an admin): search finds it only with
    `status:archived`, and its open approval request is cancelled. Archiving twice is
    harmless."""
    _editable(image_id)
    try:
        archive(services(), person(), image_id=image_id)
    except DetailsError as exc:
        fail(403, "; ".join(exc.fields.values()))
    return _shown(visible(image_id))


@bp.get("/images/<int:image_id>/renditions")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.response(200, schemas.RenditionsSchema)
@bp.alt_response(404, response="NOT_FOUND")
def renditions(image_id: int) -> dict[str, Any]:
    """The original and the ready-made sizes as signed links that expire soon: ask again
    for fresh ones rather than keeping them."""
    key = visible(image_id).storage_key or ""
    sizes = [("original", 0, 0, False), *((n, w, h, c) for n, (w, h, c) in RENDITIONS.items())]
    items = [
        {
            "name": name,
            "width": width or None,
            "height": height or None,
            "crop": crop,
            "url": _link(key, width=width, height=height, crop=crop),
        }
        for name, width, height, crop in sizes
    ]
    expires = int(time.time()) + LINK_SECONDS
    return {"expires_at": datetime.fromtimestamp(expires, tz=UTC), "items": items}


def _link(key: str, *, width: int, height: int, crop: bool) -> str:
    store = services().media
    if isinstance(store, CloudinaryStore):  # signed, as the web page's downloads
        if not width:
            return store.signed_original(key)
        return store.rendition_url(key, width=width, height=height, crop=crop)
    if isinstance(store, LocalStore):
        base = request.host_url.rstrip("/")
        url = store.signed_url(
            key, width=width, height=height, crop=crop, ttl_seconds=LINK_SECONDS, base_url=base
        )
        return url or ""
    fail(404)


@bp.get("/images/<int:image_id>/history")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.response(200, schemas.HistorySchema)
@bp.alt_response(404, response="NOT_FOUND")
def history(image_id: int) -> dict[str, Any]:
    """What happened to the image, oldest first (the last 40 events)."""
    image = visible(image_id)
    events = image_history(services().factory, team_id=person().team_id, image_id=image.id)
    return {
        "items": [
            {
                "id": e.id,
                "actor_id": e.actor_id,
                "action": e.action,
                "detail": e.detail,
                "created_at": e.created_at,
                "summary": outside_line(e.action, e.actor_id, e.detail or {}),
            }
            for e in events
        ]
    }
