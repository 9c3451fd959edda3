"""The fast tier: the real Bolt app, built in-process, driven with `App.dispatch`.

Every request is the body and headers Slack would send (encoded and signed by
tests/fakes/signed.py, so Bolt's signature check runs as in production), handed to
`app.dispatch(BoltRequest(...))` instead of being POSTed to a server. The app talks to the
Slack emulator (tests/fakes/slack_api.py, a real HTTP server on loopback) and to a real,
migrated SQLite database in the test's tmp dir, exactly as it would in production: nothing
of the app is mocked. There is no app process and no HTTP server for the app, so a test
costs a tenth of a second or so instead of seconds.

What a test checks is what Slack received: the BoltResponse (the ack: status, options,
`response_action: errors`), and the emulator's recorded calls (messages, modals, ephemeral
messages, response_url answers, App Home views). Listeners run on Bolt's thread pool after
the ack, so the harness can wait for them (`settle`) or for a given call (`wait_for`).

Action and callback ids: the tests write them as literal strings (`"add_details"`), the ids
the app used before ids named their surface (`details.add`), rather than importing the
constants. Buttons and modals already posted in Slack carry those old ids, and they must
keep routing: so these tests double as the "old ids still route" tests, and must keep using
the literals (`tests/e2e` drives the new ids).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from sqlalchemy import text

# -- The application ------------------------------------------------------------------------
# Every name the fast tier takes from the application is imported here, and nowhere else in
# tests/handlers/ (the tests reach the app only through Slack requests and this module).
from bot.config import Settings
from bot.wiring import build_services, build_slack_app
from handlers.slack.approvals import ids as approvals_ids
from handlers.slack.capture import ids as capture_ids
from handlers.slack.details import ids as details_ids
from handlers.slack.search import ids as search_ids
from storage import migrate

# -- Test helpers shared with the end-to-end tier -------------------------------------------
from tests import images
from tests.conftest import ADMIN, POSTER, PUBLIC_CHANNEL, SIGNING_SECRET, TEAM, app_env, workspace
from tests.fakes.signed import (
    SlackSigner,
    encode_command,
    encode_event,
    encode_interactive,
    retry_headers,
)
from tests.fakes.slack_api import Call, SlackEmulator

WAIT = 5.0  # seconds: the longest a test waits for something the app does in the background


def make_template_database(directory: Path) -> Path:
    """A migrated, empty SQLite database. Migrating takes a while; copying a file does not,
    so it is made once per session and copied for every test."""
    path = directory / "template.db"
    settings = Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{path}", "MEDIA_DIR": str(directory / "media")},
        dotenv=False,
    )
    services = build_services(settings)
    migrate.upgrade(services.engine)
    services.shutdown()  # closes every connection: the WAL is folded into the file
    return path


# -- What went in and what came back --------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A request dispatched to the app and Bolt's answer to it (the ack)."""

    response: BoltResponse
    payload: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.response.status)

    @property
    def body(self) -> str:
        return str(self.response.body or "")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def response_url(self) -> str | None:
        return self.payload.get("response_url")

    @property
    def trigger_id(self) -> str | None:
        return self.payload.get("trigger_id")


def said(obj: Any) -> str:
    """Everything in a message, view or answer as one string, to look for words in it."""
    return json.dumps(obj, ensure_ascii=False)


# What the app draws today for the ids the tests speak (the old ones): a button the tests
# look for by its old id is found by the id it is sent with now.
DRAWN_AS = {
    old: new
    for surface in (capture_ids, details_ids, search_ids, approvals_ids)
    for new, old in surface.OLD.items()
    if new not in (details_ids.DETAILS_MODAL, approvals_ids.REJECT_MODAL)
    and new != approvals_ids.REQUEST_MODAL
}


def buttons(blocks: Iterable[dict[str, Any]], action_id: str) -> list[dict[str, Any]]:
    """The buttons (and other elements) with `action_id` (or the id it is drawn with now),
    in actions blocks and accessories."""
    wanted = {action_id, DRAWN_AS.get(action_id, action_id)}
    found = []
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        found += [e for e in elements if e.get("action_id") in wanted]
    return found


def blocks_by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view.get("blocks", []) if b.get("block_id")}


# -- Waiting for Bolt's listener threads ----------------------------------------------------


