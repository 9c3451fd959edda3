"""The words to describe and find images with: categories (for `category_id` and the
`category` filter) and tags (suggestions among the tags of images you may see)."""

from __future__ import annotations

from typing import Any

from bot.admin import list_categories
from bot.details import suggest_tags
from handlers.web.api import schemas
from handlers.web.api.guard import api_blueprint, person
from handlers.web.context import services
from storage.db import session_scope

bp = api_blueprint("catalog", "Categories and tags.")


@bp.get("/categories")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.response(200, schemas.CategoriesSchema)
def categories() -> dict[str, Any]:
    """The workspace's categories, with how many images in each you may see."""
    me = person()
    found = list_categories(services().factory, team_id=me.team_id, viewer=me.viewer)
    return {
        "items": [
            {"id": c.id, "name": c.name, "images": c.images, "policy": c.policy} for c in found
        ]
    }


@bp.get("/tags")
@bp.alt_response(304, response="NOT_MODIFIED")
@bp.arguments(schemas.TagArgs, location="query")
@bp.response(200, schemas.TagsSchema)
def tags(args: dict[str, Any]) -> dict[str, Any]:
    """Tags on images you may see, starting with (then containing, then close to)
    `prefix`; the most used first."""
    with session_scope(services().factory) as session:
        found = suggest_tags(session, viewer=person().viewer, typed=args["prefix"])
    return {"items": found}
