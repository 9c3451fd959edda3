"""Library objects as the API shows them: plain dicts the answer schemas dump. A view never
holds more than its person may see (the caller looked the image up through visibility)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from bot.approvals import RequestView
from bot.finder import Result
from bot.people import Person
from storage.models import Image


def links(image_id: int) -> dict[str, str]:
    return {
        "self": url_for("images.image", image_id=image_id),
        "web": url_for("pages.image_page", image_id=image_id),
        "renditions": url_for("images.renditions", image_id=image_id),
        "history": url_for("images.history", image_id=image_id),
    }


def result_view(result: Result) -> dict[str, Any]:
    return {
        "id": result.image_id,
        "title": result.title,
        "tags": result.tags,
        "category": result.category,
        "shoot_date": result.shoot_date,
        "uploader_id": result.uploader_id,
        "status": result.status,
        "can_edit": result.can_edit,
        "links": links(result.image_id),
    }


def image_view(image: Image, *, category: str | None, me: Person) -> dict[str, Any]:
    return {
        "id": image.id,
        "title": image.title or image.file_name,
        "file_name": image.file_name,
        "tags": list(image.tags),
        "category": category,
        "category_id": image.category_id,
        "shoot_date": image.sort_at.date().isoformat(),
        "description": image.description,
        "uploader_id": image.uploader_id,
        "conversation_id": image.channel_id,
        "status": image.status,
        "can_edit": me.is_admin or image.uploader_id == me.user_id,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "bytes": image.bytes,
        "duplicate_of": image.duplicate_of_id,
        "created_at": image.created_at,
        "updated_at": image.updated_at,
        "links": links(image.id),
    }


def request_view(request: RequestView) -> dict[str, Any]:
    return {
        "id": request.id,
        "image_id": request.image_id,
        "requested_by": request.requested_by,
        "policy": request.policy,
        "note": request.note,
        "due_at": request.due_at,
        "state": request.state,
        "decided_at": request.decided_at,
        "created_at": request.created_at,
        "votes": [
            {
                "approver_id": v.approver_id,
                "client_name": request.outside.get(v.approver_id),
                "decision": v.decision,
                "reason": v.reason,
                "decided_by": v.decided_by,
                "decided_at": v.decided_at,
            }
            for v in request.votes
        ],
    }
