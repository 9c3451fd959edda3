"""Idempotency keys for the API's state-changing requests: a client that retries a request
(its connection dropped, it timed out) with the same `Idempotency-Key` gets the first
answer again instead of a second upload. The key is claimed before the work starts, so a
retry that arrives while the first request is still working is told to wait, not run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from storage.access import IdempotencyKey
from storage.db import session_scope

if TYPE_CHECKING:
    from bot.services import Services

KEPT_FOR = timedelta(hours=24)
# A claim still unanswered after this long belongs to a request that died (a killed
# process): a retry may take it over rather than wait a day for the prune.
ABANDONED_AFTER = timedelta(minutes=10)
MAX_KEY_LENGTH = 255


class KeyReused(Exception):
    """The key was used before with a different request."""


class StillWorking(Exception):
    """The first request with this key has not answered yet."""


@dataclass(frozen=True)
class Stored:
    """The answer a completed request with this key got, to replay."""

    status: int
    body: dict[str, Any]


def claim(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    key: str,
    request_hash: str,
    now: datetime,
) -> Stored | None:
    """None when this request now holds the key (do the work, then `complete` or
    `release`); the stored answer when one was given; KeyReused or StillWorking otherwise."""
    try:
        with session_scope(services.factory) as session:
            session.add(
                IdempotencyKey(
                    team_id=team_id,
                    user_id=user_id,
                    key=key,
                    request_hash=request_hash,
                    status=None,
                    response=None,
                    created_at=now,
                )
            )
        return None
    except IntegrityError:
        pass  # the key exists: see what it holds
    with session_scope(services.factory) as session:
        row = session.get(IdempotencyKey, (team_id, user_id, key), with_for_update=True)
        if row is None:  # pruned meanwhile: a fresh claim next time
            raise StillWorking
        if row.request_hash != request_hash:
            raise KeyReused
        if row.status is not None:
            return Stored(row.status, dict(row.response or {}))
        if row.created_at > now - ABANDONED_AFTER:
            raise StillWorking
        row.created_at = now
        return None


def complete(
    services: Services, *, team_id: str, user_id: str, key: str, status: int, body: dict[str, Any]
) -> None:
    """Keep the answer the request got, for its retries."""
    with session_scope(services.factory) as session:
        row = session.get(IdempotencyKey, (team_id, user_id, key))
        if row is not None:
            row.status, row.response = status, body


def release(services: Services, *, team_id: str, user_id: str, key: str) -> None:
    """The request failed on our side: let a retry run it again."""
    with session_scope(services.factory) as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.team_id == team_id,
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key,
                IdempotencyKey.status.is_(None),
            )
        )


def prune(services: Services) -> int:
    """Forget keys older than a day (the scheduler's job): a retry comes within minutes."""
    with session_scope(services.factory) as session:
        result = session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < services.clock() - KEPT_FOR)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
