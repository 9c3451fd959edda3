"""The library with no Slack at all: fakes of its own ports (`bot.ports`) and the real object
graph (`bot.services.Services`) built on them.

- `FakeDirectory`: a workspace described as data (people and conversations). It answers None,
  or an unknown person, exactly where the Directory protocol allows, and only when a test
  says so (`silence`), so the tests can check that the library then shows less, never more.
- `FakeFiles`: posted files served from a dict by URL; a download fails on demand with the
  `DownloadError` (and `retryable` flag) a real front door would raise.
- `RecordingNotifier`: what people would be told, one `Told` per Notifier call, in order.
- `make_services`: `Services` on a migrated SQLite database in the test's tmp dir and local
  media, with these plugged in. Nothing here (or in tests/bot/) imports slack_sdk,
  slack_bolt or handlers: that the library runs without them is the point of this tier.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import admin, imaging, library
from bot.approval_queue import Nudge
from bot.approvals import RequestView
from bot.config import Settings
from bot.domain import Post, PostedFile
from bot.link_notices import LinkNotice
from bot.ports import UNKNOWN_PERSON, Downloaded, DownloadError, FileSource, Notifier, PersonFacts
from bot.prompts import PromptPlan
from bot.reminders import DetailsReminder
from bot.services import Services, media_signing_key
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.media import LocalStore

TEAM = "T0TEAM1"
ADMIN = "UADMIN"
POSTER = "UPOSTER"
MEMBER = "UMEMBER"
GUEST = "UGUEST"
BOT = "UOTHERBOT"
LEFT = "ULEFT"  # deactivated
SHOOTS = "C0SHOOTS"  # public: admin, poster, member, guest
OTHER = "C0OTHER"  # public: admin, member (not the guest, not the poster)
SECRET = "G0SECRET"  # private: poster, member (not the admin)


# -- The directory ----------------------------------------------------------------------------


@dataclass
class Conversation:
    members: set[str]
    private: bool = False


@dataclass
class FakeDirectory:
    """A workspace as data. `calls` records every question asked, as (method, key)."""

    team_id: str = TEAM
    people: dict[str, PersonFacts] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds each person lookup takes (a slow platform)
    _silent: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_person(
        self,
        user_id: str,
        name: str,
        *,
        admin: bool = False,
        guest: bool = False,
        bot: bool = False,
        deleted: bool = False,
    ) -> None:
        self.people[user_id] = PersonFacts(
            is_admin=admin, is_guest=guest, is_bot=bot, deleted=deleted, name=name
        )

    def add_conversation(
        self, conversation_id: str, *, members: set[str], private: bool = False
    ) -> None:
        self.conversations[conversation_id] = Conversation(set(members), private)

    def silence(self, method: str, key: str) -> None:
        """From now on the platform would not answer `method` about `key` (a person, a
        conversation, or for `guests` the team): `person` gives an unknown person, and
        `members`, `conversations_of` and `is_private` None. The protocol gives `guests` no
        way to say it does not know: it answers an empty set, as the Slack gateway does."""
        known = ("person", "guests", "members", "conversations_of", "is_private", "everyone")
        if method not in (*known, "conversation_name", "conversations_named", "app_is_in"):
            raise ValueError(f"the Directory protocol has no method {method}")
        self._silent.add((method, key))

    def answer_again(self, method: str, key: str) -> None:
        """The platform answers `method` about `key` again (an outage is over)."""
        self._silent.discard((method, key))

    def asked(self, method: str, key: str | None = None) -> int:
        """How many times `method` was asked (about `key`, when given)."""
        with self._lock:
            return sum(1 for m, k in self.calls if m == method and key in (None, k))

    def _ask(self, method: str, team_id: str, key: str) -> bool:
        """Record the question; False when there is no answer to give."""
        with self._lock:
            self.calls.append((method, key))
        return team_id == self.team_id and (method, key) not in self._silent

    # The Directory protocol.

    def person(self, team_id: str, user_id: str) -> PersonFacts:
        known = self._ask("person", team_id, user_id)
        if self.delay:
            time.sleep(self.delay)
        return self.people.get(user_id, UNKNOWN_PERSON) if known else UNKNOWN_PERSON

    def guests(self, team_id: str) -> frozenset[str] | None:
        if not self._ask("guests", team_id, team_id):
            return None
        return frozenset(u for u, facts in self.people.items() if facts.is_guest)

    def members(self, team_id: str, conversation_id: str) -> frozenset[str] | None:
        conversation = self.conversations.get(conversation_id)
        if not self._ask("members", team_id, conversation_id) or conversation is None:
            return None
        return frozenset(conversation.members)

    def conversations_of(self, team_id: str, user_id: str) -> frozenset[str] | None:
        if not self._ask("conversations_of", team_id, user_id) or user_id not in self.people:
            return None
        return frozenset(c for c, conv in self.conversations.items() if user_id in conv.members)

    def is_private(self, team_id: str, conversation_id: str) -> bool | None:
        conversation = self.conversations.get(conversation_id)
        if not self._ask("is_private", team_id, conversation_id) or conversation is None:
            return None
        return conversation.private

    def everyone(self, team_id: str) -> list[tuple[str, PersonFacts]] | None:
        if not self._ask("everyone", team_id, team_id):
            return None
        people = [(u, f) for u, f in self.people.items() if not (f.is_bot or f.deleted)]
        return sorted(people, key=lambda person: person[1].name.casefold())

    def app_is_in(self, team_id: str, conversation_id: str) -> bool | None:
        if not self._ask("app_is_in", team_id, conversation_id):
            return None
        return conversation_id in self.conversations

    def conversations_named(self, team_id: str, user_id: str) -> dict[str, str] | None:
        if not self._ask("conversations_named", team_id, user_id) or user_id not in self.people:
            return None
        return {c: c.lower() for c, conv in self.conversations.items() if user_id in conv.members}

    def conversation_name(self, team_id: str, conversation_id: str) -> str | None:
        if not self._ask("conversation_name", team_id, conversation_id):
            return None
        return conversation_id.lower() if conversation_id in self.conversations else None


def workspace() -> FakeDirectory:
    """The workspace most tests start from: an admin, a poster, a member, a guest, another
    app's bot and someone who left; two public channels and a private one."""
    directory = FakeDirectory()
    directory.add_person(ADMIN, "Ana Admin", admin=True)
    directory.add_person(POSTER, "Pat Photographer")
    directory.add_person(MEMBER, "Max Member")
    directory.add_person(GUEST, "Gil Guest", guest=True)
    directory.add_person(BOT, "Another Bot", bot=True)
    directory.add_person(LEFT, "Lee Left", deleted=True)
    directory.add_conversation(SHOOTS, members={ADMIN, POSTER, MEMBER, GUEST})
    directory.add_conversation(OTHER, members={ADMIN, MEMBER})
    directory.add_conversation(SECRET, members={POSTER, MEMBER}, private=True)
    return directory


