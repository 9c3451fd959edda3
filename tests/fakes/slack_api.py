"""A stateful, in-process fake of the Slack platform for tests.

`SlackEmulator` serves, on loopback only (127.0.0.1, free ports):

* the Web API under ``api_url`` (``http://127.0.0.1:PORT/api/``): give it to
  ``WebClient(base_url=...)`` / ``SLACK_API_URL``;
* private file downloads (``/files-pri/TEAM-FILEID/download/NAME``), which, like Slack, answer an
  HTML login page with HTTP 200 when the bot token is missing or wrong;
* ``response_url`` endpoints (``new_response_url()``) with Slack's 5-use limit;
* a Socket Mode WebSocket endpoint (``apps.connections.open`` hands out ``ws_url?ticket=...``);
* Sign in with Slack (OpenID Connect): the browser's ``/openid/connect/authorize`` (approving as
  the user of `SlackEmulator.sign_in_as`, else a page to pick a user), ``/openid/connect/keys``
  (the JWKS) and the methods ``openid.connect.token`` and ``openid.connect.userInfo``;
  ``team=<id>`` picks the workspace, ``sign_in_as(user_id, team_id=...)`` a person of any team.

Several workspaces (multi-workspace installs):

* ``add_team(team_id: str, team_name: str, *, bot_token: str | None = None) -> SlackEmulator``
  (on the primary) adds a workspace: another `SlackEmulator` with its own users, channels,
  files, messages, views, ``calls`` and faults, whose payload builders (``message_event``,
  ``event_envelope``, ``slash_command``, ``block_action``, ``view_submission``...) carry its
  ids (bot user ``UBOT2``, ``UBOT3``... by default, bot token ``xoxb-test-token-<team_id>``).
  It serves its files and response_urls on its own port and starts and stops with the
  primary. Its ``api_url`` is the primary's: every ``/api/`` call is routed by its token to
  the team the token belongs to and recorded there (an unknown token gets ``invalid_auth``
  from the primary, a revoked one ``token_revoked``, an expired rotating one
  ``token_expired``). ``team(team_id)`` returns a team's emulator.
* The OAuth v2 install: the browser's ``{base_url}/oauth/v2/authorize?client_id=&scope=
  &user_scope=&redirect_uri=&state=&team=`` (checks ``client_id``, a non-empty
  comma-separated ``scope``, and ``redirect_uri`` against ``oauth_redirect_urls`` when set:
  equal to one or below it, as Slack; a problem is a 400 error page naming Slack's error)
  shows "<app_name> is requesting permission to access the <team> Slack workspace" with an
  Allow link (302 to ``redirect_uri?code=...&state=...``) and a Cancel link (``error=
  access_denied``). The installer is ``install_as(team_id, user_id)``'s, else the first person
  of the ``team`` asked, else of the primary. Page hits are recorded as ``oauth.v2.authorize``
  calls (``params["_path"]``).
* ``oauth.v2.access`` (client credentials by HTTP Basic or form): ``code`` (one-time,
  ``oauth_code_ttl`` = 600 s; ``redirect_uri`` must equal the authorize one if that had one)
  gives Slack's answer (``app_id``, ``authed_user``, ``scope``, ``token_type: bot``, a new
  ``access_token`` of that team, ``bot_user_id``, ``team``, ``enterprise: null``,
  ``is_enterprise_install``; ``authed_user`` gets a user token when ``user_scope`` was asked).
  With ``token_rotation = True`` tokens are ``xoxe.xoxb-1-...`` with ``refresh_token`` and
  ``expires_in`` (``token_ttl`` seconds, default 43200, read from the primary), and
  ``grant_type=refresh_token`` renews them (a refresh token works once; old access tokens
  live until their own expiry).
* ``uninstall(team_id) -> dict`` revokes all of a team's tokens and returns the
  ``app_uninstalled`` event envelope; ``revoke_bot_tokens(team_id) -> dict`` revokes its bot
  tokens and returns the ``tokens_revoked`` one (``tokens: {oauth: [], bot: [bot user]}``).

Every request is recorded as a `Call` (``calls``, ``calls_to``, ``wait_for``). Faults are injected
on demand with `SlackEmulator.inject` and consumed in order. Block Kit payloads are checked by the
pure functions `validate_blocks` and `validate_view` against the limits in ``shared/SLACK.md``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import html
import http.server
import ipaddress
import itertools
import json
import re
import secrets
import socket
import string
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.sync.server import Server, ServerConnection, serve

__all__ = [
    "SLACK_LOGIN_PAGE_HTML",
    "Call",
    "SlackEmulator",
    "validate_blocks",
    "validate_view",
]

JsonDict = dict[str, Any]
FileLookup = Callable[[Mapping[str, Any]], str | None]

# --------------------------------------------------------------------------------------------
# Block Kit validation (pure)
# --------------------------------------------------------------------------------------------

SURFACES = ("message", "modal", "home")
MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}

_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
}
_MULTI_SELECTS = {f"multi_{name}" for name in _SELECTS}
_PICKERS = {"datepicker", "timepicker", "datetimepicker"}
_SECTION_ACCESSORIES = (
    {"button", "checkboxes", "image", "overflow", "radio_buttons", "workflow_button"}
    | _SELECTS
    | _MULTI_SELECTS
    | {"datepicker", "timepicker"}
)
_ACTIONS_ELEMENTS = (
    {"button", "checkboxes", "overflow", "radio_buttons", "workflow_button", "rich_text_input"}
    | _SELECTS
    | _MULTI_SELECTS
    | _PICKERS
    | {"feedback_buttons", "icon_button"}
)
_INPUT_ELEMENTS = (
    {
        "checkboxes",
        "email_text_input",
        "file_input",
        "number_input",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "url_text_input",
    }
    | _SELECTS
    | _MULTI_SELECTS
    | _PICKERS
)
_BLOCK_TYPES = {
    "actions",
    "call",
    "context",
    "context_actions",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "table",
    "video",
}
_MESSAGE_ONLY_BLOCKS = {"call", "file", "markdown", "table"}
_IMAGE_FILETYPES = {"png", "jpg", "jpeg", "gif"}


def _too_long(limit: int, got: int) -> str:
    return f"must be less than {limit + 1} characters (got {got})"


class _BlockChecker:
    """Collects Slack-style error strings: ``"<problem> [json-pointer:/blocks/0/text/text]"``."""

    def __init__(self, *, reject_private_image_urls: bool, file_lookup: FileLookup | None) -> None:
        self.errors: list[str] = []
        self.reject_private_image_urls = reject_private_image_urls
        self.file_lookup = file_lookup

    # -- primitives ------------------------------------------------------------------------
    def err(self, ptr: str, msg: str) -> None:
        self.errors.append(f"{msg} [json-pointer:{ptr}]")

    def string(
        self, obj: Mapping[str, Any], key: str, ptr: str, limit: int, *, required: bool = False
    ) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.err(f"{ptr}/{key}", f"missing required field: {key}")
            return
        if not isinstance(value, str):
            self.err(f"{ptr}/{key}", "must be a string")
        elif required and not value:
            self.err(f"{ptr}/{key}", "must be more than 0 characters")
        elif len(value) > limit:
            self.err(f"{ptr}/{key}", _too_long(limit, len(value)))

    def text(
        self,
        obj: Mapping[str, Any],
        key: str,
        ptr: str,
        limit: int,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.err(f"{ptr}/{key}", f"missing required field: {key}")
            return
        self.text_obj(value, f"{ptr}/{key}", limit, plain_only=plain_only)

    def text_obj(self, value: Any, here: str, limit: int, *, plain_only: bool = False) -> None:
        if not isinstance(value, dict):
            self.err(here, "must be a text object")
            return
        kind = value.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.err(f"{here}/type", f"must be plain_text or mrkdwn (got {kind!r})")
        elif plain_only and kind != "plain_text":
            self.err(f"{here}/type", "must be plain_text")
        text = value.get("text")
        if not isinstance(text, str):
            self.err(f"{here}/text", "missing required field: text")
        elif not text:
            self.err(f"{here}/text", "must be more than 0 characters")
        elif len(text) > limit:
            self.err(f"{here}/text", _too_long(limit, len(text)))

    def id_field(self, obj: Mapping[str, Any], key: str, ptr: str) -> None:
        self.string(obj, key, ptr, 255)

    def items(
        self, value: Any, ptr: str, *, maximum: int, minimum: int = 1, name: str
    ) -> list[Any]:
        if not isinstance(value, list):
            self.err(ptr, f"{name} must be an array")
            return []
        if len(value) > maximum:
            self.err(ptr, f"no more than {maximum} items allowed (got {len(value)})")
        elif len(value) < minimum:
            self.err(ptr, f"must provide at least {minimum} items")
        return value

    # -- images -----------------------------------------------------------------------------
    def image_url(self, url: Any, ptr: str) -> None:
        if not isinstance(url, str) or not url:
            self.err(ptr, "must be a non-empty string")
            return
        if len(url) > 3000:
            self.err(ptr, _too_long(3000, len(url)))
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.err(ptr, "downloading image failed (not an http(s) URL)")
            return
        if self.reject_private_image_urls and _is_private_host(parts.hostname):
            self.err(ptr, "downloading image failed (Slack cannot reach a private address)")

    def image_source(self, obj: Mapping[str, Any], ptr: str) -> None:
        has_url = "image_url" in obj
        has_file = "slack_file" in obj
        if has_url == has_file:
            self.err(ptr, "must provide exactly one of image_url or slack_file")
            return
        if has_url:
            self.image_url(obj["image_url"], f"{ptr}/image_url")
            return
        slack_file = obj["slack_file"]
        here = f"{ptr}/slack_file"
        if not isinstance(slack_file, dict) or ("id" in slack_file) == ("url" in slack_file):
            self.err(here, "slack_file must be an object with exactly one of id or url")
            return
        if self.file_lookup is not None:
            problem = self.file_lookup(slack_file)
            if problem:
                self.err(here, f"invalid slack_file: {problem}")

    def image_element(self, obj: Mapping[str, Any], ptr: str) -> None:
        self.image_source(obj, ptr)
        self.string(obj, "alt_text", ptr, 2000, required=True)

    # -- composition objects ----------------------------------------------------------------
    def confirm(self, obj: Mapping[str, Any], ptr: str) -> None:
        value = obj.get("confirm")
        if value is None:
            return
        here = f"{ptr}/confirm"
        if not isinstance(value, dict):
            self.err(here, "must be a confirmation dialog object")
            return
        self.text(value, "title", here, 100, plain_only=True)
        self.text(value, "text", here, 300)
        self.text(value, "confirm", here, 30, plain_only=True)
        self.text(value, "deny", here, 30, plain_only=True)

    def option(
        self, obj: Any, ptr: str, *, plain_only: bool = True, allow_url: bool = False
    ) -> None:
        if not isinstance(obj, dict):
            self.err(ptr, "must be an option object")
            return
        self.text(obj, "text", ptr, 75, plain_only=plain_only)
        self.string(obj, "value", ptr, 150, required=True)
        self.text(obj, "description", ptr, 75, plain_only=plain_only, required=False)
        if allow_url:
            self.string(obj, "url", ptr, 3000)
        elif "url" in obj:
            self.err(f"{ptr}/url", "url is only allowed in overflow menu options")

    def options(
        self,
        obj: Mapping[str, Any],
        ptr: str,
        *,
        maximum: int,
        minimum: int = 1,
        plain_only: bool = True,
        allow_url: bool = False,
    ) -> None:
        for i, opt in enumerate(
            self.items(
                obj.get("options"),
                f"{ptr}/options",
                maximum=maximum,
                minimum=minimum,
                name="options",
            )
        ):
            self.option(opt, f"{ptr}/options/{i}", plain_only=plain_only, allow_url=allow_url)

    # -- elements ---------------------------------------------------------------------------
    def element(self, obj: Any, ptr: str, allowed: set[str]) -> str | None:
        """Checks one interactive element; returns its action_id (for duplicate detection)."""
        if not isinstance(obj, dict):
            self.err(ptr, "must be an element object")
            return None
        kind = obj.get("type")
        if kind not in allowed:
            self.err(f"{ptr}/type", f"element type {kind!r} is not allowed here")
            return None
        self.id_field(obj, "action_id", ptr)
        if kind == "image":
            self.image_element(obj, ptr)
            return None
        self.confirm(obj, ptr)
        if kind == "button":
            self.text(obj, "text", ptr, 75, plain_only=True)
            self.string(obj, "value", ptr, 2000)
            self.string(obj, "url", ptr, 3000)
            self.string(obj, "accessibility_label", ptr, 75)
            style = obj.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.err(f"{ptr}/style", f"must be primary or danger (got {style!r})")
        elif kind == "workflow_button":
            self.text(obj, "text", ptr, 75, plain_only=True)
        elif kind in ("static_select", "multi_static_select"):
            self.text(obj, "placeholder", ptr, 150, plain_only=True, required=False)
            has_options = "options" in obj
            has_groups = "option_groups" in obj
            if has_options == has_groups:
                self.err(ptr, "must provide exactly one of options or option_groups")
            elif has_options:
                self.options(obj, ptr, maximum=100)
            else:
                groups = self.items(
                    obj["option_groups"], f"{ptr}/option_groups", maximum=100, name="option_groups"
                )
                for g, group in enumerate(groups):
                    gptr = f"{ptr}/option_groups/{g}"
                    if not isinstance(group, dict):
                        self.err(gptr, "must be an option group object")
                        continue
                    self.text(group, "label", gptr, 75, plain_only=True)
                    self.options(group, gptr, maximum=100)
            self._initial_options(obj, ptr)
        elif kind in _SELECTS or kind in _MULTI_SELECTS:
            self.text(obj, "placeholder", ptr, 150, plain_only=True, required=False)
            self._initial_options(obj, ptr)
        elif kind == "overflow":
            self.options(obj, ptr, maximum=5, allow_url=True)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(obj, ptr, maximum=10, plain_only=False)
            self._initial_options(obj, ptr, plain_only=False)
        elif kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
            self.text(obj, "placeholder", ptr, 150, plain_only=True, required=False)
            if kind == "plain_text_input":
                for key in ("max_length", "min_length"):
                    value = obj.get(key)
                    if value is not None and (not isinstance(value, int) or value > 3000):
                        self.err(f"{ptr}/{key}", "must be an integer <= 3000")
        elif kind in _PICKERS or kind == "rich_text_input":
            self.text(obj, "placeholder", ptr, 150, plain_only=True, required=False)
        return obj.get("action_id") if isinstance(obj.get("action_id"), str) else None

    def _initial_options(
        self, obj: Mapping[str, Any], ptr: str, *, plain_only: bool = True
    ) -> None:
        if "initial_option" in obj:
            self.option(obj["initial_option"], f"{ptr}/initial_option", plain_only=plain_only)
        if "initial_options" in obj:
            for i, opt in enumerate(
                self.items(
                    obj["initial_options"],
                    f"{ptr}/initial_options",
                    maximum=100,
                    minimum=0,
                    name="initial_options",
                )
            ):
                self.option(opt, f"{ptr}/initial_options/{i}", plain_only=plain_only)

    # -- blocks -----------------------------------------------------------------------------
    def blocks(self, blocks: Any, ptr: str, surface: str) -> None:
        items = self.items(blocks, ptr, maximum=MAX_BLOCKS[surface], minimum=0, name="blocks")
        seen: set[str] = set()
        for i, block in enumerate(items):
            self.block(block, f"{ptr}/{i}", surface, seen)

    def block(self, block: Any, ptr: str, surface: str, seen_block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.err(ptr, "must be a block object")
            return
        kind = block.get("type")
        if kind not in _BLOCK_TYPES:
            self.err(f"{ptr}/type", f"unknown block type {kind!r}")
            return
        if kind in _MESSAGE_ONLY_BLOCKS and surface != "message":
            self.err(f"{ptr}/type", f"block type {kind!r} is not allowed in a {surface}")
        self.id_field(block, "block_id", ptr)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                self.err(f"{ptr}/block_id", f"duplicate block_id {block_id!r}")
            seen_block_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.err(ptr, "section requires text or fields")
            self.text(block, "text", ptr, 3000, required=False)
            if "fields" in block:
                fields = self.items(block["fields"], f"{ptr}/fields", maximum=10, name="fields")
                for f, item in enumerate(fields):
                    self.text_obj(item, f"{ptr}/fields/{f}", 2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{ptr}/accessory", _SECTION_ACCESSORIES)
        elif kind == "header":
            self.text(block, "text", ptr, 150, plain_only=True)
        elif kind == "image":
            self.image_element(block, ptr)
            self.text(block, "title", ptr, 2000, plain_only=True, required=False)
        elif kind == "actions":
            elements = self.items(
                block.get("elements"), f"{ptr}/elements", maximum=25, name="elements"
            )
            self._elements(elements, f"{ptr}/elements", _ACTIONS_ELEMENTS)
        elif kind == "context":
            elements = self.items(
                block.get("elements"), f"{ptr}/elements", maximum=10, name="elements"
            )
            for i, element in enumerate(elements):
                eptr = f"{ptr}/elements/{i}"
                if isinstance(element, dict) and element.get("type") == "image":
                    self.image_element(element, eptr)
                elif isinstance(element, dict):
                    self.text_obj(element, eptr, 3000)
                else:
                    self.err(eptr, "must be an image element or a text object")
        elif kind == "context_actions":
            elements = self.items(
                block.get("elements"), f"{ptr}/elements", maximum=5, name="elements"
            )
            self._elements(elements, f"{ptr}/elements", {"feedback_buttons", "icon_button"})
        elif kind == "input":
            self.text(block, "label", ptr, 2000, plain_only=True)
            self.text(block, "hint", ptr, 2000, plain_only=True, required=False)
            if "element" not in block:
                self.err(f"{ptr}/element", "missing required field: element")
            else:
                self.element(block["element"], f"{ptr}/element", _INPUT_ELEMENTS)
        elif kind == "video":
            self.string(block, "alt_text", ptr, 2000, required=True)
            self.text(block, "title", ptr, 200, plain_only=True)
            for key in ("video_url", "thumbnail_url"):
                self.string(block, key, ptr, 3000, required=True)
        elif kind == "markdown":
            self.string(block, "text", ptr, 12000, required=True)
        elif kind == "rich_text" and not isinstance(block.get("elements"), list):
            self.err(f"{ptr}/elements", "missing required field: elements")

    def _elements(self, elements: list[Any], ptr: str, allowed: set[str]) -> None:
        action_ids: set[str] = set()
        for i, element in enumerate(elements):
            action_id = self.element(element, f"{ptr}/{i}", allowed)
            if action_id is not None:
                if action_id in action_ids:
                    self.err(f"{ptr}/{i}/action_id", f"duplicate action_id {action_id!r}")
                action_ids.add(action_id)


def _is_private_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_unspecified


def validate_blocks(
    blocks: Any,
    *,
    surface: str,
    path: str = "/blocks",
    reject_private_image_urls: bool = True,
    file_lookup: FileLookup | None = None,
) -> list[str]:
    """Checks Block Kit ``blocks`` for ``surface`` ("message", "modal" or "home").

    Returns Slack-style error strings (empty list when valid), each naming the JSON pointer of
    the offending value, e.g. ``"must be less than 76 characters (got 80)
    [json-pointer:/blocks/0/elements/0/text/text]"``. ``file_lookup`` receives a ``slack_file``
    object and returns a problem description or None.
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {SURFACES}, not {surface!r}")
    checker = _BlockChecker(
        reject_private_image_urls=reject_private_image_urls, file_lookup=file_lookup
    )
    checker.blocks(blocks, path, surface)
    return checker.errors