class _TrackedExecutor(Executor):
    """The app's own listener executor, remembering what it was given, so that a test can
    wait until every listener that started has finished (and then assert that something did
    NOT happen). Behaviour is unchanged: every task runs on the app's thread pool."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = self._inner.submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def settle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = set(self._pending)
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(pending)} listener(s) still running after {timeout}s")
            wait_for_futures(pending, timeout=left)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


class _ListenerErrors(logging.Handler):
    """Bolt logs (and swallows) an exception raised by a listener after its ack: the person
    sees nothing happen. Collected here so that the test fails."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def report(self) -> str:
        formatter = logging.Formatter("%(name)s: %(message)s")
        return "\n".join(formatter.format(r) for r in self.records)


_closing: list[threading.Thread] = []  # apps still shutting down in the background


# -- The harness ------------------------------------------------------------------------------


@dataclass
class Harness:
    """The app in-process, the Slack emulator, and the moves a person makes in Slack."""

    slack: SlackEmulator
    services: Any  # the app's object graph (bot.services.Services)
    app: App
    signer: SlackSigner = field(default_factory=lambda: SlackSigner(SIGNING_SECRET))
    # A test about a listener that raises sets this (else the test fails when it closes).
    expect_listener_errors: bool = False
    _executor: _TrackedExecutor | None = None
    _errors: _ListenerErrors = field(default_factory=_ListenerErrors)

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def start(cls, tmp_path: Path, template: Path) -> Harness:
        database = tmp_path / "library.db"
        shutil.copyfile(template, database)
        slack = workspace().start()
        services = None
        try:
            # The environment a deployment has (tests/conftest.py), pointed at the emulator.
            env = app_env(
                database_url=f"sqlite:///{database}", slack=slack, media_dir=tmp_path / "media"
            )
            services = build_services(Settings.from_env(env, dotenv=False))
            harness = cls(
                slack=slack, services=services, app=build_slack_app(services.settings, services)
            )
        except BaseException:
            if services is not None:
                services.shutdown()
            slack.stop()
            raise
        harness._track_listeners()
        return harness

    def _track_listeners(self) -> None:
        runner = self.app.listener_runner
        self._executor = _TrackedExecutor(runner.listener_executor)
        runner.listener_executor = self._executor
        runner.lazy_listener_runner.executor = self._executor
        logging.getLogger("slack_bolt").addHandler(self._errors)

    def close(self) -> None:
        """Wait for the listeners (a test is over when they are), then shut the app down.

        The app's ingest threads notice a shutdown only at their next poll (up to a second
        later): that part runs in the background, with the emulator up until the app has
        stopped (so a last App Home refresh still reaches it). The session waits for all of
        them before it ends (`wait_for_closing`)."""
        logging.getLogger("slack_bolt").removeHandler(self._errors)
        problems = []
        try:
            self.settle()
        except AssertionError as exc:
            problems.append(str(exc))
        if self._errors.records and not self.expect_listener_errors:
            problems.append("a listener failed after its ack:\n" + self._errors.report())

        def stop() -> None:
            try:
                if self._executor is not None:
                    self._executor.shutdown(wait=True)
                self.services.shutdown()
            finally:
                self.slack.stop()

        stopper = threading.Thread(target=stop, name="harness-close", daemon=True)
        stopper.start()
        _closing.append(stopper)
        if problems:
            raise AssertionError("\n".join(problems))

    # -- sending ----------------------------------------------------------------------------------

    def dispatch(
        self,
        body: str,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        signature: str | None = None,
        timestamp: int | None = None,
    ) -> BoltResponse:
        """Hand Bolt a request as Slack would send it: this body, signed, with these headers."""
        signed = self.signer.headers(
            body,
            content_type=content_type,
            headers=headers,
            timestamp=timestamp,
            signature=signature,
        )
        return self.app.dispatch(BoltRequest(body=body, headers=signed))

    def interactive(self, payload: dict[str, Any]) -> Sent:
        body, content_type = encode_interactive(payload)
        return Sent(self.dispatch(body, content_type), payload)

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> Sent:
        """Deliver an Events API event (`event` is the inner event; the envelope is added)."""
        return self.deliver(
            self.slack.event_envelope(event, event_id=event_id), retry_num=retry_num
        )

    def deliver(self, envelope: dict[str, Any], *, retry_num: int | None = None) -> Sent:
        body, content_type = encode_event(envelope)
        response = self.dispatch(body, content_type, headers=retry_headers(retry_num))
        return Sent(response, envelope)

    def command(
        self,
        text: str,
        *,
        user: str = ADMIN,
        channel: str = PUBLIC_CHANNEL,
        command: str = "/images",
    ) -> Sent:
        fields = self.slack.slash_command(command, user=user, channel=channel, text=text)
        body, content_type = encode_command(**fields)
        return Sent(self.dispatch(body, content_type), fields)

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = POSTER,
        channel: str = PUBLIC_CHANNEL,
        message_ts: str | None = None,
        home: bool = False,
    ) -> Sent:
        """A button click in a message in `channel` (with a response_url), or with `home`
        in the App Home tab (no channel, no response_url)."""
        payload = self.slack.block_action(
            user=user,
            action_id=action_id,
            value=value,
            channel=None if home else channel,
            message_ts=message_ts or "1700000000.000001",
        )
        if home:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
        return self.interactive(payload)

    def click_on(self, message: Call, action_id: str, *, user: str) -> Sent:
        """A click on the button `action_id` of a message the bot posted (e.g. an approval
        card in someone's DM), with that button's value."""
        (button,) = buttons(message.params["blocks"], action_id)
        return self.click(
            action_id,
            button["value"],
            user=user,
            channel=message.response["channel"],
            message_ts=message.response["ts"],
        )

    def submit(self, view_id: str, values: dict[str, Any], *, user: str = POSTER) -> Sent:
        """Submit an opened modal with `values` as its `state.values`."""
        return self.interactive(
            self.slack.view_submission(user=user, view_id=view_id, values=values)
        )

    def suggest(
        self,
        action_id: str,
        typed: str,
        *,
        user: str = POSTER,
        block_id: str | None = None,
        callback_id: str = "image_details",
        view_id: str = "V0DETAILS",
    ) -> Sent:
        """What Slack asks an external select as someone types (block_suggestion)."""
        return self.interactive(
            {
                "type": "block_suggestion",
                "action_id": action_id,
                "block_id": block_id or action_id,
                "value": typed,
                "team": {"id": TEAM, "domain": self.slack.team_domain},
                "user": {"id": user, "name": user.lower(), "team_id": TEAM},
                "api_app_id": self.slack.app_id,
                "token": self.slack.verification_token,
                "container": {"type": "view", "view_id": view_id},
                "view": {"id": view_id, "type": "modal", "callback_id": callback_id},
            }
        )

    def message_shortcut(
        self,
        callback_id: str,
        message: dict[str, Any],
        *,
        user: str = POSTER,
        channel: str = PUBLIC_CHANNEL,
    ) -> Sent:
        """A message shortcut used on `message` (as stored in the channel)."""
        return self.interactive(
            {
                "type": "message_action",
                "callback_id": callback_id,
                "trigger_id": self.slack.new_trigger_id(),
                "response_url": self.slack.new_response_url(channel=channel, user=user),
                "team": {"id": TEAM, "domain": self.slack.team_domain},
                "user": {"id": user, "name": user.lower(), "team_id": TEAM},
                "channel": {"id": channel, "name": "channel"},
                "message_ts": message["ts"],
                "message": message,
                "api_app_id": self.slack.app_id,
                "token": self.slack.verification_token,
                "is_enterprise_install": False,
            }
        )

    def home_opened(self, user: str) -> Sent:
        return self.event(
            {
                "type": "app_home_opened",
                "user": user,
                "channel": f"D{user}",
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            }
        )

    # -- posting images -------------------------------------------------------------------------

    def add_jpeg(self, file_id: str, *, seed: int = 0, user: str = POSTER, **kw: Any) -> str:
        """A JPEG hosted by "Slack", ready to be posted."""
        self.slack.add_file(
            file_id,
            name=kw.pop("name", f"{file_id.lower()}.jpg"),
            content=images.jpeg(320, 240, seed=seed, **kw),
            mimetype="image/jpeg",
            filetype="jpg",
            user=user,
        )
        return file_id

    def post(
        self,
        *file_ids: str,
        user: str = POSTER,
        channel: str = PUBLIC_CHANNEL,
        thread_ts: str | None = None,
    ) -> Sent:
        """Post a message with these files in `channel` (the `message` event Slack sends)."""
        envelope = self.slack.message_event(
            channel=channel, user=user, files=list(file_ids), thread_ts=thread_ts
        )
        return self.deliver(envelope)

    def post_and_prompt(
        self, *file_ids: str, user: str = POSTER, channel: str = PUBLIC_CHANNEL
    ) -> tuple[Sent, Call]:
        """Post images and wait for the private prompt the poster gets once they are in."""
        before = len(self.ephemerals(user))
        sent = self.post(*file_ids, user=user, channel=channel)
        assert sent.status == 200, sent.response
        prompt = self.wait_for(
            "chat.postEphemeral",
            count=before + 1,
            predicate=lambda c: c.params.get("user") == user,
        )[-1]
        return sent, prompt

    def posted_image(
        self,
        file_id: str,
        *,
        seed: int = 0,
        user: str = POSTER,
        channel: str = PUBLIC_CHANNEL,
        **jpeg: Any,
    ) -> int:
        """Post one JPEG (`jpeg`: its name, EXIF...) and wait until it is in the library; its
        image id (from the prompt's "Add details" button)."""
        _, prompt = self.post_and_prompt(
            self.add_jpeg(file_id, seed=seed, user=user, **jpeg), user=user, channel=channel
        )
        (button,) = buttons(prompt.params["blocks"], "add_details")
        return int(button["value"])

    # -- what Slack received ----------------------------------------------------------------------

    def settle(self, timeout: float = WAIT) -> None:
        """Wait until every listener Bolt started has returned."""
        if self._executor is not None:
            self._executor.settle(timeout)

    def wait_for(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = WAIT,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Every recorded call to `method` (matching `predicate`), once there are `count`."""
        return self.slack.wait_for(method, count=count, timeout=timeout, predicate=predicate)

    def calls(self, method: str, predicate: Callable[[Call], bool] | None = None) -> list[Call]:
        """The calls to `method` so far (after `settle`, all of those the listeners made)."""
        return [c for c in self.slack.calls_to(method) if predicate is None or predicate(c)]

    def answers(self, sent: Sent) -> list[dict[str, Any]]:
        """What the app posted to the request's response_url and Slack accepted, oldest
        first, once the listener has returned."""
        self.settle()
        return [
            c.params
            for c in self.slack.calls_to("response_url")
            if c.params.get("_url") == sent.response_url and c.status == 200
        ]

    def answer(self, sent: Sent) -> dict[str, Any]:
        """The (last) answer the app sent to the request's response_url."""
        self.wait_for(
            "response_url",
            predicate=lambda c: c.params.get("_url") == sent.response_url and c.status == 200,
        )
        return self.answers(sent)[-1]

    def opened_view(self, sent: Sent) -> tuple[str, dict[str, Any]]:
        """(view id, view) of the modal opened with the request's trigger_id."""
        (call,) = self.wait_for(
            "views.open", predicate=lambda c: c.params.get("trigger_id") == sent.trigger_id
        )
        assert call.response and call.response.get("ok"), call.response
        return call.response["view"]["id"], call.response["view"]

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the app's database, for the few facts a person cannot
        see in Slack (such as "the job was recorded before Slack got its answer")."""
        with self.services.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def ephemerals(self, user: str) -> list[Call]:
        return self.calls("chat.postEphemeral", lambda c: c.params.get("user") == user)

    def dms(self, user: str) -> list[Call]:
        """Messages the bot posted in its DM with `user` (chat.postMessage to their id)."""
        return self.calls("chat.postMessage", lambda c: c.params.get("channel") == user)

    def home(self, user: str, *, containing: str = "", timeout: float = WAIT) -> dict[str, Any]:
        """The App Home view last published to `user` (waiting for one with `containing`).
        The app refreshes a person's Home at most once a second (bot/coalesce.py)."""
        calls = self.wait_for(
            "views.publish",
            timeout=timeout,
            predicate=lambda c: (
                c.params.get("user_id") == user and containing in said(c.params["view"])
            ),
        )
        return calls[-1].params["view"]


def running(tmp_path: Path, template: Path) -> Iterator[Harness]:
    """The body of the `h` fixture: a harness for one test."""
    harness = Harness.start(tmp_path, template)
    try:
        yield harness
    finally:
        harness.close()


def warm_up(tmp_path: Path, template: Path) -> None:
    """Ingest one image in a throwaway app. The first ingest in a process pays for starting
    the imaging libraries (most of a second): paid here, once per session, rather than by
    whichever test happens to post an image first."""
    for harness in running(tmp_path, template):
        harness.answer(harness.command(f"watch <#{PUBLIC_CHANNEL}|marketing-shoots>"))
        harness.posted_image("F0WARMUP")


def wait_for_closing(timeout: float = 30.0) -> None:
    """At the end of the session: every app shut down, every emulator stopped."""
    deadline = time.monotonic() + timeout
    for thread in _closing:
        thread.join(max(0.0, deadline - time.monotonic()))
