"""People: who someone is to the library (admin, member, guest) and what they may see.

Every front door builds the same `Person` for whoever acts, from the workspace's directory
(`bot.ports.Directory`), so the rules about who may see, edit or decide never depend on where
the click came from. Directory answers are cached briefly: a burst of clicks or posts costs
one lookup, and visibility never costs a call per channel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.ports import UNKNOWN_PERSON, Directory, PersonFacts
from storage.db import session_scope
from storage.models import Channel
from storage.search import Viewer

MEMBERSHIP_TTL_SECONDS = 60.0
FACTS_TTL_SECONDS = 300.0
# "The directory would not say" (Slack rate limiting us, or down): kept this long only, so a
# burst of clicks during an outage asks once, and the outage does not outlast itself.
UNSURE_TTL_SECONDS = 5.0
# Meanwhile a real answer that expired less than this long ago still stands: a person Slack
# described a moment ago is not "deactivated" because Slack is busy now.
STALE_LIMIT_SECONDS = 900.0

V = TypeVar("V")


@dataclass(frozen=True)
class Person:
    """Someone acting on the library: their team, id, role and what they may see."""

    team_id: str
    user_id: str
    is_admin: bool
    is_guest: bool
    viewer: Viewer  # the conversations with images in the library they belong to

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "guest" if self.is_guest else "member"


class People:
    """The directory, cached, plus the library's own list of admins (SLACK_ADMIN_IDS)."""

    def __init__(
        self,
        directory: Directory,
        factory: sessionmaker[Session],
        *,
        configured_admins: frozenset[str] = frozenset(),
        facts_ttl: float = FACTS_TTL_SECONDS,
        membership_ttl: float = MEMBERSHIP_TTL_SECONDS,
        unsure_ttl: float = UNSURE_TTL_SECONDS,
    ) -> None:
        self._factory = factory
        self._configured = configured_admins

        def cache(lookup: Callable[[str, str], V], ttl: float) -> _TtlCache[V]:
            return _TtlCache(lookup, ttl, unsure_ttl)

        self._facts: _TtlCache[PersonFacts] = cache(directory.person, facts_ttl)
        self._guests: _TtlCache[frozenset[str] | None] = cache(
            lambda team, _: directory.guests(team), membership_ttl
        )
        self._members: _TtlCache[frozenset[str] | None] = cache(directory.members, membership_ttl)
        self._conversations: _TtlCache[frozenset[str] | None] = cache(
            directory.conversations_of, membership_ttl
        )
        self._everyone: _TtlCache[list[tuple[str, PersonFacts]] | None] = cache(
            lambda team, _: directory.everyone(team), membership_ttl
        )
        self._names: _TtlCache[str | None] = cache(directory.conversation_name, facts_ttl)
        self._named: _TtlCache[dict[str, str] | None] = cache(
            directory.conversations_named, membership_ttl
        )

    def facts(self, team_id: str, user_id: str) -> PersonFacts:
        return self._facts.get(team_id, user_id)

    def is_admin(self, team_id: str, user_id: str) -> bool:
        """Admins are the ids in SLACK_ADMIN_IDS plus workspace admins and owners."""
        return user_id in self._configured or self.facts(team_id, user_id).is_admin

    def everyone(self, team_id: str) -> list[tuple[str, PersonFacts]]:
        """Everyone who can act in the workspace, by name (empty when the directory would
        not say)."""
        return self._everyone.get(team_id, "") or []

    def role_of(self, team_id: str, user_id: str, facts: PersonFacts) -> str:
        """admin, member or guest: what `Person.role` would say, from facts in hand."""
        if user_id in self._configured or facts.is_admin:
            return "admin"
        return "guest" if facts.is_guest else "member"

    def conversation_name(self, team_id: str, conversation_id: str) -> str | None:
        return self._names.get(team_id, conversation_id)

    def conversations_named(self, team_id: str, user_id: str) -> dict[str, str]:
        """The channels `user_id` is in, by id, with their names (empty when unknown)."""
        return self._named.get(team_id, user_id) or {}

    def guests(self, team_id: str) -> frozenset[str] | None:
        """The team's guests (the share check needs them all at once), or None when the
        directory would not say (then nobody unknown is let in)."""
        return self._guests.get(team_id, "")

    def members(self, team_id: str, conversation_id: str) -> frozenset[str] | None:
        """Who is in a conversation, or None when the directory would not say (then nobody
        is let in)."""
        return self._members.get(team_id, conversation_id)

    def conversations_of(self, team_id: str, user_id: str) -> frozenset[str]:
        """The conversations `user_id` is in that the library can see (empty when the
        directory would not say: hiding too much is safer than showing too much)."""
        return self._conversations.get(team_id, user_id) or frozenset()

    def viewer(self, team_id: str, user_id: str) -> Viewer:
        """The conversations with images in the library that `user_id` belongs to: private
        ones for members, every one for guests (who see nothing public by default)."""
        is_guest = self.facts(team_id, user_id).is_guest
        with session_scope(self._factory) as session:
            query = select(Channel.channel_id).where(Channel.team_id == team_id)
            if not is_guest:
                query = query.where(Channel.is_private.is_(True))
            channels = set(session.scalars(query))
        mine = frozenset(channels & self.conversations_of(team_id, user_id))
        return Viewer(team_id=team_id, is_guest=is_guest, channels=mine)

    def person(self, team_id: str, user_id: str) -> Person:
        viewer = self.viewer(team_id, user_id)
        return Person(
            team_id=team_id,
            user_id=user_id,
            is_admin=self.is_admin(team_id, user_id),
            is_guest=viewer.is_guest,
            viewer=viewer,
        )


class _TtlCache(Generic[V]):
    """Answers remembered for `ttl` seconds, or `unsure_ttl` for the directory's "I would
    not say" (None, or the unknown person), which never replaces a real answer less than
    STALE_LIMIT_SECONDS past its time. Threads missing the same key at once wait for one
    lookup (a burst of clicks costs one directory call, not one each)."""

    def __init__(self, lookup: Callable[[str, str], V], ttl: float, unsure_ttl: float) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._unsure_ttl = unsure_ttl
        # key -> (when the answer expires, the answer, whether it is real, when to ask again)
        self._cache: dict[tuple[str, str], tuple[float, V, bool, float]] = {}
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], threading.Lock] = {}

    def get(self, team_id: str, key: str) -> V:
        entry = (team_id, key)
        hit = self._fresh(entry)
        if hit is not None:
            return hit[0]
        with self._lock:
            flight = self._inflight.setdefault(entry, threading.Lock())
        with flight:
            hit = self._fresh(entry)  # another thread looked it up while we waited
            if hit is not None:
                return hit[0]
            value = self._lookup(team_id, key)
            with self._lock:
                if len(self._cache) > 50_000:
                    self._cache.clear()
                now = time.monotonic()
                unsure = value is None or value == UNKNOWN_PERSON
                if unsure:
                    # The last real answer, while it is recent enough, is truer than none.
                    old = self._cache.get(entry)
                    if old is not None and old[2] and old[0] > now - STALE_LIMIT_SECONDS:
                        value = old[1]
                        self._cache[entry] = (old[0], value, True, now + self._unsure_ttl)
                    else:
                        self._cache[entry] = (now, value, False, now + self._unsure_ttl)
                else:
                    self._cache[entry] = (now + self._ttl, value, True, now + self._ttl)
                self._inflight.pop(entry, None)
        return value

    def _fresh(self, entry: tuple[str, str]) -> tuple[V] | None:
        with self._lock:
            hit = self._cache.get(entry)
        return (hit[1],) if hit and hit[3] > time.monotonic() else None
