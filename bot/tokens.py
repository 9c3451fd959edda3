"""Personal access tokens for the JSON API. A token acts as the person who made it, with
exactly their visibility and role (their `Person` is built from the directory at each use).
It is shown once; only its SHA-256 is kept, with a short prefix to recognise it by."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import ApiToken
from storage.db import session_scope

# "image library": lets secret scanners and people recognise one
TOKEN_PREFIX = "il_"  # noqa: S105 (a marker, not a secret)
MAX_NAME_LENGTH = 100
MAX_TOKENS_PER_PERSON = 50
LAST_USED_RESOLUTION = timedelta(minutes=1)  # one write a minute per token, not per request


class TokenError(Exception):
    """A token cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class TokenHolder:
    team_id: str
    user_id: str
    token_id: int


def create(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    user_id: str,
    name: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[TokenView, str]:
    """A new token for `user_id`: its record and the token itself, to show once."""
    name = " ".join(name.split())
    if not name:
        raise TokenError("Give the token a name, so you can tell it apart later.")
    if len(name) > MAX_NAME_LENGTH:
        raise TokenError(f"Keep the name under {MAX_NAME_LENGTH} characters.")
    if expires_at is not None and expires_at <= now:
        raise TokenError("The expiry date is in the past.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits
    with session_scope(factory) as session:
        live = session.scalars(
            select(ApiToken.id).where(
                ApiToken.team_id == team_id,
                ApiToken.user_id == user_id,
                ApiToken.revoked_at.is_(None),
            )
        ).all()
        if len(live) >= MAX_TOKENS_PER_PERSON:
            raise TokenError(
                f"You already have {MAX_TOKENS_PER_PERSON} tokens; revoke one you no longer use."
            )
        row = ApiToken(
            token_hash=_hash(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            team_id=team_id,
            user_id=user_id,
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
        session.add(row)
        session.flush()
        return _view(row), token


def holder_of(factory: sessionmaker[Session], token: str, *, now: datetime) -> TokenHolder | None:
    """Whose token this is, while it is neither revoked nor expired; notes its use."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    with session_scope(factory) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
            row.last_used_at = now
        return TokenHolder(team_id=row.team_id, user_id=row.user_id, token_id=row.id)


def tokens_of(factory: sessionmaker[Session], *, team_id: str, user_id: str) -> list[TokenView]:
    """`user_id`'s tokens, newest first, revoked ones included (for the record)."""
    with session_scope(factory) as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.team_id == team_id, ApiToken.user_id == user_id)
            .order_by(ApiToken.id.desc())
        )
        return [_view(row) for row in rows]


def revoke(
    factory: sessionmaker[Session], *, team_id: str, user_id: str, token_id: int, now: datetime
) -> bool:
    """Revoke one of `user_id`'s own tokens; False when they have no such live token."""
    with session_scope(factory) as session:
        done = session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                ApiToken.team_id == team_id,
                ApiToken.user_id == user_id,
                ApiToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
