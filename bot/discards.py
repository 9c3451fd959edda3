"""What the poster decides about a near-duplicate the prompt named: keep both, or discard
the new image, its open approval request cancelled and its original deleted unless another
image uses it (the stores are content-addressed).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import and_, delete, false, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import RequestView, audit, request_view
from bot.cancellation import cancel_for_image
from bot.details import forget_tags
from bot.ingest_queue import lock_content
from storage.db import session_scope
from storage.media import MediaError, MediaStore
from storage.models import Image, IngestJob, IngestState

log = logging.getLogger(__name__)


def keep_duplicate(
    factory: sessionmaker[Session], *, team_id: str, image_id: int, actor_id: str, now: datetime
) -> Image | None:
    """The poster says the near-duplicate is wanted: forget the link."""
    with session_scope(factory) as session:
        image = session.scalar(select(Image).where(Image.team_id == team_id, Image.id == image_id))
        if image is None:
            return None
        image.duplicate_of_id = None
        audit(session, team_id, image.id, actor_id, "duplicate_kept", {}, now)
        return image


def discard_image(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    image_id: int,
    actor_id: str,
    media: MediaStore,
    now: datetime,
) -> tuple[Image | None, RequestView | None]:
    """Remove an image from the library, cancelling its open approval request (returned, so
    its cards can be updated). Its original is deleted from the store unless another image
    has the very same bytes (the stores are content-addressed)."""
    with session_scope(factory) as session:
        image = session.scalar(select(Image).where(Image.team_id == team_id, Image.id == image_id))
        if image is None:
            return None, None
        cancelled = cancel_for_image(session, image=image, actor_id=actor_id, now=now)
        forget_tags(session, team_id=team_id, tags=list(image.tags))
        cancelled_view = request_view(session, cancelled) if cancelled else None
        key, sha256 = image.storage_key, image.sha256
        detail = {"image_id": image.id, "slack_file_id": image.slack_file_id, "title": image.title}
        audit(session, team_id, None, actor_id, "image_discarded", detail, now)
        session.execute(delete(Image).where(Image.id == image.id))
    if key:
        _delete_original_unless_used(factory, key=key, sha256=sha256, media=media)
    return image, cancelled_view


def _delete_original_unless_used(
    factory: sessionmaker[Session], *, key: str, sha256: str | None, media: MediaStore
) -> None:
    """Delete a discarded image's original unless another image uses it, or is being
    ingested with the same bytes (it records their sha256 before storing them, under the
    same lock: see `bot.ingest_records.reserve`). The check and the delete hold the lock
    together, so such an ingest either is seen here or stores the original again after the
    delete."""
    with session_scope(factory) as session:
        if sha256:
            lock_content(session, sha256)
        in_flight = select(IngestJob.image_id).where(
            IngestJob.state.in_([IngestState.QUEUED, IngestState.RUNNING])
        )
        used = session.scalar(
            select(func.count())
            .select_from(Image)
            .where(
                or_(
                    Image.storage_key == key,
                    and_(Image.sha256 == sha256, Image.id.in_(in_flight)) if sha256 else false(),
                )
            )
        )
        if used:
            return
        try:
            media.delete(key)
        except MediaError as exc:  # the row is gone; an orphaned original is only storage
            log.warning("could not delete original %s: %s", key, exc)