# -- Posted files -----------------------------------------------------------------------------


class FakeFiles:
    """A FileSource: bytes by URL, file details by id, failures on demand."""

    def __init__(self) -> None:
        self.served: dict[str, tuple[bytes, str]] = {}
        self.files: dict[str, PostedFile] = {}
        self.fetched: list[str] = []
        self._failures: dict[str, list[DownloadError]] = {}

    def serve(self, url: str, data: bytes, *, content_type: str = "image/jpeg") -> None:
        self.served[url] = (data, content_type)

    def describe(self, posted: PostedFile) -> None:
        """What `resolve` answers about a file known only by its id."""
        self.files[posted.file_id] = posted

    def fail(self, url: str, message: str, *, retryable: bool, times: int = 1) -> None:
        """The next `times` downloads of `url` fail with this reason."""
        self._failures.setdefault(url, []).extend(
            DownloadError(message, retryable=retryable) for _ in range(times)
        )

    # The FileSource protocol.

    def resolve(self, team_id: str, file_id: str) -> PostedFile:
        if file_id not in self.files:
            raise DownloadError("the file was deleted before it could be saved", retryable=False)
        return self.files[file_id]

    def fetch(self, team_id: str, url: str, *, dest_dir: Path, max_bytes: int) -> Downloaded:
        self.fetched.append(url)
        failures = self._failures.get(url)
        if failures:
            raise failures.pop(0)
        if url not in self.served:
            raise DownloadError("the file was deleted before it could be saved", retryable=False)
        data, content_type = self.served[url]
        if len(data) > max_bytes:
            raise DownloadError(
                f"the file is over {max_bytes // (1024 * 1024)} MB, the limit for the library",
                retryable=False,
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest_dir, suffix=".download", delete=False) as out:
            out.write(data)
        return Downloaded(
            path=Path(out.name),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content_type=content_type,
        )


# -- The notifier -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """One Notifier call: which, and what it was given."""

    kind: str  # the Notifier method's name
    what: Any  # PromptPlan, RequestView, Nudge, DetailsReminder, or (team_id, user_id)
    settled: bool | None = None  # approval_changed only
    told_maybe: bool = False  # approval_changed only


