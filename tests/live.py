"""A running app plus the emulators, with the moves a person makes in Slack: post images,
type a command, click a button, fill in a modal. Every move is a signed request over HTTP;
every check reads what Slack received (the emulator's recorded calls)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.services import Services
from handlers.slack.details import ids as details_ids
from storage.db import session_scope
from storage.models import ApprovalVote, Image, IngestJob, IngestState
from tests import images
from tests.conftest import ADMIN, POSTER, PUBLIC_CHANNEL, AppProcess, app_env, make_services
from tests.fakes.signed import Reply, SlackSender
from tests.fakes.slack_api import Call, SlackEmulator


class RealClock:
    def __init__(self, offset: timedelta = timedelta()) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def wait_until(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Live:
    app: AppProcess
    slack: SlackEmulator
    db: Services
    env: dict[str, str]

    @property
    def sender(self) -> SlackSender:
        return self.app.sender()

    # -- posting ----------------------------------------------------------------------------

    def add_jpeg(self, file_id: str, *, name: str | None = None, seed: int = 0, **kw: Any) -> str:
        self.slack.add_file(
            file_id,
            name=name or f"{file_id.lower()}.jpg",
            content=images.jpeg(seed=seed, **kw),
            mimetype="image/jpeg",
            filetype="jpg",
            user=POSTER,
        )
        return file_id

    def post(
        self,
        *file_ids: str,
        user: str = POSTER,
        channel: str = PUBLIC_CHANNEL,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        envelope = self.slack.message_event(
            channel=channel, user=user, files=list(file_ids), thread_ts=thread_ts
        )
        reply = self.sender.event(envelope)
        assert reply.status == 200, reply
        return envelope

    def wait_for_prompt(self, user: str = POSTER, count: int = 1) -> Call:
        calls = self.slack.wait_for(
            "chat.postEphemeral",
            count=count,
            timeout=20,
            predicate=lambda c: c.params.get("user") == user,
        )
        return calls[-1]

    def stored(self) -> list[Image]:
        with session_scope(self.db.factory) as session:
            return list(
                session.scalars(
                    select(Image)
                    .join(IngestJob, IngestJob.image_id == Image.id)
                    .where(IngestJob.state == IngestState.STORED)
                    .order_by(Image.id)
                )
            )

    def image(self, image_id: int) -> Image | None:
        with session_scope(self.db.factory) as session:
            return session.get(Image, image_id)

    def cards_recorded(self) -> int:
        """How many approvers' cards the app knows the place of (to update them later). Slack
        answers chat.postMessage before the app writes down the card's ts: wait for this
        before clicking on a card the test expects to see updated."""
        with session_scope(self.db.factory) as session:
            votes = session.scalars(select(ApprovalVote).where(ApprovalVote.card_ts.is_not(None)))
            return len(list(votes))

    # -- commands, clicks, modals --------------------------------------------------------------

    def command(
        self, text: str, *, user: str = ADMIN, channel: str = PUBLIC_CHANNEL
    ) -> dict[str, Any]:
        """Run `/images <text>`; return what the app sent to the command's response_url."""
        fields = self.slack.slash_command("/images", user=user, channel=channel, text=text)
        reply = self.sender.command(**fields)
        assert reply.status == 200, reply
        # The answer Slack accepted (a refused one is recorded too, with its status).
        call = self.slack.wait_for(
            "response_url",
            predicate=lambda c: c.params.get("_url") == fields["response_url"] and c.status == 200,
        )[-1]
        return call.params

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = POSTER,
        channel: str | None = PUBLIC_CHANNEL,
        message_ts: str | None = None,
    ) -> dict[str, Any]:
        payload = self.slack.block_action(
            user=user,
            action_id=action_id,
            value=value,
            channel=channel,
            message_ts=message_ts or "1700000000.000001",
        )
        if channel is None:  # App Home: no channel, no response_url
            payload["container"] = {"type": "view", "view_id": "VHOME"}
            payload.pop("response_url", None)
        reply = self.sender.interactive(payload)
        assert reply.status == 200, reply
        return payload

    def opened_view(self, nth: int = 0) -> tuple[str, dict[str, Any]]:
        """The view of the nth successful views.open (waits for it)."""
        calls = self.slack.wait_for(
            "views.open",
            count=nth + 1,
            predicate=lambda c: bool(c.status == 200 and c.response and c.response.get("ok")),
        )
        response = calls[nth].response
        return response["view"]["id"], response["view"]

    def opened_views(self) -> int:
        return sum(
            1
            for c in self.slack.calls_to("views.open")
            if c.status == 200 and c.response and c.response.get("ok")
        )

    def click_to_open(
        self,
        action_id: str,
        value: str,
        *,
        user: str = POSTER,
        channel: str | None = PUBLIC_CHANNEL,
    ) -> tuple[str, dict[str, Any]]:
        """Click a button that opens a modal; the modal it opened."""
        before = self.opened_views()
        self.click(action_id, value, user=user, channel=channel)
        return self.opened_view(before)

    def submit(self, view_id: str, values: dict[str, Any], *, user: str = POSTER) -> Reply:
        payload = self.slack.view_submission(user=user, view_id=view_id, values=values)
        return self.sender.interactive(payload)

    def responses(self, url: str | None = None) -> list[dict[str, Any]]:
        """What the app sent to response_urls and Slack accepted, oldest first."""
        return [
            c.params
            for c in self.slack.calls_to("response_url")
            if (url is None or c.params.get("_url") == url) and c.status == 200
        ]


def form_values(
    image_ids: list[int],
    *,
    titles: list[str] | None = None,
    tags: list[str] = (),  # type: ignore[assignment]
    category_id: int | None = None,
    shoot_date: str | None = None,
    description: str = "",
    approvers: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """`view.state.values` as Slack sends it for the details modal."""
    values: dict[str, Any] = {}
    for n, image_id in enumerate(image_ids):
        title = titles[n] if titles else f"Image {image_id}"
        values[f"title:{image_id}"] = {"value": {"type": "plain_text_input", "value": title}}
    values["tags"] = {
        details_ids.TAGS: {
            "type": "multi_external_select",
            "selected_options": [
                {"text": {"type": "plain_text", "text": t[:75] or "-"}, "value": t} for t in tags
            ],
        }
    }
    values["category"] = {
        details_ids.CATEGORY: {
            "type": "external_select",
            "selected_option": (
                {"text": {"type": "plain_text", "text": "c"}, "value": str(category_id)}
                if category_id
                else None
            ),
        }
    }
    values["shoot_date"] = {"value": {"type": "datepicker", "selected_date": shoot_date}}
    values["description"] = {"value": {"type": "plain_text_input", "value": description or None}}
    values["approvers"] = {
        "value": {"type": "multi_users_select", "selected_users": list(approvers)}
    }
    return values


def start_live(
    *,
    database_url: str,
    slack: SlackEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
    watch: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Live:
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media")
    env.update(extra_env or {})
    db = make_services(env, clock=RealClock(), watch=watch)
    return Live(app=run_app(env), slack=slack, db=db, env=env)


@pytest.fixture
def live(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[Live]:
    """The app serving HTTP with #marketing-shoots watched, on SQLite and on Postgres."""
    running = start_live(database_url=database_url, slack=slack, tmp_path=tmp_path, run_app=run_app)
    yield running
    running.db.shutdown()
