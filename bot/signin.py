"""One-time sign-in links into the web library: the local owner's (printed by `make run` when
no Slack app is configured) and any an operator makes on the server. A link is a random
token shown once; only its hash is stored, it expires, and it works once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import SignInLink, WebSession
from storage.db import session_scope

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)  # then sign in again, however active


@dataclass(frozen=True)
class SignedIn:
    team_id: str
    user_id: str


def start_session(
    factory: sessionmaker[Session], *, team_id: str, user_id: str, now: datetime
) -> str:
    """A new web session for `user_id`: the random id for the cookie."""
    session_id = secrets.token_urlsafe(32)
    with session_scope(factory) as session:
        session.add(
            WebSession(id_hash=_hash(session_id), team_id=team_id, user_id=user_id, created_at=now)
        )
    return session_id


def session_of(
    factory: sessionmaker[Session], session_id: str, *, now: datetime
) -> SignedIn | None:
    """Who a web session belongs to, while it has not ended or expired."""
    with session_scope(factory) as session:
        row = session.get(WebSession, _hash(session_id))
        if row is None or row.ended_at is not None or row.created_at <= now - SESSION_LIFETIME:
            return None
        return SignedIn(team_id=row.team_id, user_id=row.user_id)


def end_session(factory: sessionmaker[Session], session_id: str, *, now: datetime) -> None:
    with session_scope(factory) as session:
        session.execute(
            update(WebSession)
            .where(WebSession.id_hash == _hash(session_id), WebSession.ended_at.is_(None))
            .values(ended_at=now)
        )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def create_link_token(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    user_id: str,
    now: datetime,
    lifetime: timedelta = LINK_LIFETIME,
) -> str:
    """A new single-use token for `user_id`, valid for `lifetime`."""
    token = secrets.token_urlsafe(32)
    with session_scope(factory) as session:
        session.add(
            SignInLink(
                token_hash=_hash(token),
                team_id=team_id,
                user_id=user_id,
                expires_at=now + lifetime,
                created_at=now,
            )
        )
    return token


def redeem(factory: sessionmaker[Session], token: str, *, now: datetime) -> SignedIn | None:
    """Who the token signs in, once: None when it is unknown, used or expired."""
    with session_scope(factory) as session:
        claimed = session.execute(
            update(SignInLink)
            .where(
                SignInLink.token_hash == _hash(token),
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > now,
            )
            .values(used_at=now)
            .returning(SignInLink.team_id, SignInLink.user_id)
        ).first()
    return SignedIn(team_id=claimed[0], user_id=claimed[1]) if claimed else None
