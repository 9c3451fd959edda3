"""What the library needs from the outside world, asked through interfaces it owns.

The library never talks to a chat platform itself. A front door (today Slack, in
`handlers/slack/`) implements these and the composition root (`bot/wiring.py`) plugs them in;
tests plug in fakes. Everything here speaks plain values: ids, names, facts, never a message
format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.approval_queue import Nudge
    from bot.approvals import RequestView
    from bot.domain import PostedFile
    from bot.link_notices import LinkNotice
    from bot.prompts import PromptPlan
    from bot.reminders import DetailsReminder


@dataclass(frozen=True)
class PersonFacts:
    """What the workspace says about a person. Unknown people have no rights."""

    is_admin: bool  # workspace admin or owner
    is_guest: bool
    is_bot: bool
    deleted: bool
    name: str = ""  # display name, else real name


UNKNOWN_PERSON = PersonFacts(is_admin=False, is_guest=True, is_bot=False, deleted=True)


class Directory(Protocol):
    """Who people are and who can see which conversation. An answer the platform would not
    give is None (or an unknown person): callers then show less, never more."""

    def person(self, team_id: str, user_id: str) -> PersonFacts: ...

    def guests(self, team_id: str) -> frozenset[str] | None: ...

    def members(self, team_id: str, conversation_id: str) -> frozenset[str] | None: ...

    def conversations_of(self, team_id: str, user_id: str) -> frozenset[str] | None: ...

    def is_private(self, team_id: str, conversation_id: str) -> bool | None: ...

    def everyone(self, team_id: str) -> list[tuple[str, PersonFacts]] | None:
        """The workspace's people who can act (no bots, no one deactivated), by name, with
        what is known of each, or None: for pickers and lists on doors that have none of
        their own (the web)."""
        ...

    def conversation_name(self, team_id: str, conversation_id: str) -> str | None: ...

    def app_is_in(self, team_id: str, conversation_id: str) -> bool | None:
        """Whether the app is a member of the conversation (it hears only those), or None
        when the platform would not say."""
        ...

    def conversations_named(self, team_id: str, user_id: str) -> dict[str, str] | None:
        """The conversations `user_id` is in (those of `conversations_of`) with their names,
        in one question: for choosing one on a door that has no picker of its own."""
        ...


class DownloadError(Exception):
    """A posted file could not be fetched. `retryable` says whether a later try may work."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Downloaded:
    """A fetched file in a temporary path that the caller owns (and must delete)."""

    path: Path
    size: int
    sha256: str
    content_type: str


class FileSource(Protocol):
    """The bytes of files people posted. Both raise DownloadError with a reason a person
    can read."""

    def resolve(self, team_id: str, file_id: str) -> PostedFile:
        """Full details of a file known only by its id."""
        ...

    def fetch(self, team_id: str, url: str, *, dest_dir: Path, max_bytes: int) -> Downloaded: ...


class Notifier(Protocol):
    """Telling people what changed, wherever the change happened (a click in Slack, the web,
    a retry in the worker). Implementations never raise: a message that cannot be delivered
    is logged, and the library's state is already saved."""

    def ingest_settled(self, plan: PromptPlan) -> None:
        """A posted message's images are all stored or failed: tell the poster."""
        ...

    def approval_requested(self, request: RequestView) -> None:
        """Ask each approver, and tell the requester it was sent."""
        ...

    def approval_changed(
        self, request: RequestView, *, settled: bool, told_maybe: bool = False
    ) -> None:
        """Show a vote (or the outcome) wherever the request is shown; `settled`: tell the
        requester how it ended. `told_maybe`: a process that was telling it died, perhaps
        after telling (do not tell twice what can be seen to be told)."""
        ...

    def approval_nudge(self, nudge: Nudge) -> None:
        """Remind the approvers still to decide (or escalate to the admins)."""
        ...

    def details_reminder(self, reminder: DetailsReminder) -> bool:
        """Remind a poster of images still without details. False when the reminder surely
        did not reach them (Slack refused it): it is due again."""
        ...

    def home_changed(self, team_id: str, user_id: str) -> None:
        """What a person's own overview shows has changed (called coalesced)."""
        ...

    def link_uploads(self, notice: LinkNotice) -> None:
        """Images came through an upload link: tell its admin (or channel), with a way to
        add their details."""
        ...


class MailError(Exception):
    """An e-mail was not accepted for delivery; the message says why (never a password)."""


class Mailer(Protocol):
    """Sending e-mail (client review links, their reminders)."""

    def send(self, *, to: str, subject: str, body: str) -> None:
        """Hand one plain-text message to the mail server. MailError when it refuses."""
        ...