def validate_view(
    view: Any,
    *,
    path: str = "/view",
    reject_private_image_urls: bool = True,
    file_lookup: FileLookup | None = None,
) -> list[str]:
    """Checks a modal or Home tab view object (title/submit/close, metadata, ids and blocks)."""
    checker = _BlockChecker(
        reject_private_image_urls=reject_private_image_urls, file_lookup=file_lookup
    )
    if not isinstance(view, dict):
        checker.err(path, "view must be an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.err(f"{path}/type", f"must be modal or home (got {kind!r})")
        return checker.errors
    checker.id_field(view, "callback_id", path)
    checker.id_field(view, "external_id", path)
    checker.string(view, "private_metadata", path, 3000)
    if kind == "modal":
        checker.text(view, "title", path, 24, plain_only=True)
        checker.text(view, "submit", path, 24, plain_only=True, required=False)
        checker.text(view, "close", path, 24, plain_only=True, required=False)
        blocks = view.get("blocks")
        if (
            isinstance(blocks, list)
            and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
            and "submit" not in view
        ):
            checker.err(f"{path}/submit", "submit is required when a view has input blocks")
    if "blocks" not in view:
        checker.err(f"{path}/blocks", "missing required field: blocks")
    else:
        checker.blocks(view["blocks"], f"{path}/blocks", kind)
    return checker.errors


# --------------------------------------------------------------------------------------------
# Records and faults
# --------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One request the emulator received.

    ``headers`` keys are lower-cased. ``response`` is the JSON body answered (None for file
    bytes), ``status`` the HTTP status, ``fault`` the injected fault kind that answered it.
    """

    method: str
    params: dict[str, Any]
    token: str | None
    headers: dict[str, str]
    status: int = 200
    response: Any = None
    fault: str | None = None
    at: float = field(default_factory=time.time)
    connection: str | None = None  # the client's address and port: one per TCP connection


FAULT_KINDS = ("ratelimited", "server_error", "slow", "html_login", "connection_reset")


@dataclass
class _Fault:
    kind: str
    times: int
    retry_after: int
    delay: float
    status: int


@dataclass
class _Channel:
    info: JsonDict
    members: list[str]
    messages: dict[str, JsonDict] = field(default_factory=dict)


@dataclass
class _File:
    obj: JsonDict
    content: bytes
    served_content_type: str | None
    deleted: bool = False


@dataclass
class _ResponseUrl:
    url: str
    created: float
    channel: str | None
    message_ts: str | None
    user: str | None
    uses: int = 0


@dataclass
class _OpenidCode:
    """An authorization code from /openid/connect/authorize, redeemable once."""

    user_id: str
    scopes: frozenset[str]
    redirect_uri: str
    nonce: str | None
    issued: float  # time.monotonic(), for openid_code_ttl
    auth_time: int
    team_id: str = ""


@dataclass
class _OauthCode:
    """An install's code from /oauth/v2/authorize, redeemable once with oauth.v2.access."""

    team_id: str
    user_id: str
    scopes: tuple[str, ...]
    user_scopes: tuple[str, ...]
    redirect_uri: str | None  # as given to authorize (None: the app's configured one)
    issued: float  # time.monotonic(), for oauth_code_ttl


@dataclass
class _Token:
    """A token oauth.v2.access issued: ``kind`` "bot" or "user"; ``expires_at`` for rotation."""

    kind: str
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float | None  # time.time(); None: never expires


@dataclass
class _Refresh:
    """What a refresh token (token rotation) renews, redeemable once."""

    team_id: str
    kind: str
    user_id: str
    scopes: tuple[str, ...]


@dataclass
class _OpenidGrant:
    """What an access token from openid.connect.token may read with openid.connect.userInfo."""

    user_id: str
    scopes: frozenset[str]
    team_id: str = ""


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    reset: bool = False


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


SLACK_LOGIN_PAGE_HTML = """<!DOCTYPE html>
<html lang="en-US" class="supports_custom_scrollbar">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Slack</title>
<meta name="robots" content="noindex, nofollow">
<link rel="stylesheet" href="https://a.slack-edge.com/bv1-10/signin-core.css">
</head>
<body class="index">
<div id="page"><div id="page_contents" data-qa="page_contents">
<div class="card align_center span_6_of_12 col float_none margin_auto large_bottom_margin">
<h1>Sign in to {team_name}</h1>
<p class="medium_bottom_margin">{team_domain}.slack.com</p>
<form id="signin_form" action="/" method="post" accept-accept-charset="UTF-8">
<input type="hidden" name="signin" value="1">
<input type="hidden" name="redir" value="">
<input type="email" id="email" name="email" placeholder="you@example.com">
<input type="password" id="password" name="password" placeholder="password">
<button id="signin_btn" type="submit" class="btn btn_large full_width">Sign in</button>
</form>
</div></div></div>
</body>
</html>
"""

_OPENID_PAGE_HTML = """<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""

#: The ``iss`` of Slack's id_tokens (also in https://slack.com/.well-known/openid-configuration).
_OPENID_ISSUER = "https://slack.com"
#: Lifetime of an id_token, as in Slack's example (``exp`` - ``iat``).
_ID_TOKEN_TTL = 300
_SLACK_CLAIM = "https://slack.com/"
_TEAM_IMAGE_SIZES = (34, 44, 68, 88, 102, 132, 230)

_ALNUM = string.ascii_uppercase + string.digits
_JSON_STRING_PARAMS = ("blocks", "view", "attachments", "metadata")


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _json(obj: Any, status: int = 200, **headers: str) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), headers=dict(headers), json_body=obj)


def _html_page(title: str, body: str, status: int = 200) -> _Reply:
    page = _OPENID_PAGE_HTML.format(title=html.escape(title), body=body)
    return _Reply(status, page.encode(), "text/html; charset=utf-8")


def _error_page(problem: str) -> _Reply:
    return _html_page("Something went wrong", f"<p>{html.escape(problem)}</p>", 400)


def _new_code() -> str:
    """An OAuth authorization code, shaped like Slack's."""
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**13)}.{secrets.token_hex(32)}"


