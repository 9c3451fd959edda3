"""The library with no chat workspace connected (the embedded default): one team and its
owner, who signs in on the web with a one-time link. Plugged into the `Directory` port by
the composition root when no Slack app is configured."""

from __future__ import annotations

from bot.ports import UNKNOWN_PERSON, PersonFacts

LOCAL_TEAM = "TLOCAL"
LOCAL_OWNER = "ULOCALOWNER"


class LocalDirectory:
    """Only the owner exists: an admin, in no conversation; nobody else has any rights."""

    def person(self, team_id: str, user_id: str) -> PersonFacts:
        if (team_id, user_id) == (LOCAL_TEAM, LOCAL_OWNER):
            return PersonFacts(
                is_admin=True, is_guest=False, is_bot=False, deleted=False, name="Owner"
            )
        return UNKNOWN_PERSON

    def guests(self, team_id: str) -> frozenset[str] | None:
        return frozenset()

    def members(self, team_id: str, conversation_id: str) -> frozenset[str] | None:
        return None

    def conversations_of(self, team_id: str, user_id: str) -> frozenset[str] | None:
        return frozenset()

    def is_private(self, team_id: str, conversation_id: str) -> bool | None:
        return None

    def everyone(self, team_id: str) -> list[tuple[str, PersonFacts]] | None:
        return [(LOCAL_OWNER, self.person(team_id, LOCAL_OWNER))] if team_id == LOCAL_TEAM else []

    def conversation_name(self, team_id: str, conversation_id: str) -> str | None:
        return None

    def conversations_named(self, team_id: str, user_id: str) -> dict[str, str] | None:
        return {}

    def app_is_in(self, team_id: str, conversation_id: str) -> bool | None:
        return None
