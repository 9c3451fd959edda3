"""The one way the app talks to Slack's Web API, and the one error policy for it.

- Every call goes through `SlackClient`: a message or view whose preview Slack cannot load
  (an image URL it cannot reach, a file it cannot see) fails whole with `invalid_blocks` /
  `invalid_arguments`, so it is sent again without its pictures. A person then sees the
  titles, buttons and text, never nothing. `respond_with_fallback` does the same for
  response_url messages.
- `send` runs a call whose failure must not stop the listener: the error is logged with its
  code (the ones expected are ignored) and None comes back.
- `SlackGateway` is the library's directory (`bot.ports.Directory`): who a person is,
  who is in a conversation, whether it is private; every page of the paginated methods.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.web import SlackResponse

from bot.ports import UNKNOWN_PERSON, PersonFacts
from handlers.slack import keepalive
from handlers.slack.install import Installations
from storage.metrics import SLACK_API_ERRORS, label

log = logging.getLogger(__name__)

Block = dict[str, Any]


def without_previews(blocks: list[Block]) -> list[Block]:
    """The same blocks without pictures: image blocks dropped, image accessories and
    image elements of context blocks removed (a context left empty is dropped too)."""
    kept: list[Block] = []
    for original in blocks:
        if original.get("type") == "image":
            continue
        block = copy.deepcopy(original)
        if (block.get("accessory") or {}).get("type") == "image":
            del block["accessory"]
        if block.get("type") == "context":
            block["elements"] = [e for e in block.get("elements", []) if e.get("type") != "image"]
            if not block["elements"]:
                continue
        kept.append(block)
    return kept


def _plain_payload(payload: dict[str, Any]) -> dict[str, Any] | None:
    """`payload` with its pictures removed, or None when it had none."""
    plain = dict(payload)
    if isinstance(plain.get("blocks"), list):
        plain["blocks"] = without_previews(plain["blocks"])
    view = plain.get("view")
    if isinstance(view, dict) and isinstance(view.get("blocks"), list):
        plain["view"] = {**view, "blocks": without_previews(view["blocks"])}
    return None if plain == payload else plain


def _preview_failed(exc: SlackApiError) -> bool:
    error = exc.response.get("error")
    messages = " ".join((exc.response.get("response_metadata") or {}).get("messages") or [])
    messages += " ".join(str(e) for e in exc.response.get("errors") or [])
    return error in ("invalid_blocks", "invalid_arguments") and (
        "image" in messages.lower() or "slack_file" in messages.lower()
    )


class SlackClient(WebClient):
    """A WebClient that resends a message or view without previews when Slack could not load
    one of them, and counts every failed call (imglib_slack_api_errors), whoever made it."""

    def api_call(  # type: ignore[override]
        self, api_method: str, *, json: dict[str, Any] | None = None, **kwargs: Any
    ) -> SlackResponse:
        try:
            return self._counted(api_method, json=json, **kwargs)
        except SlackApiError as exc:
            plain = _plain_payload(json) if json is not None and _preview_failed(exc) else None
            if plain is None:
                raise
            log.info("%s: Slack could not load a preview; sent without pictures", api_method)
            return self._counted(api_method, json=plain, **kwargs)

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        # One kept-alive connection per thread and host (handlers.slack.keepalive), not a
        # new connection and TLS handshake for every call.
        if self.proxy is None and url.lower().startswith(("https://", "http://")):
            return keepalive.post(req, timeout=self.timeout, ssl=self.ssl)
        return super()._perform_urllib_http_request_internal(url, req)

    def _counted(self, api_method: str, **kwargs: Any) -> SlackResponse:
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            self._count(api_method, exc.response.status_code, exc.response.get("error"))
            raise
        except Exception as exc:  # no answer at all: a timeout, a refused connection
            self._count(api_method, "none", type(exc).__name__)
            raise

    @staticmethod
    def _count(method: str, status: object, error: object) -> None:
        labels = {"method": label(method), "status": label(status), "error": label(error)}
        SLACK_API_ERRORS.labels(**labels).inc()


def respond_with_fallback(send: Callable[..., Any], **message: Any) -> Any:
    """Send through a response_url (Bolt's `respond`); when Slack refuses the message because
    of its pictures, send it again without them."""
    sent = send(**message)
    status = getattr(sent, "status_code", 200)
    if status != 200 and isinstance(message.get("blocks"), list):
        plain = without_previews(message["blocks"])
        if plain != message["blocks"]:
            log.info("response_url refused the message (%s); sent without pictures", status)
            sent = send(**{**message, "blocks": plain})
    return sent


def send(
    name: str, call: Callable[[], SlackResponse], *, ignore: tuple[str, ...] = ()
) -> SlackResponse | None:
    """Make one Web API call whose failure must not stop the caller: Slack's answer, or None
    after logging the error (quietly for the codes in `ignore`, which are expected)."""
    try:
        return call()
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error not in ignore:
            log.warning("%s failed: %s %s", name, error, exc.response.get("errors") or "")
    except Exception:
        log.exception("%s failed", name)
    return None


class SlackGateway:
    """Web API clients for a team, and the library's directory of people and conversations
    (`bot.ports.Directory`) read from Slack."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str | None = None,
        installations: Installations | None = None,
    ) -> None:
        """One workspace's bot `token`, or the `installations`' (one per workspace the app
        is installed in, from /slack/install)."""
        self._token = token
        self.installations = installations
        self._api_url = api_url
        self._team_id: str | None = None

    def team_id(self) -> str | None:
        """The workspace of the single bot token (auth.test, remembered once known)."""
        if self._team_id is None and self._token:
            try:
                self._team_id = str(self.client().auth_test()["team_id"])
            except SlackApiError as exc:
                log.warning("auth.test failed: %s", exc.response.get("error"))
        return self._team_id

    def token_for(self, team_id: str | None) -> str | None:
        """The bot token of `team_id`: the one token, or that workspace's installation's."""
        if self.installations is None:
            return self._token
        return self.installations.token_for(team_id)

    def client(self, team_id: str | None = None, *, token: str | None = None) -> WebClient:
        """A Web API client acting in `team_id` (with `token` when the caller holds it)."""
        return SlackClient(
            token=token or self.token_for(team_id),
            base_url=self._api_url,
            timeout=10,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=3),
            ],
        )

    # -- the directory ------------------------------------------------------------------

    def person(self, team_id: str, user_id: str) -> PersonFacts:
        """What Slack says about a person (users.info). Unknown people have no rights."""
        try:
            user = self.client(team_id).users_info(user=user_id)["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
            return UNKNOWN_PERSON
        return _facts_of(user)

    def guests(self, team_id: str) -> frozenset[str] | None:
        """Everyone in the workspace who is a guest (users.list, all pages), or None."""
        pages = self._pages(
            team_id,
            "users.list",
            lambda client, cursor: client.users_list(limit=1000, cursor=cursor),
        )
        if pages is None:
            return None
        return frozenset(
            str(u["id"])
            for p in pages
            for u in p["members"] or []
            if u.get("is_restricted") or u.get("is_ultra_restricted")
        )

    def members(self, team_id: str, conversation_id: str) -> frozenset[str] | None:
        """Everyone in a conversation (conversations.members, all pages), or None."""
        pages = self._pages(
            team_id,
            "conversations.members",
            lambda client, cursor: client.conversations_members(
                channel=conversation_id, limit=1000, cursor=cursor
            ),
        )
        return None if pages is None else frozenset(m for p in pages for m in p["members"] or [])

    def conversations_of(self, team_id: str, user_id: str) -> frozenset[str] | None:
        """The conversations a person is in that the bot can see (users.conversations, all
        pages: public channels, and private ones, DMs and group DMs the bot shares)."""
        pages = self._pages(
            team_id,
            "users.conversations",
            lambda client, cursor: client.users_conversations(
                user=user_id,
                types="public_channel,private_channel,mpim,im",
                limit=1000,
                cursor=cursor,
            ),
        )
        if pages is None:
            return None
        return frozenset(str(c["id"]) for p in pages for c in p["channels"] or [])

    def app_is_in(self, team_id: str, conversation_id: str) -> bool | None:
        """Whether the bot is in the conversation (conversations.info's is_member)."""
        try:
            info = self.client(team_id).conversations_info(channel=conversation_id)["channel"]
        except SlackApiError as exc:
            log.info("conversations.info %s: %s", conversation_id, exc.response.get("error"))
            return False if exc.response.get("error") == "channel_not_found" else None
        return bool(info.get("is_member"))

    def conversations_named(self, team_id: str, user_id: str) -> dict[str, str] | None:
        """Those conversations by id with their names (DMs and group DMs have none: left
        out), from the same users.conversations pages."""
        pages = self._pages(
            team_id,
            "users.conversations",
            lambda client, cursor: client.users_conversations(
                user=user_id,
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=1000,
                cursor=cursor,
            ),
        )
        if pages is None:
            return None
        return {
            str(c["id"]): str(c["name"])
            for p in pages
            for c in p["channels"] or []
            if c.get("name")
        }

    def is_private(self, team_id: str, conversation_id: str) -> bool | None:
        """Whether Slack says a conversation is private (conversations.info), or None."""
        try:
            info = self.client(team_id).conversations_info(channel=conversation_id)["channel"]
        except SlackApiError as exc:
            log.info("conversations.info %s: %s", conversation_id, exc.response.get("error"))
            return None
        return bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))

    def everyone(self, team_id: str) -> list[tuple[str, PersonFacts]] | None:
        """The workspace's people who can act (users.list, all pages), by name, or None."""
        pages = self._pages(
            team_id,
            "users.list",
            lambda client, cursor: client.users_list(limit=1000, cursor=cursor),
        )
        if pages is None:
            return None
        people = [
            (str(u["id"]), _facts_of(u))
            for p in pages
            for u in p["members"] or []
            if not (u.get("is_bot") or u.get("deleted") or u.get("id") == "USLACKBOT")
        ]
        return sorted(people, key=lambda person: person[1].name.casefold())

    def conversation_name(self, team_id: str, conversation_id: str) -> str | None:
        """A conversation's name (conversations.info), or None."""
        try:
            info = self.client(team_id).conversations_info(channel=conversation_id)["channel"]
        except SlackApiError as exc:
            log.info("conversations.info %s: %s", conversation_id, exc.response.get("error"))
            return None
        if info.get("is_im"):
            return "a direct message"
        return str(info.get("name") or "") or None

    def _pages(
        self, team_id: str, method: str, call: Callable[[WebClient, str | None], SlackResponse]
    ) -> list[SlackResponse] | None:
        """Every page of a cursor-paginated Web API method, or None when Slack refused."""
        client = self.client(team_id)
        pages: list[SlackResponse] = []
        cursor = None
        for _ in range(100):  # 100 pages of 1000: more than any workspace has
            try:
                response = call(client, cursor)
            except SlackApiError as exc:
                log.info("%s: %s", method, exc.response.get("error"))
                return None
            pages.append(response)
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return pages


def _facts_of(user: dict[str, Any]) -> PersonFacts:
    profile = user.get("profile") or {}
    return PersonFacts(
        name=str(profile.get("display_name") or profile.get("real_name") or user.get("name") or ""),
        is_admin=bool(user.get("is_admin") or user.get("is_owner")),
        is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
        is_bot=bool(user.get("is_bot")),
        deleted=bool(user.get("deleted")),
    )