_SCOPE_NAME = re.compile(r"[a-z][a-z0-9_.-]*(:[a-z0-9_.-]+)*")


def _scope_list(value: str) -> tuple[str, ...]:
    """A comma-separated scope parameter (OAuth v2), in order, without blanks."""
    return tuple(scope.strip() for scope in value.split(",") if scope.strip())


def _redirect_allowed(uri: str, configured: str) -> bool:
    """Slack: a redirect_uri must match a configured Redirect URL or be a subdirectory of it."""
    got, want = urlsplit(uri), urlsplit(configured)
    if (got.scheme, got.netloc) != (want.scheme, want.netloc):
        return False
    base = want.path.rstrip("/")
    return got.path == want.path or got.path.startswith(base + "/")


def _redirect(base: str, params: Mapping[str, str]) -> _Reply:
    location = base + ("&" if "?" in base else "?") + urlencode(params)
    return _Reply(302, b"", "text/html; charset=utf-8", headers={"Location": location})


def _event_ts() -> str:
    return f"{time.time():.6f}"


def _ok(**payload: Any) -> JsonDict:
    return {"ok": True, **payload}


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.b64decode(str(cursor).encode()).decode().partition(":")
        if kind != "offset":
            raise ValueError(kind)
        return int(value)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise _ApiError("invalid_cursor") from exc