class RecordingNotifier:
    """A Notifier that remembers what it was asked to tell, in order (thread-safe: homes are
    refreshed from the library's own threads)."""

    def __init__(self) -> None:
        self.told: list[Told] = []
        self._lock = threading.Lock()

    def _add(self, told: Told) -> None:
        with self._lock:
            self.told.append(told)

    def of(self, kind: str) -> list[Any]:
        """What was given to `kind` calls, in order."""
        with self._lock:
            return [t.what for t in self.told if t.kind == kind]

    @property
    def kinds(self) -> list[str]:
        with self._lock:
            return [t.kind for t in self.told]

    @property
    def said(self) -> list[str]:
        """The kinds of calls, App Home refreshes aside (those run on the library's own
        threads, so their place in the order is not fixed)."""
        return [kind for kind in self.kinds if kind != "home_changed"]

    @property
    def homes(self) -> list[tuple[str, str]]:
        return self.of("home_changed")

    # The Notifier protocol.

    def ingest_settled(self, plan: PromptPlan) -> None:
        self._add(Told("ingest_settled", plan))

    def approval_requested(self, request: RequestView) -> None:
        self._add(Told("approval_requested", request))

    def approval_changed(
        self, request: RequestView, *, settled: bool, told_maybe: bool = False
    ) -> None:
        self._add(Told("approval_changed", request, settled=settled, told_maybe=told_maybe))

    def approval_nudge(self, nudge: Nudge) -> None:
        self._add(Told("approval_nudge", nudge))

    def details_reminder(self, reminder: DetailsReminder) -> bool:
        self._add(Told("details_reminder", reminder))
        return True

    def home_changed(self, team_id: str, user_id: str) -> None:
        self._add(Told("home_changed", (team_id, user_id)))

    def link_uploads(self, notice: LinkNotice) -> None:
        self._add(Told("link_uploads", notice))


# -- Time ---------------------------------------------------------------------------------------


class FakeClock:
    """Tests move time explicitly instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# -- The library --------------------------------------------------------------------------------

_template: Path | None = None


def template_database() -> Path:
    """A migrated, empty SQLite database, made once per process (migrating takes a while;
    copying a file does not) and removed when the process ends."""
    global _template  # noqa: PLW0603 - one template per test process
    if _template is None:
        directory = Path(tempfile.mkdtemp(prefix="bot-tier-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        path = directory / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()  # every connection closed: the WAL is folded into the file
        _template = path
    return _template


def make_services(
    tmp_path: Path,
    *,
    directory: FakeDirectory,
    files: FileSource,
    notifier: Notifier | None,
    clock: Callable[[], datetime],
    admins: tuple[str, ...] = (),
) -> Services:
    """The library's real object graph on a fresh SQLite database in `tmp_path`, local media
    with signed preview links, and these ports. `admins` is SLACK_ADMIN_IDS. Call
    `shutdown()` when done: it also runs the App Home refreshes still waiting."""
    database = tmp_path / "library.db"
    shutil.copyfile(template_database(), database)
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "MEDIA_DIR": str(tmp_path / "media"),
            "MEDIA_SIGNING_KEY": "k" * 32,
            "PUBLIC_BASE_URL": "https://library.example",
            "SLACK_ADMIN_IDS": ",".join(admins),
        },
        dotenv=False,
    )
    imaging.configure(
        max_pixels=settings.max_image_pixels,
        decode_budget_bytes=settings.decode_memory_mb * 1024 * 1024,
    )
    engine = make_engine(settings.database_url)
    return Services(
        settings=settings,
        engine=engine,
        factory=make_session_factory(engine),
        media=LocalStore(
            settings.media_dir,
            signing_key=media_signing_key(settings),
            public_base_url=settings.public_base_url,
            thumbnailer=lambda original, dest, w, h, crop: imaging.write_thumbnail(
                original, dest, width=w, height=h, crop=crop
            ),
        ),
        directory=directory,
        files=files,
        notifier=notifier,
        clock=clock,
    )


def watch(services: Services, channel_id: str) -> None:
    """An admin watches a channel (what `/images watch` does)."""
    admin.watch(
        services.factory,
        team_id=TEAM,
        channel_id=channel_id,
        category_name=None,
        actor_id=ADMIN,
        now=services.clock(),
    )


def file_url(file_id: str) -> str:
    """Where `post` serves a posted file's bytes."""
    return f"https://files.example/{file_id}/{file_id.lower()}.jpg"


def post(
    services: Services,
    files: FakeFiles,
    *,
    user: str,
    channel: str,
    images: dict[str, bytes],
    ts: str,
    private: bool = False,
) -> list[int]:
    """`user` posts a message with these images (file id -> bytes) in a watched channel:
    recorded as the message event would record it, each file served at its own URL. Returns
    the ingest jobs to run."""
    posted = []
    for file_id, data in images.items():
        url = file_url(file_id)
        files.serve(url, data)
        posted.append(
            PostedFile(
                file_id=file_id,
                name=f"{file_id.lower()}.jpg",
                mimetype="image/jpeg",
                filetype="jpg",
                size=len(data),
                download_url=url,
            )
        )
    return library.record_posted_files(
        services.factory,
        post=Post(
            team_id=TEAM,
            channel_id=channel,
            user_id=user,
            message_ts=ts,
            channel_private=private,
        ),
        files=posted,
        event_id=f"Ev{ts}",
        now=services.clock(),
    )


def homes_refreshed(services: Services, notifier: RecordingNotifier) -> set[tuple[str, str]]:
    """Whose App Home was refreshed. Refreshes are coalesced on the library's own threads:
    shutting down runs those still waiting, so the answer is complete."""
    services.shutdown()
    return set(notifier.homes)