def _page(
    items: list[Any], params: Mapping[str, Any], default_limit: int = 100
) -> tuple[list[Any], str]:
    try:
        limit = int(params.get("limit") or default_limit)
    except (TypeError, ValueError) as exc:
        raise _ApiError("invalid_limit") from exc
    limit = max(1, min(limit, 1000))
    start = _decode_cursor(params.get("cursor"))
    chunk = items[start : start + limit]
    nxt = _encode_cursor(start + limit) if start + limit < len(items) else ""
    return chunk, nxt


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class SlackEmulator:
    """Stateful Slack Web API + file + response_url + Socket Mode fake bound to 127.0.0.1.

    The listening sockets are bound in the constructor (so URLs are known before `start`);
    `start` begins serving, `stop` (or leaving the ``with`` block) shuts everything down.
    """

    #: Reject image_url values pointing at loopback/private hosts ("downloading image failed").
    reject_private_image_urls: bool = True
    #: Like the chat:write.public scope: post to public channels the bot is not a member of.
    chat_write_public: bool = False
    #: Seconds a trigger id from `new_trigger_id` stays valid (Slack: 3).
    trigger_ttl: float = 3.0
    #: Uses and lifetime of a response_url (Slack: 5 uses within 30 minutes).
    response_url_max_uses: int = 5
    response_url_ttl: float = 1800.0
    #: Max stacked modals per root (Slack: 3).
    max_view_stack: int = 3
    #: Seconds a Sign in with Slack authorization code stays redeemable (OAuth: 10 minutes).
    openid_code_ttl: float = 600.0
    #: Seconds an install's code from /oauth/v2/authorize stays redeemable (Slack: 10 minutes).
    oauth_code_ttl: float = 600.0
    #: The app's display name, shown on the install page.
    app_name: str = "Image Library"
    #: Token rotation (App Manage > OAuth & Permissions): installs get expiring tokens.
    token_rotation: bool = False
    #: Seconds a rotating access token lives (Slack: 12 hours); read from the primary.
    token_ttl: float = 43200.0

    def __init__(
        self,
        *,
        team_id: str = "T0TEAM1",
        team_name: str = "Acme",
        bot_token: str = "xoxb-test-token",  # noqa: S107 - a fake token
        app_token: str = "xapp-test-token",  # noqa: S107 - a fake token
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        bot_name: str = "imagebot",
        app_id: str = "A0EMUAPP1",
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = "".join(ch for ch in team_name.lower() if ch.isalnum()) or "team"
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.verification_token = "emulator-verification-token"
        #: Tokens answered with ``token_revoked``.
        self.revoked_tokens: set[str] = set()

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._handlers: dict[str, Callable[[Call], JsonDict]] = {}

        self._ts_base = int(time.time())
        self._ts_counter = itertools.count(1)
        self.users: dict[str, JsonDict] = {}
        self._channels: dict[str, _Channel] = {}
        self._files: dict[str, _File] = {}
        #: Ephemeral messages posted (chat.postEphemeral and ephemeral response_url posts).
        self.ephemeral_messages: list[JsonDict] = []
        self._reactions: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.views: dict[str, JsonDict] = {}
        self._external_ids: dict[str, str] = {}
        self._view_stacks: dict[str, list[str]] = {}
        self._last_root_view: str | None = None
        #: Current Home tab view per user id.
        self.home_views: dict[str, JsonDict] = {}
        self._triggers_issued: dict[str, tuple[float, str | None]] = {}
        self._triggers_used: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}

        # Socket Mode state
        self._tickets: set[str] = set()
        self._ws_conns: list[ServerConnection] = []
        self._acks: dict[str, JsonDict] = {}

        # Sign in with Slack (OpenID Connect) state
        #: The app's credentials (Basic Information > App Credentials), for openid.connect.token.
        self.client_id = f"{secrets.randbelow(9 * 10**9) + 10**9}.{secrets.randbelow(10**12)}"
        self.client_secret = secrets.token_hex(16)
        #: The ``kid`` of the id_token signing key, published at ``/openid/connect/keys``.
        self.openid_kid = secrets.token_urlsafe(32)
        self._openid_key: rsa.RSAPrivateKey | None = None  # made on first use (tens of ms)
        self._signed_in: tuple[str, str] | None = None  # (team id, user id)
        self._openid_codes: dict[str, _OpenidCode] = {}
        self._openid_grants: dict[str, _OpenidGrant] = {}

        # Workspaces and installs (OAuth v2). The primary (this one unless `add_team` made it)
        # answers every /api/ call, routing it to the team its token belongs to.
        self._root: SlackEmulator = self
        self._teams: dict[str, SlackEmulator] = {team_id: self}
        #: Redirect URLs of the app's OAuth settings; empty: any redirect_uri is accepted.
        self.oauth_redirect_urls: list[str] = []
        self._installer: tuple[str, str] | None = None  # (team id, user id), see install_as
        self._oauth_codes: dict[str, _OauthCode] = {}
        self._refresh_tokens: dict[str, _Refresh] = {}
        self._issued: dict[str, _Token] = {}  # this team's tokens from oauth.v2.access

        self._started = False
        self._stopped = False
        handler = type("_BoundHandler", (_Handler,), {"emulator": self})
        self._http = _HTTPServer(("127.0.0.1", 0), handler)
        self._http_port = int(self._http.server_address[1])
        self._ws: Server = serve(
            self._ws_handler,
            "127.0.0.1",
            0,
            process_request=self._ws_process_request,
            compression=None,
            ping_interval=None,
            close_timeout=1,
            max_size=8 * 2**20,
        )
        self._ws_port = int(self._ws.socket.getsockname()[1])
        self._threads: list[threading.Thread] = []

        self.add_user(bot_user_id, bot_name, real_name=bot_name, is_bot=True)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http_port}"

    @property
    def api_url(self) -> str:
        """The Web API, for every team: the primary's (calls are routed by their token)."""
        return f"{self._root.base_url}/api/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws_port}/link/"

    def start(self) -> SlackEmulator:
        if self._started:
            raise RuntimeError("SlackEmulator already started")
        if self._stopped:
            raise RuntimeError("SlackEmulator cannot be restarted; create a new one")
        self._started = True
        for team in self._other_teams():
            if not team._started:
                team.start()
        for target, name in (
            (lambda: self._http.serve_forever(poll_interval=0.02), "slack-emulator-http"),
            (self._ws.serve_forever, "slack-emulator-ws"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def open_connections(self) -> int:
        """How many clients' connections are open now."""
        return self._http.open_connections()

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, as Slack closes the ones left
        idle: a client must notice before it sends its next call on one."""
        self._http.close_open_connections()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for team in self._other_teams():
            team.stop()
        if self._started:
            self._http.shutdown()
            self._ws.shutdown()
        else:
            self._ws.socket.close()
        self._http.close_open_connections()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- workspaces ---------------------------------------------------------------------------
    def _other_teams(self) -> list[SlackEmulator]:
        """The teams `add_team` added (on the primary; none on the others)."""
        if self._root is not self:
            return []
        with self._lock:
            return [team for team in self._teams.values() if team is not self]

    def add_team(
        self, team_id: str, team_name: str, *, bot_token: str | None = None
    ) -> SlackEmulator:
        """Another workspace with the app installed, served at the same `api_url`.

        The returned emulator has its own users, channels, files, messages, views, calls and
        faults, and serves its files and response_urls on its own port; API calls made with its
        tokens (``bot_token``, default ``xoxb-test-token-<team_id>``, or one `oauth.v2.access`
        issued) are answered and recorded by it. It starts and stops with the primary.
        """
        root = self._root
        with root._lock:
            if team_id in root._teams:
                raise ValueError(f"team {team_id!r} already exists")
            token = bot_token or f"xoxb-test-token-{team_id}"
            if any(team._knows_token(token) for team in root._teams.values()):
                raise ValueError(f"token {token!r} already belongs to a team")
            number = len(root._teams) + 1
            team = SlackEmulator(
                team_id=team_id,
                team_name=team_name,
                bot_token=token,
                app_token=root.app_token,
                bot_user_id=f"{root.bot_user_id}{number}",
                bot_id=f"{root.bot_id}{number}",
                bot_name=root.bot_name,
                app_id=root.app_id,
            )
            team._root, team._teams = root, root._teams
            team.verification_token = root.verification_token
            team.client_id, team.client_secret = root.client_id, root.client_secret
            root._teams[team_id] = team
            started = root._started and not root._stopped
        if started:
            team.start()
        return team

    def team(self, team_id: str) -> SlackEmulator:
        """The emulator of a team: the primary or one `add_team` added."""
        try:
            return self._root._teams[team_id]
        except KeyError:
            raise ValueError(f"unknown team {team_id!r}") from None

    def _knows_token(self, token: str) -> bool:
        return token == self.bot_token or token in self._issued or token in self.revoked_tokens

    def _team_for_token(self, token: str | None) -> SlackEmulator:
        """The team a token belongs to; the primary for none or an unknown one (invalid_auth)."""
        if token:
            with self._lock:
                for team in self._teams.values():
                    if team is not self and team._knows_token(token):
                        return team
        return self

    def _token_error(self, token: str | None) -> str | None:
        """Why Slack refuses this team's bot/user/app token, or None."""
        if not token:
            return "not_authed"
        if token in self.revoked_tokens:
            return "token_revoked"
        issued = self._issued.get(token)
        if issued is None:
            return None if token in (self.bot_token, self.app_token) else "invalid_auth"
        if issued.expires_at is not None and time.time() >= issued.expires_at:
            return "token_expired"
        return None

    # -- installs (OAuth v2) --------------------------------------------------------------------
    def install_as(self, team_id: str, user_id: str) -> None:
        """Sets who installs from /oauth/v2/authorize: ``user_id`` of ``team_id``."""
        root = self._root
        with root._lock:
            if not self.team(team_id)._can_sign_in(user_id):
                raise ValueError(f"{user_id!r} is not an active person in {team_id}")
            root._installer = (team_id, user_id)

    def uninstall(self, team_id: str) -> JsonDict:
        """Uninstalls the app from a team: revokes all its tokens (bot and user, and their
        refresh tokens); returns the ``app_uninstalled`` Events API envelope Slack sends.
        """
        team = self.team(team_id)
        team._revoke(bots_only=False)
        return team.event_envelope({"type": "app_uninstalled", "event_ts": _event_ts()})

    def revoke_bot_tokens(self, team_id: str) -> JsonDict:
        """Revokes a team's bot tokens (and their refresh tokens); returns the
        ``tokens_revoked`` Events API envelope Slack sends.
        """
        team = self.team(team_id)
        team._revoke(bots_only=True)
        event = {
            "type": "tokens_revoked",
            "tokens": {"oauth": [], "bot": [team.bot_user_id]},
            "event_ts": _event_ts(),
        }
        return team.event_envelope(event)

    def _revoke(self, *, bots_only: bool) -> None:
        root = self._root
        with root._lock:
            kinds = {"bot"} if bots_only else {"bot", "user"}
            self.revoked_tokens.add(self.bot_token)
            self.revoked_tokens.update(t for t, i in self._issued.items() if i.kind in kinds)
            for key, ref in list(root._refresh_tokens.items()):
                if ref.team_id == self.team_id and ref.kind in kinds:
                    del root._refresh_tokens[key]

    def _issue(self, kind: str, user_id: str, scopes: tuple[str, ...]) -> JsonDict:
        """A new token of this team (lock of the primary held): access_token, and with token
        rotation refresh_token and expires_in.
        """
        root = self._root
        prefix = "xoxb" if kind == "bot" else "xoxp"
        rotating = root.token_rotation
        if rotating:
            token = f"xoxe.{prefix}-1-{secrets.token_urlsafe(96)}"
        else:
            token = (
                f"{prefix}-{secrets.randbelow(10**11)}-{secrets.randbelow(10**11)}"
                f"-{secrets.token_urlsafe(18)}"
            )
        ttl = root.token_ttl
        expires_at = time.time() + ttl if rotating else None
        self._issued[token] = _Token(kind, user_id, scopes, expires_at)
        out: JsonDict = {"access_token": token}
        if rotating:
            refresh = f"xoxe-1-{secrets.token_urlsafe(96)}"
            root._refresh_tokens[refresh] = _Refresh(self.team_id, kind, user_id, scopes)
            out.update(refresh_token=refresh, expires_in=max(1, round(ttl)))
        return out

    # -- ids ----------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        n = next(self._ts_counter) * 100
        return f"{self._ts_base + n // 1_000_000}.{n % 1_000_000:06d}"

    def new_trigger_id(self, *, view_id: str | None = None) -> str:
        """A trigger id as found in interaction payloads: usable once, within `trigger_ttl`.

        ``view_id`` ties it to a modal (an interaction inside that modal), for views.push.
        """
        trigger = f"{int(time.time() * 1000)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers_issued[trigger] = (time.monotonic(), view_id)
        return trigger

    # -- state: users, channels, files --------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        team_id: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        tz: str = "Europe/London",
    ) -> JsonDict:
        """Adds (or replaces) a user; returns the live user object users.info answers."""
        real = real_name if real_name is not None else name
        display = display_name if display_name is not None else name
        team = team_id or self.team_id
        avatar = f"https://secure.gravatar.com/avatar/{user_id.lower()}.jpg"
        profile: JsonDict = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real,
            "real_name_normalized": real,
            "display_name": display,
            "display_name_normalized": display,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": user_id.lower()[:12],
            "first_name": real.split(" ")[0] if real else "",
            "last_name": " ".join(real.split(" ")[1:]) if real else "",
            "image_24": avatar,
            "image_48": avatar,
            "image_72": avatar,
            "image_192": avatar,
            "image_512": avatar,
            "team": team,
        }
        if is_bot:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else f"B{user_id[1:]}"
            profile["api_app_id"] = self.app_id if user_id == self.bot_user_id else ""
            profile["always_active"] = False
        else:
            profile["email"] = email if email is not None else f"{name}@example.com"
        user: JsonDict = {
            "id": user_id,
            "team_id": team,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real,
            "tz": tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "is_email_confirmed": not is_bot,
            "who_can_share_contact_card": "EVERYONE",
        }
        with self._lock:
            self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        is_im: bool = False,
        members: Iterable[str] = (),
        is_ext_shared: bool = False,
        is_mpim: bool = False,
    ) -> JsonDict:
        """Adds a conversation. The bot is a member only if ``bot_user_id`` is in ``members``."""
        member_list = list(dict.fromkeys(members))
        legacy_group = is_private and channel_id.startswith("G") and not is_mpim
        info: JsonDict = {
            "id": channel_id,
            "name": name,
            # Legacy private channels (G... ids) are groups; newer ones are private channels.
            "is_channel": not (is_im or is_mpim or legacy_group),
            "is_group": legacy_group,
            "is_im": is_im,
            "is_mpim": is_mpim,
            "is_private": is_private or is_im or is_mpim,
            "created": int(time.time()),
            "is_archived": False,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": is_ext_shared,
            "is_ext_shared": is_ext_shared,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "creator": member_list[0] if member_list else "",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "context_team_id": self.team_id,
        }
        if is_im:
            others = [m for m in member_list if m != self.bot_user_id]
            info["user"] = others[0] if others else ""
            info["is_user_deleted"] = False
            info.pop("name", None)
            info.pop("name_normalized", None)
            if self.bot_user_id not in member_list:
                member_list.append(self.bot_user_id)
        with self._lock:
            self._channels[channel_id] = _Channel(info=info, members=member_list)
            return self._channel_obj(self._channels[channel_id])

    def channel_members(self, channel_id: str) -> list[str]:
        with self._lock:
            return list(self._channels[channel_id].members)

    def set_channel_members(self, channel_id: str, members: Iterable[str]) -> None:
        with self._lock:
            self._channels[channel_id].members = list(dict.fromkeys(members))

    def messages(self, channel_id: str) -> list[JsonDict]:
        """Stored messages of a channel, oldest first (deep copies)."""
        with self._lock:
            ch = self._channels[channel_id]
            return [copy.deepcopy(ch.messages[ts]) for ts in sorted(ch.messages, key=float)]

    def message(self, channel_id: str, ts: str) -> JsonDict | None:
        with self._lock:
            msg = self._channels[channel_id].messages.get(ts)
            return copy.deepcopy(msg) if msg is not None else None

    def reactions(self, channel_id: str, ts: str) -> dict[str, list[str]]:
        """Reaction name -> user ids, for a stored message."""
        with self._lock:
            return copy.deepcopy(self._reactions.get((channel_id, ts), {}))

    def add_file(
        self,
        file_id: str,
        *,
        name: str,
        content: bytes,
        mimetype: str,
        filetype: str,
        user: str,
        title: str | None = None,
        served_content_type: str | None = None,
    ) -> JsonDict:
        """Adds a hosted file; returns it as a message event's ``files[]`` entry (a copy)."""
        now = int(time.time())
        quoted = quote(name, safe="")
        pri = f"{self.base_url}/files-pri/{self.team_id}-{file_id}"
        pretty = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF", "webp": "WebP"}
        obj: JsonDict = {
            "id": file_id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": title if title is not None else name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": pretty.get(filetype, filetype.upper()),
            "user": user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{pri}/{quoted}",
            "url_private_download": f"{pri}/download/{quoted}",
            "media_display_type": "unknown",
            "permalink": f"https://{self.team_domain}.slack.com/files/{user}/{file_id}/{quoted}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{file_id}-{_rand(10)}",
            "is_starred": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }
        with self._lock:
            self._files[file_id] = _File(
                obj=obj, content=bytes(content), served_content_type=served_content_type
            )
            return copy.deepcopy(obj)

    def file_stub(self, file_id: str) -> JsonDict:
        """The Slack Connect stub that may replace a file in ``files[]``: call files.info."""
        with self._lock:
            obj = self._files[file_id].obj
            return {
                "id": file_id,
                "file_access": "check_file_info",
                "created": obj["created"],
                "timestamp": obj["timestamp"],
                "user": obj["user"],
            }

    def delete_file(self, file_id: str) -> None:
        with self._lock:
            self._files[file_id].deleted = True

    def file_object(self, file_id: str) -> JsonDict:
        with self._lock:
            return copy.deepcopy(self._files[file_id].obj)

    # -- events and interaction payloads ------------------------------------------------------
    def event_envelope(self, event: JsonDict, *, event_id: str | None = None) -> JsonDict:
        """Wraps an event as an Events API ``event_callback`` (also a Socket Mode payload)."""
        ext_shared = False
        channel_id = event.get("channel") or event.get("channel_id")
        with self._lock:
            if isinstance(channel_id, str) and channel_id in self._channels:
                ext_shared = bool(self._channels[channel_id].info.get("is_ext_shared"))
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{_rand(10)}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": ext_shared,
            "event_context": f"4-{_rand(24)}",
        }

    def message_event(
        self,
        *,
        channel: str,
        user: str,
        text: str = "",
        files: Iterable[str | Mapping[str, Any]] = (),
        ts: str | None = None,
        thread_ts: str | None = None,
        subtype: str | None = "file_share",
        event_id: str | None = None,
    ) -> JsonDict:
        """A full Events API envelope for a user's message, also stored in channel history.

        ``files`` holds file ids (full objects are inserted) or ready objects such as
        `file_stub`. Without files, the default ``file_share`` subtype is dropped (a plain
        message); pass ``subtype=None`` to drop it explicitly.
        """
        file_list = list(files)
        with self._lock:
            ch = self._channels.get(channel)
            if ch is None:
                raise ValueError(f"unknown channel {channel!r}: call add_channel() first")
            ts = ts or self._next_ts()
            objs: list[JsonDict] = []
            for item in file_list:
                if isinstance(item, str):
                    if item not in self._files:
                        raise ValueError(f"unknown file {item!r}: call add_file() first")
                    stored = self._files[item].obj
                    objs.append(copy.deepcopy(stored))
                else:
                    objs.append(copy.deepcopy(dict(item)))
                    stored = self._files[item["id"]].obj if item.get("id") in self._files else None
                if stored is not None:
                    self._note_share(stored, ch)
            event: JsonDict = {"type": "message"}
            if subtype is not None and (file_list or subtype != "file_share"):
                event["subtype"] = subtype
            event.update({"text": text, "user": user, "ts": ts})
            if objs:
                event["files"] = objs
                event["upload"] = False
                event["display_as_bot"] = False
            if text:
                event["blocks"] = [
                    {
                        "type": "rich_text",
                        "block_id": _rand(5),
                        "elements": [
                            {
                                "type": "rich_text_section",
                                "elements": [{"type": "text", "text": text}],
                            }
                        ],
                    }
                ]
            if thread_ts:
                event["thread_ts"] = thread_ts
            user_team = self.users.get(user, {}).get("team_id", self.team_id)
            event.update(
                {
                    "client_msg_id": str(uuid.uuid4()),
                    "team": user_team,
                    "user_team": user_team,
                    "source_team": user_team,
                    "channel": channel,
                    "event_ts": ts,
                    "channel_type": self._channel_type(ch),
                }
            )
            stored_msg = {
                k: copy.deepcopy(v)
                for k, v in event.items()
                if k not in ("channel", "event_ts", "channel_type")
            }
            self._store_message(ch, stored_msg)
        return self.event_envelope(event, event_id=event_id)

    def file_shared_event(
        self, file_id: str, *, channel: str, user: str, event_id: str | None = None
    ) -> JsonDict:
        """The companion ``file_shared`` event Slack sends for the same file."""
        event = {
            "type": "file_shared",
            "channel_id": channel,
            "file_id": file_id,
            "user_id": user,
            "file": {"id": file_id},
            "event_ts": self._next_ts(),
        }
        return self.event_envelope(event, event_id=event_id)

    def slash_command(
        self, command: str, *, user: str, channel: str, text: str = ""
    ) -> dict[str, str]:
        """The form fields of a slash command (fresh trigger_id and response_url)."""
        with self._lock:
            ch = self._channels.get(channel)
            channel_name = ch.info.get("name", "directmessage") if ch else "unknown"
            user_name = self.users.get(user, {}).get("name", user)
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": str(channel_name),
            "user_id": user,
            "user_name": str(user_name),
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.new_response_url(channel=channel, user=user),
            "trigger_id": self.new_trigger_id(),
        }

    def block_action(
        self,
        *,
        user: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        action_type: str = "button",
    ) -> JsonDict:
        """A ``block_actions`` payload for a click in a stored message or a view."""
        with self._lock:
            user_name = self.users.get(user, {}).get("name", user)
            payload: JsonDict = {
                "type": "block_actions",
                "user": {
                    "id": user,
                    "username": user_name,
                    "name": user_name,
                    "team_id": self.team_id,
                },
                "api_app_id": self.app_id,
                "token": self.verification_token,
                "team": {"id": self.team_id, "domain": self.team_domain},
                "enterprise": None,
                "is_enterprise_install": False,
                "trigger_id": self.new_trigger_id(view_id=view_id),
                "state": {"values": {}},
            }
            if view_id is not None:
                payload["container"] = {"type": "view", "view_id": view_id}
                payload["view"] = copy.deepcopy(self.views[view_id])
            elif channel is not None:
                ch = self._channels.get(channel)
                payload["container"] = {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel,
                    "is_ephemeral": False,
                }
                payload["channel"] = {
                    "id": channel,
                    "name": ch.info.get("name", "directmessage") if ch else "unknown",
                }
                if ch is not None and message_ts in ch.messages:
                    payload["message"] = copy.deepcopy(ch.messages[message_ts])
                payload["response_url"] = self.new_response_url(
                    channel=channel, message_ts=message_ts, user=user
                )
        action: JsonDict = {
            "action_id": action_id,
            "block_id": block_id or _rand(5),
            "type": action_type,
            "action_ts": f"{time.time():.6f}",
        }
        if value is not None:
            action["value"] = value
        payload["actions"] = [action]
        return payload

    def view_submission(
        self, *, user: str, view_id: str, values: Mapping[str, Any] | None = None
    ) -> JsonDict:
        """A ``view_submission`` payload for a stored view with ``state.values``."""
        with self._lock:
            view = copy.deepcopy(self.views[view_id])
            user_name = self.users.get(user, {}).get("name", user)
        view["state"] = {"values": dict(values or {})}
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": self.verification_token,
            "trigger_id": self.new_trigger_id(view_id=view_id),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # -- records --------------------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def wait_for(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 10.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Waits until ``count`` matching calls were recorded; returns all matching calls."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    c
                    for c in self.calls
                    if c.method == method and (predicate is None or predicate(c))
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = Counter(c.method for c in self.calls)
                    summary = ", ".join(f"{m} x{n}" for m, n in seen.items()) or "none"
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} call(s) to {method!r}"
                        f"{' matching the predicate' if predicate else ''}; got {len(found)}. "
                        f"Recorded calls: {summary}"
                    )
                self._cond.wait(min(left, 0.05))

    # -- faults ---------------------------------------------------------------------------------
    def inject(
        self,
        target: str,
        kind: str,
        *,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 0.0,
        status: int = 500,
    ) -> None:
        """Queues a fault for ``target`` (API method, "files.download" or "response_url").

        Kinds: ratelimited, server_error, slow, html_login, connection_reset (close the socket
        without an answer) and ``error:<code>``.
        """
        if kind not in FAULT_KINDS and not (kind.startswith("error:") and len(kind) > 6):
            raise ValueError(f"unknown fault kind {kind!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(target, []).append(
                _Fault(kind=kind, times=times, retry_after=retry_after, delay=delay, status=status)
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, target: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(target)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _fault_reply(self, fault: _Fault) -> _Reply | None:
        """The answer for a fault, or None to continue normally (after a "slow" delay)."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return None
        if fault.kind == "ratelimited":
            return _json(
                {"ok": False, "error": "ratelimited"},
                429,
                **{"Retry-After": str(fault.retry_after)},
            )
        if fault.kind == "server_error":
            return _json({"ok": False, "error": "internal_error"}, fault.status)
        if fault.kind == "html_login":
            return self._login_page()
        if fault.kind == "connection_reset":
            return _Reply(0, b"", reset=True)
        return _json({"ok": False, "error": fault.kind.removeprefix("error:")})

    def _login_page(self) -> _Reply:
        html = SLACK_LOGIN_PAGE_HTML.replace("{team_name}", self.team_name).replace(
            "{team_domain}", self.team_domain
        )
        return _Reply(200, html.encode(), content_type="text/html; charset=utf-8")

    # -- custom methods -------------------------------------------------------------------------
    def set_handler(self, method: str, handler: Callable[[Call], JsonDict]) -> None:
        """Answers ``method`` with ``handler(call)`` (after the token check, before built-ins).

        The openid.connect.* methods have no bot token check: they check their own credentials.
        """
        with self._lock:
            self._handlers[method] = handler

    # -- response_url -----------------------------------------------------------------------------
    def new_response_url(
        self,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> str:
        """A response_url; ``channel``/``message_ts`` let replace/delete_original act on it."""
        key = secrets.token_urlsafe(16)
        url = f"{self.base_url}/response/{key}"
        with self._lock:
            self._response_urls[key] = _ResponseUrl(
                url=url, created=time.time(), channel=channel, message_ts=message_ts, user=user
            )
        return url

    # -- Sign in with Slack (OpenID Connect) ------------------------------------------------------
    def sign_in_as(self, user_id: str | None, *, team_id: str | None = None) -> None:
        """Sets the browser's Slack session: /openid/connect/authorize then approves as ``user_id``
        at once. ``None`` signs out: authorize answers a page to pick who signs in.

        ``team_id`` is the user's workspace (default: this emulator's team, else the first team
        with that person).
        """
        root = self._root
        with root._lock:
            if user_id is None:
                root._signed_in = None
                return
            teams = [self.team(team_id)] if team_id else [self, *root._teams.values()]
            team = next((t for t in teams if t._can_sign_in(user_id)), None)
            if team is None:
                where = team_id or self.team_id
                raise ValueError(f"{user_id!r} is not an active person in {where}")
            root._signed_in = (team.team_id, user_id)

    def _can_sign_in(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        return (
            user is not None
            and not user["is_bot"]
            and not user["deleted"]
            and user["team_id"] == self.team_id
        )

    def _signing_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._openid_key is None:
                self._openid_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._openid_key

    def _jwks(self) -> JsonDict:
        """The JSON Web Key Set of https://slack.com/openid/connect/keys, with our key."""
        jwk = json.loads(RSAAlgorithm.to_jwk(self._signing_key().public_key()))
        return {"keys": [{**jwk, "kid": self.openid_kid, "alg": "RS256", "use": "sig"}]}

    def _authorize(self, step: str, params: Mapping[str, str]) -> _Reply:
        """/openid/connect/authorize, and its ``/approve`` and ``/cancel`` links (lock held)."""
        problem = self._authorize_problem(params)
        if problem is not None:
            return _error_page(problem)
        redirect_uri = params["redirect_uri"]
        state = {"state": params["state"]} if "state" in params else {}
        if step == "/cancel":
            return _redirect(redirect_uri, {"error": "access_denied", **state})
        session = self._signed_in
        if step == "/approve":
            session = (params.get("team", self.team_id), params.get("user", ""))
        elif session is not None and session[0] != params.get("team", session[0]):
            session = None  # signed in elsewhere: pick someone of the asked team
        if session is None:
            return self._picker_page(params)
        team = self._teams.get(session[0])
        if team is None or not team._can_sign_in(session[1]):
            return _error_page("That person cannot sign in.")
        code = _new_code()
        self._openid_codes[code] = _OpenidCode(
            user_id=session[1],
            scopes=_scopes(params),
            redirect_uri=redirect_uri,
            nonce=params.get("nonce"),
            issued=time.monotonic(),
            auth_time=int(time.time()),
            team_id=team.team_id,
        )
        return _redirect(redirect_uri, {"code": code, **state})

    def _authorize_problem(self, params: Mapping[str, str]) -> str | None:
        """Why Slack would show an error page instead of redirecting back, or None."""
        if params.get("client_id") != self.client_id:
            return "Invalid client_id parameter."
        if params.get("response_type") != "code":
            return "Invalid response_type parameter: it must be code."
        scopes = _scopes(params)
        if "openid" not in scopes or not scopes <= {"openid", "email", "profile"}:
            return "Invalid scope parameter: openid, and optionally email and profile."
        if not params.get("redirect_uri"):
            return "Missing redirect_uri parameter."
        if params.get("team", self.team_id) not in self._teams:
            return f"Unknown team {params['team']}."
        return None

    def _picker_page(self, params: Mapping[str, str]) -> _Reply:
        """What a browser with no Slack session sees: the people to sign in as (those of the
        asked ``team``, else of every workspace).
        """
        query = {key: value for key, value in params.items() if key not in ("user", "team")}
        asked = params.get("team")
        teams = [self._teams[asked]] if asked else list(self._teams.values())
        items: list[str] = []
        for team in teams:
            for user in team.users.values():
                if team._can_sign_in(user["id"]):
                    who = {"team": team.team_id, "user": user["id"]}
                    href = "/openid/connect/authorize/approve?" + urlencode({**query, **who})
                    label = f"{user['real_name']} (@{user['name']})"
                    if len(teams) > 1:
                        label += f" in {team.team_name}"
                    items.append(f'<li><a href="{html.escape(href)}">{html.escape(label)}</a></li>')
        cancel = "/openid/connect/authorize/cancel?" + urlencode(params)
        listing = "\n".join(items)
        where = ", ".join(f"{team.team_domain}.slack.com" for team in teams)
        body = (
            f"<p>Choose who signs in to {html.escape(where)}.</p>\n"
            f'<ul aria-label="People">\n{listing}\n</ul>\n'
            f'<p><a href="{html.escape(cancel)}">Cancel</a></p>'
        )
        title = teams[0].team_name if len(teams) == 1 else "Slack"
        return _html_page(f"Sign in to {title}", body)

    # -- the install page (OAuth v2) ----------------------------------------------------------
    def _install_page(self, step: str, params: Mapping[str, str]) -> _Reply:
        """/oauth/v2/authorize, and its ``/approve`` and ``/cancel`` links (lock held)."""
        problem = self._install_problem(params)
        if problem is not None:
            return _error_page(problem)
        redirect_uri = params.get("redirect_uri") or self.oauth_redirect_urls[0]
        state = {"state": params["state"]} if "state" in params else {}
        if step == "/cancel":
            return _redirect(redirect_uri, {"error": "access_denied", **state})
        if step == "/approve":
            team_id, user_id = params.get("team", ""), params.get("user", "")
        elif self._installer is not None:
            team_id, user_id = self._installer
        else:
            team_id = params.get("team") or self.team_id
            user_id = next(
                (u for u in self._teams[team_id].users if self._teams[team_id]._can_sign_in(u)),
                "",
            )
        team = self._teams.get(team_id)
        if team is None or not team._can_sign_in(user_id):
            return _error_page("Nobody of that workspace can install the app.")
        if step == "/approve":
            key = _new_code()
            self._oauth_codes[key] = _OauthCode(
                team_id=team_id,
                user_id=user_id,
                scopes=_scope_list(params.get("scope", "")),
                user_scopes=_scope_list(params.get("user_scope", "")),
                redirect_uri=params.get("redirect_uri") or None,
                issued=time.monotonic(),
            )
            return _redirect(redirect_uri, {"code": key, **state})
        query = {k: v for k, v in params.items() if k not in ("team", "user")}
        allow = "/oauth/v2/authorize/approve?" + urlencode(
            {**query, "team": team_id, "user": user_id}
        )
        cancel = "/oauth/v2/authorize/cancel?" + urlencode(query)
        scopes = _scope_list(params.get("scope", "")) + _scope_list(params.get("user_scope", ""))
        listing = "\n".join(f"<li>{html.escape(scope)}</li>" for scope in scopes)
        title = (
            f"{self.app_name} is requesting permission to access the {team.team_name} "
            "Slack workspace"
        )
        body = (
            f"<p>{html.escape(team.team_domain)}.slack.com, as "
            f"{html.escape(team.users[user_id]['real_name'])}</p>\n"
            f'<ul aria-label="Scopes">\n{listing}\n</ul>\n'
            f'<p><a href="{html.escape(allow)}">Allow</a></p>\n'
            f'<p><a href="{html.escape(cancel)}">Cancel</a></p>'
        )
        return _html_page(title, body)

    def _install_problem(self, params: Mapping[str, str]) -> str | None:
        """The error Slack's install page shows instead of redirecting back, or None."""
        if params.get("client_id") != self.client_id:
            return "invalid_client_id: Invalid client_id parameter."
        scopes = _scope_list(params.get("scope", ""))
        user_scopes = _scope_list(params.get("user_scope", ""))
        if not scopes or not all(_SCOPE_NAME.fullmatch(s) for s in scopes + user_scopes):
            return "invalid_scope: Invalid scope parameter."
        redirect_uri = params.get("redirect_uri") or None
        allowed = self.oauth_redirect_urls
        if redirect_uri is None and not allowed:
            return "bad_redirect_uri: No redirect_uri given and none configured."
        matches = [url for url in allowed if redirect_uri and _redirect_allowed(redirect_uri, url)]
        if redirect_uri and allowed and not matches:
            return (
                "bad_redirect_uri: redirect_uri did not match any configured URIs. "
                f"Passed URI: {redirect_uri}"
            )
        if params.get("team") and params["team"] not in self._teams:
            return f"Unknown team {params['team']}."
        return None

    def _user_claims(self, user_id: str, scopes: frozenset[str]) -> JsonDict:
        """The claims Slack gives for ``scopes``: openid, plus email and profile if granted."""
        user = self.users[user_id]
        profile = user["profile"]
        claims: JsonDict = {
            "sub": user_id,
            f"{_SLACK_CLAIM}user_id": user_id,
            f"{_SLACK_CLAIM}team_id": self.team_id,
        }
        if "email" in scopes:
            claims.update(
                email=profile["email"],
                email_verified=user["is_email_confirmed"],
                date_email_verified=user["updated"],
            )
        if "profile" in scopes:
            claims.update(
                name=user["real_name"],
                picture=profile["image_512"],
                given_name=profile["first_name"],
                family_name=profile["last_name"],
                locale="en-US",
            )
            claims[f"{_SLACK_CLAIM}team_name"] = self.team_name
            claims[f"{_SLACK_CLAIM}team_domain"] = self.team_domain
            for key, url in profile.items():
                if key.startswith("image_"):
                    claims[f"{_SLACK_CLAIM}user_{key}"] = url
            for size in _TEAM_IMAGE_SIZES:
                claims[f"{_SLACK_CLAIM}team_image_{size}"] = (
                    f"https://a.slack-edge.com/80588/img/avatars-teams/ava_0001-{size}.png"
                )
            claims[f"{_SLACK_CLAIM}team_image_default"] = True
        return claims

    # -- socket mode ------------------------------------------------------------------------------
    def socket_connected(self, timeout: float = 10.0) -> bool:
        """Waits until a Socket Mode client is connected (and got ``hello``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ws_conns:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def socket_send_nowait(
        self,
        payload: JsonDict,
        *,
        type: str,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
        timeout: float = 10.0,
    ) -> str:
        """Sends a Socket Mode envelope; returns its envelope_id (see `wait_for_ack`)."""
        if type not in ("events_api", "slash_commands", "interactive"):
            raise ValueError(f"unknown envelope type {type!r}")
        if not self.socket_connected(timeout):
            raise AssertionError("no Socket Mode client connected")
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": (
                type != "events_api"
                if accepts_response_payload is None
                else accepts_response_payload
            ),
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        with self._lock:
            conn = self._ws_conns[-1]
        conn.send(json.dumps(envelope))
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> JsonDict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no Socket Mode ack for envelope {envelope_id} within {timeout}s"
                    )
                self._cond.wait(min(left, 0.05))
            return self._acks[envelope_id]

    def socket_send(
        self,
        payload: JsonDict,
        *,
        type: str,
        timeout: float = 10.0,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> JsonDict:
        """Sends an envelope to the connected client and returns its ack message."""
        envelope_id = self.socket_send_nowait(
            payload,
            type=type,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            accepts_response_payload=accepts_response_payload,
            timeout=timeout,
        )
        return self.wait_for_ack(envelope_id, timeout)

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Sends Slack's ``disconnect`` message to the current client (it should reconnect)."""
        with self._lock:
            conns = list(self._ws_conns)
        for conn in conns[-1:]:
            conn.send(
                json.dumps(
                    {
                        "type": "disconnect",
                        "reason": reason,
                        "debug_info": {"host": "applink-emulator"},
                    }
                )
            )

    def _ws_process_request(self, conn: ServerConnection, request: WsRequest) -> WsResponse | None:
        query = parse_qs(urlsplit(request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            return conn.respond(401, "invalid or used ticket\n")
        return None

    def _ws_handler(self, conn: ServerConnection) -> None:
        try:
            with self._lock:
                num = len(self._ws_conns) + 1
            conn.send(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": num,
                        "debug_info": {
                            "host": "applink-emulator",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                )
            )
            with self._cond:
                self._ws_conns.append(conn)
                self._cond.notify_all()
            for raw in conn:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict) and "envelope_id" in message:
                    self._record(
                        Call(method="socket_mode.ack", params=message, token=None, headers={})
                    )
                    with self._cond:
                        self._acks[str(message["envelope_id"])] = message
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if conn in self._ws_conns:
                    self._ws_conns.remove(conn)
                self._cond.notify_all()

    # -- HTTP entry points (called by the request handler) ----------------------------------------
    def _serve_api(
        self, method: str, params: JsonDict, headers: dict[str, str], connection: str | None = None
    ) -> _Reply:
        """Answers an /api/ call on the primary, by the team its token belongs to."""
        root = self._root
        token = _bearer(headers) or (
            params.get("token") if isinstance(params.get("token"), str) else None
        )
        team = root if method in _OWN_AUTH_METHODS else root._team_for_token(token)
        return team._answer_api(method, params, headers, token, connection)

    def _answer_api(
        self,
        method: str,
        params: JsonDict,
        headers: dict[str, str],
        token: str | None,
        connection: str | None = None,
    ) -> _Reply:
        call = Call(
            method=method, params=params, token=token, headers=headers, connection=connection
        )
        fault = self._take_fault(method)
        reply: _Reply | None = None
        if fault is not None:
            call.fault = fault.kind
            reply = self._fault_reply(fault)
        if reply is None:
            try:
                body = self._api(method, params, token, call)
            except _ApiError as exc:
                body = {"ok": False, "error": exc.error, **exc.extra}
            reply = _json(body)
        call.status = reply.status
        call.response = reply.json_body
        self._record(call)
        return reply

    def _api(self, method: str, params: JsonDict, token: str | None, call: Call) -> JsonDict:
        with self._lock:
            custom = self._handlers.get(method)
        impl = _METHODS.get(method)
        # OAuth's and Sign in with Slack's methods check the app's credentials or a user's token
        # themselves.
        own_auth = _OWN_AUTH_METHODS.get(method)
        if method == "api.test":  # needs no token: "does Slack answer?"
            return _ok(args={k: v for k, v in params.items() if k != "token"})
        if custom is None and impl is None and own_auth is None:
            raise _ApiError("unknown_method")
        if own_auth is None:
            self._check_token(method, token)
        if custom is not None:
            return custom(call)
        with self._lock:
            if own_auth is not None:
                return own_auth(self, call)
            issued = self._issued.get(token or "")
            if method == "auth.test" and issued is not None and issued.kind == "user":
                return self._user_auth_test(issued)
            assert impl is not None
            return impl(self, params)

    def _check_token(self, method: str, token: str | None) -> None:
        needs = "app" if method == "apps.connections.open" else "bot"
        error = self._token_error(token)
        if error is not None:
            raise _ApiError(error)
        if (needs == "app") != (token == self.app_token):
            raise _ApiError("not_allowed_token_type")

    def _serve_page(self, path: str, params: dict[str, str], headers: dict[str, str]) -> _Reply:
        """The browser's side of Sign in with Slack and of installs (see `_PAGE_PATHS`), on
        the primary.
        """
        if self._root is not self:
            return self._root._serve_page(path, params, headers)
        with self._lock:
            if path == "/openid/connect/keys":
                method, reply = "openid.connect.keys", _json(self._jwks())
            elif path.startswith("/oauth/v2/authorize"):
                step = path.removeprefix("/oauth/v2/authorize")
                method, reply = "oauth.v2.authorize", self._install_page(step, params)
            else:
                step = path.removeprefix("/openid/connect/authorize")
                method, reply = "openid.connect.authorize", self._authorize(step, params)
        call = Call(
            method=method,
            params={**params, "_path": path},
            token=None,
            headers=headers,
            status=reply.status,
            response=reply.json_body,
        )
        self._record(call)
        return reply

    def _serve_download(self, path: str, headers: dict[str, str]) -> _Reply:
        token = _bearer(headers)
        # /files-pri/{team}-{file_id}/download/{name} or /files-pri/{team}-{file_id}/{name}
        parts = path.split("/")
        ident = parts[2] if len(parts) > 2 else ""
        team, _, file_id = ident.partition("-")
        owner = self._root._teams.get(team)
        if owner is not None and owner is not self:  # another team's file: its answer
            return owner._serve_download(path, headers)
        call = Call(
            method="files.download",
            params={"file_id": file_id, "team_id": team, "path": path},
            token=token,
            headers=headers,
        )
        fault = self._take_fault("files.download")
        reply: _Reply | None = None
        if fault is not None:
            call.fault = fault.kind
            reply = self._fault_reply(fault)
        if reply is None:
            with self._lock:
                stored = self._files.get(file_id) if team == self.team_id else None
                if token == self.app_token or self._token_error(token) is not None:
                    reply = self._login_page()
                elif stored is None or stored.deleted:
                    reply = _Reply(
                        404, b"<html><body>File not found</body></html>", "text/html; charset=utf-8"
                    )
                else:
                    reply = _Reply(
                        200,
                        stored.content,
                        stored.served_content_type or str(stored.obj["mimetype"]),
                        headers={
                            "Content-Disposition": f'attachment; filename="{stored.obj["name"]}"'
                        },
                    )
        call.status = reply.status
        self._record(call)
        return reply

    def _serve_response_url(self, key: str, body: bytes, headers: dict[str, str]) -> _Reply:
        url = f"{self.base_url}/response/{key}"
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            try:
                payload = json.loads(form.get("payload", ""))
            except ValueError:
                payload = None
        params: JsonDict = dict(payload) if isinstance(payload, dict) else {}
        params["_url"] = url
        call = Call(method="response_url", params=params, token=_bearer(headers), headers=headers)
        fault = self._take_fault("response_url")
        reply: _Reply | None = None
        if fault is not None:
            call.fault = fault.kind
            reply = self._fault_reply(fault)
        if reply is None:
            with self._lock:
                reply = self._response_url_post(key, payload)
        call.status = reply.status
        call.response = reply.json_body
        self._record(call)
        return reply

    def _response_url_post(self, key: str, payload: Any) -> _Reply:
        entry = self._response_urls.get(key)
        if entry is None:
            return _json({"ok": False, "error": "invalid_url"}, 404)
        if time.time() - entry.created > self.response_url_ttl:
            return _json({"ok": False, "error": "expired_url"}, 404)
        if entry.uses >= self.response_url_max_uses:
            return _json({"ok": False, "error": "used_url"}, 404)
        if not isinstance(payload, dict):
            return _json({"ok": False, "error": "invalid_payload"}, 400)
        target = None
        if entry.channel in self._channels and entry.message_ts is not None:
            target = self._channels[entry.channel].messages.get(entry.message_ts)
        if _truthy(payload.get("delete_original")):
            if target is not None and entry.channel is not None:
                del self._channels[entry.channel].messages[str(entry.message_ts)]
            entry.uses += 1
            return _json({"ok": True})
        try:
            self._check_message(payload)
        except _ApiError as exc:
            return _json({"ok": False, "error": exc.error, **exc.extra}, 400)
        entry.uses += 1
        if _truthy(payload.get("replace_original")) and target is not None:
            self._apply_update(target, payload)
        elif payload.get("response_type") == "in_channel" and entry.channel in self._channels:
            ch = self._channels[str(entry.channel)]
            self._store_message(ch, self._bot_message(payload, self._next_ts()))
        else:
            msg = self._bot_message(payload, self._next_ts())
            msg.update({"channel": entry.channel, "ephemeral_user": entry.user})
            self.ephemeral_messages.append(msg)
        return _json({"ok": True})

    # -- helpers used by API methods (lock held) ------------------------------------------------
    def _file_problem(self, ref: Mapping[str, Any]) -> str | None:
        if "id" in ref:
            stored = self._files.get(str(ref["id"]))
        else:
            stored = next(
                (
                    f
                    for f in self._files.values()
                    if ref.get("url") in (f.obj["url_private"], f.obj["url_private_download"])
                ),
                None,
            )
        if stored is None:
            return "file not found"
        if stored.deleted:
            return "file deleted"
        if str(stored.obj["filetype"]).lower() not in _IMAGE_FILETYPES:
            return f"unsupported file type {stored.obj['filetype']!r} (png, jpg, gif only)"
        return None

    def _block_errors(self, blocks: Any, *, surface: str, path: str) -> list[str]:
        return validate_blocks(
            blocks,
            surface=surface,
            path=path,
            reject_private_image_urls=self.reject_private_image_urls,
            file_lookup=self._file_problem,
        )

    def _check_message(self, params: Mapping[str, Any]) -> None:
        text = params.get("text")
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        if isinstance(text, str) and len(text) > 40000:
            raise _ApiError("msg_too_long")
        errors: list[str] = []
        if blocks is not None:
            if not isinstance(blocks, list):
                raise _ApiError("invalid_blocks_format")
            errors += self._block_errors(blocks, surface="message", path="/blocks")
        if attachments is not None:
            if not isinstance(attachments, list):
                raise _ApiError("invalid_attachments")
            for i, att in enumerate(attachments):
                if isinstance(att, dict) and "blocks" in att:
                    errors += self._block_errors(
                        att["blocks"], surface="message", path=f"/attachments/{i}/blocks"
                    )
        if errors:
            raise _ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )

    def _check_view(self, view: Any) -> None:
        errors = validate_view(
            view,
            reject_private_image_urls=self.reject_private_image_urls,
            file_lookup=self._file_problem,
        )
        if errors:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )

    def _channel_type(self, ch: _Channel) -> str:
        info = ch.info
        if info["is_im"]:
            return "im"
        if info["is_mpim"]:
            return "mpim"
        return "group" if info["is_private"] else "channel"

    def _channel_obj(self, ch: _Channel) -> JsonDict:
        obj = copy.deepcopy(ch.info)
        obj["is_member"] = self.bot_user_id in ch.members
        return obj

    def _find_channel(self, ref: Any, *, visible: bool = True) -> _Channel:
        """Resolves a channel id, ``#name``/name, or a user id (the bot's DM with that user)."""
        if not isinstance(ref, str) or not ref:
            raise _ApiError("channel_not_found")
        ch = self._channels.get(ref)
        if ch is None and ref in self.users:
            ch = self._open_im(ref)
        if ch is None:
            name = ref.removeprefix("#")
            ch = next((c for c in self._channels.values() if c.info.get("name") == name), None)
        if ch is None:
            raise _ApiError("channel_not_found")
        if visible and ch.info["is_private"] and self.bot_user_id not in ch.members:
            raise _ApiError("channel_not_found")
        return ch

    def _open_im(self, user_id: str) -> _Channel:
        for ch in self._channels.values():
            if ch.info["is_im"] and ch.info.get("user") == user_id:
                return ch
        channel_id = f"D{user_id[1:]}" if len(user_id) > 1 else f"D{_rand(8)}"
        self.add_channel(channel_id, "", is_im=True, members=[user_id, self.bot_user_id])
        return self._channels[channel_id]

    def _require_post_access(self, ch: _Channel) -> None:
        if (
            not ch.info["is_private"]
            and self.bot_user_id not in ch.members
            and not self.chat_write_public
        ):
            raise _ApiError("not_in_channel")

    def _note_share(self, file_obj: JsonDict, ch: _Channel) -> None:
        key = "ims" if ch.info["is_im"] else "groups" if ch.info["is_private"] else "channels"
        listing = file_obj.setdefault(key, [])
        if ch.info["id"] not in listing:
            listing.append(ch.info["id"])

    def _store_message(self, ch: _Channel, msg: JsonDict) -> None:
        ch.messages[msg["ts"]] = msg
        parent_ts = msg.get("thread_ts")
        if parent_ts and parent_ts != msg["ts"] and parent_ts in ch.messages:
            parent = ch.messages[parent_ts]
            parent["thread_ts"] = parent_ts
            parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
            users = parent.setdefault("reply_users", [])
            if msg.get("user") not in users:
                users.append(msg.get("user"))
            parent["latest_reply"] = msg["ts"]

    def _bot_message(self, params: Mapping[str, Any], ts: str) -> JsonDict:
        msg: JsonDict = {
            "type": "message",
            "text": params.get("text") or "",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "ts": ts,
            "team": self.team_id,
        }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key):
                msg[key] = copy.deepcopy(params[key])
        if isinstance(msg.get("blocks"), list):
            for block in msg["blocks"]:
                if isinstance(block, dict):
                    block.setdefault("block_id", _rand(5))
        if params.get("thread_ts"):
            msg["thread_ts"] = str(params["thread_ts"])
        return msg

    def _apply_update(self, msg: JsonDict, params: Mapping[str, Any]) -> None:
        fresh = self._bot_message(params, msg["ts"])
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                if key in fresh:
                    msg[key] = fresh[key]
                else:
                    msg.pop(key, None)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}

    def _message_in(self, ch: _Channel, ts: Any) -> JsonDict:
        msg = ch.messages.get(str(ts)) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        return msg

    def _view_obj(
        self, view: JsonDict, view_id: str, *, root: str, previous: str | None
    ) -> JsonDict:
        obj: JsonDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title")),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": previous,
            "root_view_id": root,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for block in obj["blocks"]:
            if isinstance(block, dict):
                block.setdefault("block_id", _rand(5))
        return obj

    def _use_trigger(self, params: Mapping[str, Any]) -> str | None:
        """Checks (without consuming) a trigger id; returns the view it belongs to, if any."""
        trigger = params.get("trigger_id")
        if not trigger:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        if trigger in self._triggers_used:
            raise _ApiError("expired_trigger_id")
        issued = self._triggers_issued.get(str(trigger))
        if issued is not None and time.monotonic() - issued[0] > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        return issued[1] if issued else None

    def _register_view(self, obj: JsonDict) -> None:
        external = obj.get("external_id")
        if external:
            owner = self._external_ids.get(external)
            if owner is not None and owner != obj["id"]:
                raise _ApiError("duplicate_external_id")
            self._external_ids[external] = obj["id"]
        self.views[obj["id"]] = obj

    def _lookup_view(self, params: Mapping[str, Any]) -> JsonDict:
        view_id = params.get("view_id")
        external = params.get("external_id")
        if not view_id and not external:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] view_id or external_id is required"]},
            )
        if not view_id:
            view_id = self._external_ids.get(str(external))
        stored = self.views.get(str(view_id)) if view_id else None
        if stored is None:
            raise _ApiError("not_found")
        return stored

    # -- API methods (lock held; return the success body or raise _ApiError) --------------------
    def _m_auth_test(self, params: JsonDict) -> JsonDict:
        return _ok(
            url=f"https://{self.team_domain}.slack.com/",
            team=self.team_name,
            user=self.bot_name,
            team_id=self.team_id,
            user_id=self.bot_user_id,
            bot_id=self.bot_id,
            is_enterprise_install=False,
        )

    def _user_auth_test(self, token: _Token) -> JsonDict:
        """auth.test with a user token from an install: that user, no bot_id."""
        return _ok(
            url=f"https://{self.team_domain}.slack.com/",
            team=self.team_name,
            user=self.users[token.user_id]["name"],
            team_id=self.team_id,
            user_id=token.user_id,
            is_enterprise_install=False,
        )

    def _m_team_info(self, params: JsonDict) -> JsonDict:
        return _ok(
            team={
                "id": self.team_id,
                "name": self.team_name,
                "domain": self.team_domain,
                "email_domain": "",
                "icon": {"image_default": True},
            }
        )

    def _grant_type(self, call: Call) -> str:
        """Checks the app's credentials; returns the grant_type (authorization_code by default)."""
        client_id, client_secret = _client_credentials(call)
        if client_id != self.client_id:
            raise _ApiError("invalid_client_id")
        if client_secret != self.client_secret:
            raise _ApiError("bad_client_secret")
        grant_type = str(call.params.get("grant_type") or "authorization_code")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise _ApiError("invalid_grant_type")
        return grant_type

    def _m_oauth_v2_access(self, call: Call) -> JsonDict:
        """Exchanges an install's code, or (token rotation) a refresh token, for tokens."""
        if self._grant_type(call) == "refresh_token":
            return self._refresh(str(call.params.get("refresh_token", "")))
        key = str(call.params.get("code", ""))
        code = self._oauth_codes.get(key)
        if code is None or time.monotonic() - code.issued > self.oauth_code_ttl:
            raise _ApiError("invalid_code")
        if code.redirect_uri is not None and call.params.get("redirect_uri") != code.redirect_uri:
            raise _ApiError("bad_redirect_uri")
        del self._oauth_codes[key]
        team = self._teams[code.team_id]
        authed_user: JsonDict = {"id": code.user_id}
        if code.user_scopes:
            authed_user["scope"] = ",".join(code.user_scopes)
            authed_user.update(team._issue("user", code.user_id, code.user_scopes))
            authed_user["token_type"] = "user"
        bot = team._issue("bot", code.user_id, code.scopes)
        return _ok(
            app_id=self.app_id,
            authed_user=authed_user,
            scope=",".join(code.scopes),
            token_type="bot",
            access_token=bot.pop("access_token"),
            bot_user_id=team.bot_user_id,
            **bot,  # refresh_token and expires_in with token rotation
            team={"id": team.team_id, "name": team.team_name},
            enterprise=None,
            is_enterprise_install=False,
        )

    def _refresh(self, refresh_token: str) -> JsonDict:
        """oauth.v2.access with grant_type=refresh_token: a new token and refresh token."""
        ref = self._refresh_tokens.pop(refresh_token, None)
        if ref is None:
            raise _ApiError("invalid_refresh_token")
        team = self._teams[ref.team_id]
        issued = team._issue(ref.kind, ref.user_id, ref.scopes)
        body = _ok(app_id=self.app_id, scope=",".join(ref.scopes), token_type=ref.kind)
        body["access_token"] = issued.pop("access_token")
        if ref.kind == "bot":
            body["bot_user_id"] = team.bot_user_id
        else:
            body["user_id"] = ref.user_id
        return {
            **body,
            **issued,
            "team": {"id": team.team_id, "name": team.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _m_openid_connect_token(self, call: Call) -> JsonDict:
        if self._grant_type(call) == "refresh_token":
            raise _ApiError("invalid_refresh_token")  # no token rotation here
        key = str(call.params.get("code", ""))
        code = self._openid_codes.get(key)
        if code is None or time.monotonic() - code.issued > self.openid_code_ttl:
            raise _ApiError("invalid_code")
        if call.params.get("redirect_uri") != code.redirect_uri:
            raise _ApiError("bad_redirect_uri")
        del self._openid_codes[key]
        access_token = (
            f"xoxp-{secrets.randbelow(10**12)}-{secrets.randbelow(10**12)}"
            f"-{secrets.randbelow(10**13)}-{secrets.token_hex(16)}"
        )
        self._openid_grants[access_token] = _OpenidGrant(
            user_id=code.user_id, scopes=code.scopes, team_id=code.team_id
        )
        now = int(time.time())
        claims: JsonDict = {
            "iss": _OPENID_ISSUER,
            "aud": self.client_id,
            "exp": now + _ID_TOKEN_TTL,
            "iat": now,
            "auth_time": code.auth_time,
        }
        if code.nonce is not None:
            claims["nonce"] = code.nonce
        claims["at_hash"] = _at_hash(access_token)
        claims.update(self._openid_team(code.team_id)._user_claims(code.user_id, code.scopes))
        id_token = jwt.encode(
            claims, self._signing_key(), algorithm="RS256", headers={"kid": self.openid_kid}
        )
        return _ok(access_token=access_token, token_type="Bearer", id_token=id_token)

    def _m_openid_connect_user_info(self, call: Call) -> JsonDict:
        if not call.token:
            raise _ApiError("not_authed")
        if call.token in self.revoked_tokens:
            raise _ApiError("token_revoked")
        grant = self._openid_grants.get(call.token)
        if grant is None:
            raise _ApiError("invalid_auth")
        team = self._openid_team(grant.team_id)
        return {"ok": True, **team._user_claims(grant.user_id, grant.scopes)}

    def _openid_team(self, team_id: str) -> SlackEmulator:
        return self._teams.get(team_id, self)

    def _m_apps_connections_open(self, params: JsonDict) -> JsonDict:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return _ok(url=f"{self.ws_url}?ticket={ticket}&app_id={self.app_id}")

    def _m_chat_post_message(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        self._require_post_access(ch)
        self._check_message(params)
        msg = self._bot_message(params, self._next_ts())
        self._store_message(ch, msg)
        return _ok(channel=ch.info["id"], ts=msg["ts"], message=copy.deepcopy(msg))

    def _m_chat_post_ephemeral(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        user = params.get("user")
        if not user or user not in self.users:
            raise _ApiError("user_not_found")
        self._require_post_access(ch)
        if user not in ch.members:
            raise _ApiError("user_not_in_channel")
        self._check_message(params)
        msg = self._bot_message(params, self._next_ts())
        msg.update({"channel": ch.info["id"], "ephemeral_user": user})
        self.ephemeral_messages.append(msg)
        return _ok(message_ts=msg["ts"])

    def _m_chat_update(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        msg = self._message_in(ch, params.get("ts"))
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
        if not any(params.get(k) is not None for k in ("text", "blocks", "attachments")):
            raise _ApiError("no_text")
        merged = {k: msg.get(k) for k in ("text", "blocks", "attachments")}
        merged.update({k: params[k] for k in ("text", "blocks", "attachments") if k in params})
        self._check_message(merged)
        self._apply_update(msg, params)
        return _ok(
            channel=ch.info["id"],
            ts=msg["ts"],
            text=msg.get("text", ""),
            message=copy.deepcopy(msg),
        )

    def _m_chat_delete(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        msg = self._message_in(ch, params.get("ts"))
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        del ch.messages[msg["ts"]]
        return _ok(channel=ch.info["id"], ts=msg["ts"])

    def _m_chat_get_permalink(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        msg = self._message_in(ch, params.get("message_ts"))
        cid = ch.info["id"]
        link = f"https://{self.team_domain}.slack.com/archives/{cid}/p{msg['ts'].replace('.', '')}"
        return _ok(channel=cid, permalink=link)

    def _reaction_target(self, params: JsonDict) -> tuple[dict[str, list[str]], str]:
        ch = self._find_channel(params.get("channel"))
        msg = self._message_in(ch, params.get("timestamp"))
        name = params.get("name")
        if not isinstance(name, str) or not name.strip(":"):
            raise _ApiError("invalid_name")
        reactions = self._reactions.setdefault((ch.info["id"], msg["ts"]), {})
        return reactions, name.strip(":")

    def _m_reactions_add(self, params: JsonDict) -> JsonDict:
        reactions, name = self._reaction_target(params)
        users = reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise _ApiError("already_reacted")
        users.append(self.bot_user_id)
        return _ok()

    def _m_reactions_remove(self, params: JsonDict) -> JsonDict:
        reactions, name = self._reaction_target(params)
        users = reactions.get(name, [])
        if self.bot_user_id not in users:
            raise _ApiError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del reactions[name]
        return _ok()

    def _m_views_open(self, params: JsonDict) -> JsonDict:
        self._use_trigger(params)
        view = params.get("view")
        self._check_view(view)
        if view.get("type") != "modal":
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] views.open needs a modal view"]},
            )
        self._triggers_used.add(str(params["trigger_id"]))
        view_id = f"V{_rand(10)}"
        obj = self._view_obj(view, view_id, root=view_id, previous=None)
        self._register_view(obj)
        self._view_stacks[view_id] = [view_id]
        self._last_root_view = view_id
        return _ok(view=copy.deepcopy(obj))

    def _m_views_push(self, params: JsonDict) -> JsonDict:
        owner = self._use_trigger(params)
        view = params.get("view")
        self._check_view(view)
        root = self.views[owner]["root_view_id"] if owner in self.views else self._last_root_view
        if root is None or root not in self._view_stacks:
            raise _ApiError("not_found")
        stack = self._view_stacks[root]
        if len(stack) >= self.max_view_stack:
            raise _ApiError("push_limit_reached")
        self._triggers_used.add(str(params["trigger_id"]))
        view_id = f"V{_rand(10)}"
        obj = self._view_obj(view, view_id, root=root, previous=stack[-1])
        self._register_view(obj)
        stack.append(view_id)
        return _ok(view=copy.deepcopy(obj))

    def _m_views_update(self, params: JsonDict) -> JsonDict:
        stored = self._lookup_view(params)
        given_hash = params.get("hash")
        if given_hash and given_hash != stored["hash"]:
            raise _ApiError("hash_conflict")
        view = params.get("view")
        self._check_view(view)
        obj = self._view_obj(
            view, stored["id"], root=stored["root_view_id"], previous=stored["previous_view_id"]
        )
        if not obj["external_id"]:
            obj["external_id"] = stored.get("external_id", "")
        self._register_view(obj)
        if obj["type"] == "home":
            for user, home in self.home_views.items():
                if home["id"] == obj["id"]:
                    self.home_views[user] = obj
        return _ok(view=copy.deepcopy(obj))

    def _m_views_publish(self, params: JsonDict) -> JsonDict:
        user = params.get("user_id")
        if not user or user not in self.users:
            raise _ApiError("user_not_found")
        view = params.get("view")
        self._check_view(view)
        if view.get("type") != "home":
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] views.publish needs a home view"]},
            )
        current = self.home_views.get(user)
        given_hash = params.get("hash")
        if current is not None and given_hash and given_hash != current["hash"]:
            raise _ApiError("hash_conflict")
        view_id = current["id"] if current is not None else f"V{_rand(10)}"
        obj = self._view_obj(view, view_id, root=view_id, previous=None)
        self._register_view(obj)
        self.home_views[user] = obj
        return _ok(view=copy.deepcopy(obj))

    def _m_files_info(self, params: JsonDict) -> JsonDict:
        stored = self._files.get(str(params.get("file") or ""))
        if stored is None:
            raise _ApiError("file_not_found")
        if stored.deleted:
            raise _ApiError("file_deleted")
        return _ok(
            file=copy.deepcopy(stored.obj),
            comments=[],
            response_metadata={"next_cursor": ""},
        )

    def _m_users_info(self, params: JsonDict) -> JsonDict:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        return _ok(user=copy.deepcopy(user))

    def _m_users_list(self, params: JsonDict) -> JsonDict:
        chunk, nxt = _page(list(self.users.values()), params, default_limit=1000)
        return _ok(
            members=copy.deepcopy(chunk),
            cache_ts=int(time.time()),
            response_metadata={"next_cursor": nxt},
        )

    def _m_conversations_info(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        obj = self._channel_obj(ch)
        if _truthy(params.get("include_num_members")):
            obj["num_members"] = len(ch.members)
        return _ok(channel=obj)

    def _m_conversations_members(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        chunk, nxt = _page(list(ch.members), params)
        return _ok(members=chunk, response_metadata={"next_cursor": nxt})

    def _m_users_conversations(self, params: JsonDict) -> JsonDict:
        """Conversations `user` is in. With a bot token, as Slack documents: public channels,
        and non-public ones only where the bot is a member too."""
        user = str(params.get("user") or "")
        if user and user not in self.users:
            raise _ApiError("user_not_found")
        types = set(str(params.get("types") or "public_channel").split(","))
        exclude_archived = _truthy(params.get("exclude_archived"))
        found = []
        with self._lock:
            channels = list(self._channels.values())
        for ch in channels:
            kind = {"channel": "public_channel", "group": "private_channel"}.get(
                self._channel_type(ch), self._channel_type(ch)
            )
            if kind not in types or user not in ch.members:
                continue
            if ch.info["is_private"] and self.bot_user_id not in ch.members:
                continue
            if exclude_archived and ch.info.get("is_archived"):
                continue
            found.append(self._channel_obj(ch))
        chunk, nxt = _page(found, params)
        return _ok(channels=chunk, response_metadata={"next_cursor": nxt})

    def _m_conversations_join(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        if ch.info["is_private"]:
            raise _ApiError("method_not_supported_for_channel_type")
        extra: JsonDict = {}
        if self.bot_user_id in ch.members:
            extra = {"warning": "already_in_channel"}
        else:
            ch.members.append(self.bot_user_id)
        return _ok(channel=self._channel_obj(ch), **extra)

    def _m_conversations_open(self, params: JsonDict) -> JsonDict:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            ch = self._find_channel(params.get("channel"))
            return _ok(channel=self._channel_obj(ch))
        if len(users) != 1:
            raise _ApiError("users_list_not_supplied" if not users else "not_supported")
        if users[0] not in self.users:
            raise _ApiError("user_not_found")
        return _ok(channel={"id": self._open_im(users[0]).info["id"]})

    def _m_conversations_history(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        if self.bot_user_id not in ch.members:
            raise _ApiError("not_in_channel")
        top = [
            m
            for m in ch.messages.values()
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        top.sort(key=lambda m: float(m["ts"]), reverse=True)
        chunk, nxt = _page(top, params)
        return _ok(
            messages=copy.deepcopy(chunk),
            has_more=bool(nxt),
            response_metadata={"next_cursor": nxt},
        )

    def _m_conversations_replies(self, params: JsonDict) -> JsonDict:
        ch = self._find_channel(params.get("channel"))
        ts = str(params.get("ts") or "")
        if ts not in ch.messages:
            raise _ApiError("thread_not_found")
        thread = [m for m in ch.messages.values() if m["ts"] == ts or m.get("thread_ts") == ts]
        thread.sort(key=lambda m: float(m["ts"]))
        chunk, nxt = _page(thread, params, default_limit=1000)
        return _ok(
            messages=copy.deepcopy(chunk),
            has_more=bool(nxt),
            response_metadata={"next_cursor": nxt},
        )


_METHODS: dict[str, Callable[[SlackEmulator, JsonDict], JsonDict]] = {
    "auth.test": SlackEmulator._m_auth_test,
    "team.info": SlackEmulator._m_team_info,
    "apps.connections.open": SlackEmulator._m_apps_connections_open,
    "chat.postMessage": SlackEmulator._m_chat_post_message,
    "chat.postEphemeral": SlackEmulator._m_chat_post_ephemeral,
    "chat.update": SlackEmulator._m_chat_update,
    "chat.delete": SlackEmulator._m_chat_delete,
    "chat.getPermalink": SlackEmulator._m_chat_get_permalink,
    "reactions.add": SlackEmulator._m_reactions_add,
    "reactions.remove": SlackEmulator._m_reactions_remove,
    "views.open": SlackEmulator._m_views_open,
    "views.push": SlackEmulator._m_views_push,
    "views.update": SlackEmulator._m_views_update,
    "views.publish": SlackEmulator._m_views_publish,
    "files.info": SlackEmulator._m_files_info,
    "users.info": SlackEmulator._m_users_info,
    "users.list": SlackEmulator._m_users_list,
    "users.conversations": SlackEmulator._m_users_conversations,
    "conversations.info": SlackEmulator._m_conversations_info,
    "conversations.members": SlackEmulator._m_conversations_members,
    "conversations.join": SlackEmulator._m_conversations_join,
    "conversations.open": SlackEmulator._m_conversations_open,
    "conversations.history": SlackEmulator._m_conversations_history,
    "conversations.replies": SlackEmulator._m_conversations_replies,
}

#: Methods that authenticate the app (client_id/secret) or a Sign in with Slack user themselves.
#: Methods that check the app's credentials or a user's token themselves (on the primary).
_OWN_AUTH_METHODS: dict[str, Callable[[SlackEmulator, Call], JsonDict]] = {
    "oauth.v2.access": SlackEmulator._m_oauth_v2_access,
    "openid.connect.token": SlackEmulator._m_openid_connect_token,
    "openid.connect.userInfo": SlackEmulator._m_openid_connect_user_info,
}

#: Browser URLs of Sign in with Slack and of installs (GET), answered by
#: `SlackEmulator._serve_page`.
_PAGE_PATHS = frozenset(
    {
        "/openid/connect/authorize",
        "/openid/connect/authorize/approve",
        "/openid/connect/authorize/cancel",
        "/openid/connect/keys",
        "/oauth/v2/authorize",
        "/oauth/v2/authorize/approve",
        "/oauth/v2/authorize/cancel",
    }
)


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


def _bearer(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def _client_credentials(call: Call) -> tuple[Any, Any]:
    """The app's client_id and client_secret: HTTP Basic auth (as slack_sdk sends), else form."""
    auth = call.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None, None
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret
    return call.params.get("client_id"), call.params.get("client_secret")


def _scopes(params: Mapping[str, str]) -> frozenset[str]:
    return frozenset(params.get("scope", "").replace(",", " ").split())


def _at_hash(access_token: str) -> str:
    """OpenID Connect's at_hash for RS256: the left half of SHA-256, base64url, unpadded."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _parse_body(content_type: str, body: bytes) -> JsonDict:
    if not body:
        return {}
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if ctype == "application/json":
        data = json.loads(body)
        return dict(data) if isinstance(data, dict) else {}
    if ctype == "multipart/form-data":
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        out: JsonDict = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                out[name] = payload
            else:
                out[name] = payload.decode("utf-8", "replace")
        return out
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _decode_json_params(params: JsonDict) -> JsonDict:
    for key in _JSON_STRING_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            # Undecodable JSON stays a string: the method answers an invalid_* error.
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_activate(self) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing the connection it kept open (the app stopped, or was killed) is
        # how kept-alive connections end, not an error; anything else is printed as before.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def open_connections(self) -> int:
        with self._open_lock:
            return len(self._open)

    def close_open_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    emulator: SlackEmulator
    # As slack.com: a connection stays open for the next request until a side closes it.
    protocol_version = "HTTP/1.1"
    # An answer is written in two parts (headers, then body): with Nagle's algorithm the
    # body waited for the client's delayed ACK of the headers, up to 40 ms on a connection
    # kept open (a new one acks at once). Slack's servers do not wait like that.
    disable_nagle_algorithm = True
    server_version = "SlackEmulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        emu = self.emulator
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        try:
            if path.startswith("/api/"):
                params: JsonDict = dict(parse_qsl(parts.query, keep_blank_values=True))
                try:
                    params.update(_parse_body(headers.get("content-type", ""), body))
                except ValueError:
                    reply = _json({"ok": False, "error": "invalid_json"})
                else:
                    reply = emu._serve_api(
                        path[len("/api/") :],
                        _decode_json_params(params),
                        headers,
                        f"{self.client_address[0]}:{self.client_address[1]}",
                    )
            elif path.startswith("/files-pri/") and self.command == "GET":
                reply = emu._serve_download(path, headers)
            elif path.startswith("/response/") and self.command == "POST":
                reply = emu._serve_response_url(path[len("/response/") :], body, headers)
            elif path in _PAGE_PATHS and self.command == "GET":
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                reply = emu._serve_page(path, query, headers)
            else:
                reply = _Reply(404, b"not found\n", "text/plain; charset=utf-8")
        except Exception as exc:  # surface emulator bugs as 500s, not hangs
            reply = _json({"ok": False, "error": "emulator_exception", "detail": repr(exc)}, 500)
        if reply.reset:
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            view = memoryview(reply.body)
            for start in range(0, len(view), 1 << 16):
                self.wfile.write(view[start : start + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
