"""Tests of the Slack emulator itself, driven through the real slack_sdk clients."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import jwt
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_api import SlackEmulator, validate_blocks, validate_view

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        emulator.add_user("U1", "alice", real_name="Alice Liddell", is_admin=True)
        emulator.add_user("U2", "bob")
        emulator.add_user("U3", "carol", is_restricted=True)
        emulator.add_channel("C1", "general", members=["U1", "U2", emulator.bot_user_id])
        emulator.add_channel("C2", "secret", is_private=True, members=["U1"])
        emulator.add_channel("C3", "random", members=["U1"])
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url)


def _error(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


def _get(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_binds_loopback_only(emu: SlackEmulator) -> None:
    assert emu.api_url.startswith("http://127.0.0.1:")
    assert emu.api_url.endswith("/api/")
    assert emu.ws_url.startswith("ws://127.0.0.1:")


def test_auth(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == "UBOT"
    assert resp["bot_id"] == "BBOT"
    assert resp["team_id"] == "T0TEAM1"
    assert resp["team"] == "Acme"
    assert emu.calls_to("auth.test")[0].token == emu.bot_token

    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test()
    assert _error(exc) == "invalid_auth"
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=emu.api_url).auth_test()
    assert _error(exc) == "not_authed"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token=emu.app_token, base_url=emu.api_url).chat_postMessage(
            channel="C1", text="x"
        )
    assert _error(exc) == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as exc:
        client.api_call("nope.nothing")
    assert _error(exc) == "unknown_method"


def test_post_message_update_delete(emu: SlackEmulator, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="hello")
    second = client.chat_postMessage(channel="#general", text="again", thread_ts=first["ts"])
    assert first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["user"] == "UBOT"
    parent = emu.message("C1", first["ts"])
    assert parent is not None and parent["reply_count"] == 1

    # form-encoded blocks arrive as a JSON string and are decoded in Call.params
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    client.api_call(
        "chat.postMessage", params={"channel": "C1", "text": "t", "blocks": json.dumps(blocks)}
    )
    assert emu.calls_to("chat.postMessage")[-1].params["blocks"] == blocks

    updated = client.chat_update(channel="C1", ts=first["ts"], text="edited")
    assert updated["message"]["text"] == "edited"
    stored = emu.message("C1", first["ts"])
    assert stored is not None and stored["text"] == "edited"
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C1", ts="1.000001", text="x")
    assert _error(exc) == "message_not_found"

    client.chat_delete(channel="C1", ts=first["ts"])
    assert emu.message("C1", first["ts"]) is None

    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning, match="text"):
        client.chat_postMessage(channel="C1")
    assert _error(exc) == "no_text"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C3", text="not a member")
    assert _error(exc) == "not_in_channel"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C2", text="private, not a member")
    assert _error(exc) == "channel_not_found"

    dm = client.chat_postMessage(channel="U2", text="direct")
    assert dm["channel"].startswith("D")


def test_post_ephemeral(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.chat_postEphemeral(channel="C1", user="U2", text="only you")
    assert resp["message_ts"]
    assert emu.ephemeral_messages[-1]["ephemeral_user"] == "U2"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C1", user="U3", text="not here")
    assert _error(exc) == "user_not_in_channel"


def test_reactions(emu: SlackEmulator, client: WebClient) -> None:
    envelope = emu.message_event(channel="C1", user="U1", text="look")
    ts = envelope["event"]["ts"]
    client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert _error(exc) == "already_reacted"
    assert emu.reactions("C1", ts) == {"eyes": ["UBOT"]}
    client.reactions_remove(channel="C1", timestamp=ts, name="eyes")
    assert emu.reactions("C1", ts) == {}


MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "tag_image",
    "title": {"type": "plain_text", "text": "Tag image"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "tags",
            "label": {"type": "plain_text", "text": "Tags"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


def test_views(emu: SlackEmulator, client: WebClient) -> None:
    trigger = emu.new_trigger_id()
    opened = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert opened["id"].startswith("V") and opened["hash"]
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=trigger, view=MODAL)
    assert _error(exc) == "expired_trigger_id"

    current = client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)["view"]
    assert current["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    assert _error(exc) == "hash_conflict"

    bad = dict(MODAL, title={"type": "plain_text", "text": "x" * 25})
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=emu.new_trigger_id(), view=bad)
    assert _error(exc) == "invalid_arguments"
    messages = exc.value.response["response_metadata"]["messages"]
    assert any("/view/title/text" in m for m in messages)

    pushed = client.views_push(trigger_id=emu.new_trigger_id(view_id=opened["id"]), view=MODAL)
    assert pushed["view"]["root_view_id"] == opened["id"]
    client.views_push(trigger_id=emu.new_trigger_id(view_id=opened["id"]), view=MODAL)
    with pytest.raises(SlackApiError) as exc:
        client.views_push(trigger_id=emu.new_trigger_id(view_id=opened["id"]), view=MODAL)
    assert _error(exc) == "push_limit_reached"

    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    client.views_publish(user_id="U1", view=home)
    assert emu.home_views["U1"]["type"] == "home"


def test_files_info_and_download(emu: SlackEmulator, client: WebClient) -> None:
    obj = emu.add_file(
        "F1", name="cat photo.png", content=PNG, mimetype="image/png", filetype="png", user="U1"
    )
    assert obj["size"] == len(PNG) and obj["mode"] == "hosted"
    assert obj["url_private_download"].startswith(f"{emu.base_url}/files-pri/T0TEAM1-F1/download/")
    info = client.files_info(file="F1")["file"]
    assert info["url_private_download"] == obj["url_private_download"]

    status, ctype, body = _get(obj["url_private_download"], emu.bot_token)
    assert (status, ctype, body) == (200, "image/png", PNG)
    status, ctype, body = _get(obj["url_private_download"])
    assert status == 200 and ctype.startswith("text/html") and b"<!DOCTYPE html>" in body
    status, ctype, body = _get(obj["url_private_download"], "xoxb-wrong")
    assert status == 200 and ctype.startswith("text/html")
    downloads = emu.calls_to("files.download")
    assert [c.token for c in downloads] == [emu.bot_token, None, "xoxb-wrong"]

    emu.delete_file("F1")
    assert _get(obj["url_private_download"], emu.bot_token)[0] == 404
    with pytest.raises(SlackApiError) as exc:
        client.files_info(file="F1")
    assert _error(exc) == "file_deleted"
    with pytest.raises(SlackApiError) as exc:
        client.files_info(file="F404")
    assert _error(exc) == "file_not_found"


def test_large_download_and_served_content_type(emu: SlackEmulator) -> None:
    content = bytes(range(256)) * 20_000  # ~5 MB
    obj = emu.add_file(
        "F2",
        name="big.jpg",
        content=content,
        mimetype="image/jpeg",
        filetype="jpg",
        user="U1",
        served_content_type="application/octet-stream",
    )
    status, ctype, body = _get(obj["url_private_download"], emu.bot_token)
    assert status == 200 and ctype == "application/octet-stream" and body == content


def test_message_event_and_stub(emu: SlackEmulator) -> None:
    emu.add_file("F1", name="a.png", content=PNG, mimetype="image/png", filetype="png", user="U1")
    emu.add_file("F2", name="b.png", content=PNG, mimetype="image/png", filetype="png", user="U1")
    envelope = emu.message_event(
        channel="C1", user="U1", text="two", files=["F1", emu.file_stub("F2")], event_id="Ev1"
    )
    assert envelope["type"] == "event_callback" and envelope["event_id"] == "Ev1"
    assert envelope["authorizations"][0]["user_id"] == "UBOT"
    event = envelope["event"]
    assert (event["type"], event["subtype"], event["channel_type"]) == (
        "message",
        "file_share",
        "channel",
    )
    assert event["files"][0]["url_private_download"].endswith("/download/a.png")
    assert event["files"][1] == {
        "id": "F2",
        "file_access": "check_file_info",
        "created": event["files"][1]["created"],
        "timestamp": event["files"][1]["timestamp"],
        "user": "U1",
    }
    plain = emu.message_event(channel="C2", user="U1", text="no files")["event"]
    assert "subtype" not in plain and plain["channel_type"] == "group"


def test_ratelimit_retry_handler(emu: SlackEmulator) -> None:
    emu.inject("chat.postMessage", "ratelimited", retry_after=0)
    plain = WebClient(token=emu.bot_token, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as exc:
        plain.chat_postMessage(channel="C1", text="hi")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "0"
    assert emu.calls_to("chat.postMessage")[0].response == {"ok": False, "error": "ratelimited"}

    # slack_sdk sleeps Retry-After plus up to 1 s of jitter per retry: one retry keeps it quick
    emu.inject("chat.postMessage", "ratelimited", retry_after=0)
    retrying = WebClient(token=emu.bot_token, base_url=emu.api_url)
    retrying.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    assert retrying.chat_postMessage(channel="C1", text="hi")["ok"]
    statuses = [(c.status, c.fault) for c in emu.calls_to("chat.postMessage")]
    assert statuses == [(429, "ratelimited"), (429, "ratelimited"), (200, None)]


def test_other_faults(emu: SlackEmulator, client: WebClient) -> None:
    emu.inject("views.open", "error:expired_trigger_id")
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=emu.new_trigger_id(), view=MODAL)
    assert _error(exc) == "expired_trigger_id"

    emu.inject("users.info", "server_error", status=503)
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U1")
    assert exc.value.response.status_code == 503
    user = client.users_info(user="U1")["user"]
    assert user["is_admin"] and user["profile"]["real_name"] == "Alice Liddell"

    obj = emu.add_file(
        "F1", name="a.png", content=PNG, mimetype="image/png", filetype="png", user="U1"
    )
    emu.inject("files.download", "html_login")
    status, ctype, _ = _get(obj["url_private_download"], emu.bot_token)
    assert status == 200 and ctype.startswith("text/html")
    assert _get(obj["url_private_download"], emu.bot_token)[2] == PNG

    no_retries = WebClient(token=emu.bot_token, base_url=emu.api_url, retry_handlers=[])
    emu.inject("auth.test", "connection_reset")
    with pytest.raises(Exception, match=r"(?i)closed|reset|disconnect|aborted"):
        no_retries.auth_test()
    assert emu.calls_to("auth.test")[-1].fault == "connection_reset"

    emu.inject("auth.test", "slow", delay=0.3)
    client.auth_test()
    assert emu.calls_to("auth.test")[-1].fault == "slow"


def test_invalid_blocks(emu: SlackEmulator, client: WebClient) -> None:
    divider = {"type": "divider"}
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x", blocks=[divider] * 51)
    assert _error(exc) == "invalid_blocks"
    assert any("no more than 50 items" in e for e in exc.value.response["errors"])
    assert client.chat_postMessage(channel="C1", text="x", blocks=[divider] * 50)["ok"]

    button = {
        "type": "actions",
        "elements": [
            {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "y" * 76}}
        ],
    }
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x", blocks=[button])
    assert _error(exc) == "invalid_blocks"
    assert exc.value.response["errors"] == [
        "must be less than 76 characters (got 76) [json-pointer:/blocks/0/elements/0/text/text]"
    ]

    image = {"type": "image", "image_url": f"{emu.base_url}/x.png", "alt_text": "x"}
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x", blocks=[image])
    assert "downloading image failed" in exc.value.response["errors"][0]
    emu.reject_private_image_urls = False
    assert client.chat_postMessage(channel="C1", text="x", blocks=[image])["ok"]


def test_validate_blocks_directly() -> None:
    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    assert validate_blocks([section("ok")], surface="message") == []
    assert validate_blocks([section("x" * 3001)], surface="message")
    assert validate_blocks([section("")], surface="message")
    assert validate_blocks(
        [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], surface="home"
    )
    assert validate_blocks([{"type": "divider"}] * 100, surface="modal") == []
    assert validate_blocks([{"type": "divider"}] * 101, surface="modal")
    assert validate_blocks([{"type": "image", "image_url": "https://x/a.png"}], surface="message")
    both = {
        "type": "image",
        "alt_text": "a",
        "image_url": "https://example.com/a.png",
        "slack_file": {"id": "F1"},
    }
    assert validate_blocks([both], surface="message")
    slack_file = {"type": "image", "alt_text": "a", "slack_file": {"id": "F1"}}
    assert validate_blocks([slack_file], surface="message") == []
    assert validate_blocks(
        [{"type": "image", "alt_text": "a", "image_url": "ftp://x/a.png"}], surface="message"
    )
    options = [
        {"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(101)
    ]
    select = {"type": "static_select", "action_id": "s", "options": options}
    errors = validate_blocks([{"type": "actions", "elements": [select]}], surface="message")
    assert errors == [
        "no more than 100 items allowed (got 101) [json-pointer:/blocks/0/elements/0/options]"
    ]
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "private_metadata": "m" * 3001,
        "blocks": [],
    }
    assert validate_view(view) == [
        "must be less than 3001 characters (got 3001) [json-pointer:/view/private_metadata]"
    ]


def test_response_url(emu: SlackEmulator) -> None:
    url = emu.new_response_url()
    webhook = WebhookClient(url)
    for i in range(5):
        assert webhook.send(text=f"use {i}").status_code == 200
    sixth = webhook.send(text="too many")
    assert sixth.status_code == 404 and "used_url" in sixth.body
    calls = emu.calls_to("response_url")
    assert len(calls) == 6 and calls[0].params == {"text": "use 0", "_url": url}

    other = WebhookClient(emu.new_response_url())
    bad = other.send(
        text="x", blocks=[{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    )
    assert bad.status_code == 400 and "invalid_blocks" in bad.body


def test_response_url_replaces_original(emu: SlackEmulator, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="before")
    payload = emu.block_action(user="U1", action_id="go", channel="C1", message_ts=posted["ts"])
    resp = WebhookClient(payload["response_url"]).send(text="after", replace_original=True)
    assert resp.status_code == 200
    stored = emu.message("C1", posted["ts"])
    assert stored is not None and stored["text"] == "after"


def test_conversations(emu: SlackEmulator, client: WebClient) -> None:
    members = [f"UM{i}" for i in range(5)]
    emu.add_channel("C9", "big", members=[*members, emu.bot_user_id])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        resp = client.conversations_members(channel="C9", limit=2, cursor=cursor)
        seen += resp["members"]
        pages += 1
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == [*members, "UBOT"] and pages == 3

    info = client.conversations_info(channel="C3")["channel"]
    assert info["name"] == "random" and info["is_member"] is False
    assert info["is_private"] is False
    joined = client.conversations_join(channel="C3")["channel"]
    assert joined["is_member"] is True
    with pytest.raises(SlackApiError) as exc:
        client.conversations_info(channel="C404")
    assert _error(exc) == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U404")
    assert _error(exc) == "user_not_found"


def test_wait_for_reports_recorded_methods(emu: SlackEmulator, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test x1"):
        emu.wait_for("chat.postMessage", timeout=0.2)

    def later() -> None:
        client.chat_postMessage(channel="C1", text="late")

    threading.Timer(0.1, later).start()
    calls = emu.wait_for(
        "chat.postMessage", timeout=5, predicate=lambda c: c.params["text"] == "late"
    )
    assert calls[0].response["ok"] is True


def test_socket_mode_round_trip(emu: SlackEmulator) -> None:
    received: list[SocketModeRequest] = []

    def listener(sm_client: SocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        payload = {"text": "pong"} if req.type == "slash_commands" else None
        sm_client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload=payload)
        )

    sm = SocketModeClient(
        app_token=emu.app_token,
        web_client=WebClient(token=emu.bot_token, base_url=emu.api_url),
        auto_reconnect_enabled=False,
    )
    sm.socket_mode_request_listeners.append(listener)
    try:
        sm.connect()
        assert emu.socket_connected(timeout=5)
        assert emu.calls_to("apps.connections.open")[0].token == emu.app_token

        envelope = emu.message_event(channel="C1", user="U1", text="hi")
        ack = emu.socket_send(envelope, type="events_api", timeout=5)
        assert set(ack) == {"envelope_id"}
        assert received[0].type == "events_api"
        assert received[0].payload["event"]["text"] == "hi"

        command = emu.slash_command("/images", user="U1", channel="C1", text="search cats")
        ack = emu.socket_send(command, type="slash_commands", timeout=5)
        assert ack["payload"] == {"text": "pong"}
        assert received[1].accepts_response_payload is True
        assert len(emu.calls_to("socket_mode.ack")) == 2
    finally:
        sm.close()


# -- Sign in with Slack (OpenID Connect) ------------------------------------------------------

REDIRECT_URI = "http://127.0.0.1:9/auth/slack/callback"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_BROWSER = urllib.request.build_opener(_NoRedirects)


def _browse(url: str) -> tuple[int, str, str]:
    """GETs like a browser that stops at redirects: (status, Location or "", body)."""
    try:
        with _BROWSER.open(url, timeout=5) as resp:
            return resp.status, "", resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location", ""), err.read().decode()


def _authorize_url(emu: SlackEmulator, **params: str | None) -> str:
    """The app's /login redirect; a None value leaves that parameter out."""
    defaults: dict[str, str | None] = {
        "response_type": "code",
        "scope": "openid email profile",
        "client_id": emu.client_id,
        "state": "st-123",
        "nonce": "n-456",
        "redirect_uri": REDIRECT_URI,
    }
    query = {k: v for k, v in {**defaults, **params}.items() if v is not None}
    return f"{emu.base_url}/openid/connect/authorize?{urlencode(query)}"


def _back_to_app(location: str, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """The query Slack sends the browser back to the app with."""
    assert location.startswith(redirect_uri)
    return dict(parse_qsl(urlsplit(location).query))


def _links(page: str, base_url: str) -> dict[str, str]:
    """Link text -> absolute URL."""
    return {
        html.unescape(text): urljoin(base_url, html.unescape(href))
        for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
    }


def _exchange(emu: SlackEmulator, code: str, redirect_uri: str = REDIRECT_URI) -> Any:
    return WebClient(base_url=emu.api_url).openid_connect_token(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        code=code,
        redirect_uri=redirect_uri,
    )


def test_sign_in_with_slack(emu: SlackEmulator) -> None:
    emu.sign_in_as("U1")
    status, location, _ = _browse(_authorize_url(emu))
    assert status == 302
    back = _back_to_app(location)
    assert set(back) == {"code", "state"} and back["state"] == "st-123"
    authorize = emu.calls_to("openid.connect.authorize")[0]
    assert (authorize.status, authorize.params["nonce"]) == (302, "n-456")

    tokens = _exchange(emu, back["code"])
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"].startswith("xoxp-")
    # slack_sdk sends the app's credentials as HTTP Basic auth
    assert emu.calls_to("openid.connect.token")[0].headers["authorization"].startswith("Basic ")

    id_token = tokens["id_token"]
    assert jwt.get_unverified_header(id_token)["kid"] == emu.openid_kid
    key = jwt.PyJWKClient(emu.base_url + "/openid/connect/keys").get_signing_key_from_jwt(id_token)
    claims = jwt.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=emu.client_id,
        issuer="https://slack.com",
        options={"require": ["exp", "iat", "sub", "nonce"]},
    )
    assert claims["nonce"] == "n-456"
    assert claims["sub"] == claims["https://slack.com/user_id"] == "U1"
    assert claims["https://slack.com/team_id"] == "T0TEAM1"
    assert claims["https://slack.com/team_name"] == "Acme"
    assert claims["https://slack.com/team_domain"] == "acme"
    assert (claims["email"], claims["email_verified"]) == ("alice@example.com", True)
    assert (claims["name"], claims["given_name"], claims["family_name"]) == (
        "Alice Liddell",
        "Alice",
        "Liddell",
    )
    assert claims["picture"].startswith("https://") and claims["locale"] == "en-US"
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    info = WebClient(token=tokens["access_token"], base_url=emu.api_url).openid_connect_userInfo()
    token_only = {"iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"}
    assert info.data == {"ok": True, **{k: v for k, v in claims.items() if k not in token_only}}

    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxp-wrong", base_url=emu.api_url).openid_connect_userInfo()
    assert _error(exc) == "invalid_auth"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token=emu.bot_token, base_url=emu.api_url).openid_connect_userInfo()
    assert _error(exc) == "invalid_auth"
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=emu.api_url).openid_connect_userInfo()
    assert _error(exc) == "not_authed"


def test_openid_jwks(emu: SlackEmulator) -> None:
    status, ctype, body = _get(emu.base_url + "/openid/connect/keys")
    assert (status, ctype) == (200, "application/json; charset=utf-8")
    (key,) = json.loads(body)["keys"]
    assert {k: key[k] for k in ("kty", "kid", "use", "alg")} == {
        "kty": "RSA",
        "kid": emu.openid_kid,
        "use": "sig",
        "alg": "RS256",
    }
    assert key["e"] == "AQAB" and len(key["n"]) > 300


def test_openid_code_is_single_use_and_checked(emu: SlackEmulator) -> None:
    emu.sign_in_as("U2")
    code = _back_to_app(_browse(_authorize_url(emu))[1])["code"]
    form = WebClient(base_url=emu.api_url)

    def token(**fields: str) -> str:
        defaults = {
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "code": code,
            "redirect_uri": REDIRECT_URI,
        }
        try:
            form.api_call("openid.connect.token", data={**defaults, **fields})
        except SlackApiError as err:
            return str(err.response["error"])
        return "ok"

    assert token(redirect_uri=REDIRECT_URI + "/elsewhere") == "bad_redirect_uri"
    assert token(client_secret="wrong") == "bad_client_secret"
    assert token(client_id="1.2") == "invalid_client_id"
    assert token(grant_type="refresh_token") == "invalid_refresh_token"
    assert token(code="123.456.abc") == "invalid_code"
    assert token() == "ok"  # failed attempts leave the code usable
    assert token() == "invalid_code"  # once only
    assert emu.calls_to("openid.connect.token")[0].headers.get("authorization") is None

    # the app's own query survives the round trip; an expired code is refused
    emu.openid_code_ttl = 0.0
    with_query = REDIRECT_URI + "?next=%2Fhome"
    status, location, _ = _browse(_authorize_url(emu, redirect_uri=with_query, state="s 2"))
    assert status == 302
    back = _back_to_app(location, with_query)
    assert (back["next"], back["state"]) == ("/home", "s 2")
    with pytest.raises(SlackApiError) as exc:
        _exchange(emu, back["code"], with_query)
    assert _error(exc) == "invalid_code"


def test_openid_claims_follow_the_scopes(emu: SlackEmulator) -> None:
    emu.sign_in_as("U2")
    code = _back_to_app(_browse(_authorize_url(emu, scope="openid", nonce=None))[1])["code"]
    tokens = _exchange(emu, code)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert "nonce" not in claims and "email" not in claims and "name" not in claims
    info = WebClient(token=tokens["access_token"], base_url=emu.api_url).openid_connect_userInfo()
    assert info.data == {
        "ok": True,
        "sub": "U2",
        "https://slack.com/user_id": "U2",
        "https://slack.com/team_id": "T0TEAM1",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"response_type": "token"},
        {"client_id": "1.2"},
        {"client_id": None},
        {"scope": "email profile"},
        {"scope": "openid chat:write"},
        {"redirect_uri": None},
        {"team": "T0OTHER"},
    ],
)
def test_openid_authorize_refuses_bad_requests(
    emu: SlackEmulator, params: dict[str, str | None]
) -> None:
    emu.sign_in_as("U1")
    status, location, page = _browse(_authorize_url(emu, **params))
    assert (status, location) == (400, "")
    assert "<title>Something went wrong</title>" in page
    assert emu.calls_to("openid.connect.authorize")[0].status == 400


def test_openid_picker_without_a_slack_session(emu: SlackEmulator) -> None:
    emu.add_user("U4", "dave", deleted=True)
    emu.add_user("W5", "erin", team_id="T0OTHER")
    status, location, page = _browse(_authorize_url(emu, team="T0TEAM1"))
    assert (status, location) == (200, "")
    assert "<title>Sign in to Acme</title>" in page
    links = _links(page, emu.base_url)
    assert set(links) == {"Alice Liddell (@alice)", "bob (@bob)", "carol (@carol)", "Cancel"}

    status, location, _ = _browse(links["bob (@bob)"])
    assert status == 302
    back = _back_to_app(location)
    assert back["state"] == "st-123"
    claims = jwt.decode(
        _exchange(emu, back["code"])["id_token"], options={"verify_signature": False}
    )
    assert (claims["sub"], claims["nonce"]) == ("U2", "n-456")

    status, location, _ = _browse(links["Cancel"])
    assert status == 302
    assert _back_to_app(location) == {"error": "access_denied", "state": "st-123"}
    paths = [c.params["_path"] for c in emu.calls_to("openid.connect.authorize")]
    assert paths == [
        "/openid/connect/authorize",
        "/openid/connect/authorize/approve",
        "/openid/connect/authorize/cancel",
    ]


def test_sign_in_as(emu: SlackEmulator) -> None:
    for user_id in ("UBOT", "U404"):
        with pytest.raises(ValueError, match=user_id):
            emu.sign_in_as(user_id)
    emu.sign_in_as("U3")
    assert _browse(_authorize_url(emu))[0] == 302
    emu.sign_in_as(None)
    assert _browse(_authorize_url(emu))[0] == 200


# -- several workspaces -----------------------------------------------------------------------


@pytest.fixture
def globex(emu: SlackEmulator) -> SlackEmulator:
    """A second workspace with a person and a channel of its own."""
    team = emu.add_team("T0TEAM2", "Globex")
    team.add_user("U7", "zed", real_name="Zed Zebra")
    team.add_channel("C9", "globex-general", members=["U7", team.bot_user_id])
    return team


def _api(emu: SlackEmulator, token: str) -> WebClient:
    return WebClient(token=token, base_url=emu.api_url)


def test_second_team_is_routed_by_token(
    emu: SlackEmulator, globex: SlackEmulator, client: WebClient
) -> None:
    assert globex.api_url == emu.api_url
    assert globex.base_url != emu.base_url  # its files and response_urls: its own port
    other = _api(emu, globex.bot_token)
    assert other.auth_test().data == {
        "ok": True,
        "url": "https://globex.slack.com/",
        "team": "Globex",
        "user": "imagebot",
        "team_id": "T0TEAM2",
        "user_id": globex.bot_user_id,
        "bot_id": globex.bot_id,
        "is_enterprise_install": False,
    }
    assert (client.auth_test()["team_id"], client.auth_test()["user_id"]) == ("T0TEAM1", "UBOT")
    assert globex.bot_user_id != emu.bot_user_id

    other.chat_postMessage(channel="C9", text="hello globex")
    assert [m["text"] for m in globex.messages("C9")] == ["hello globex"]
    with pytest.raises(SlackApiError) as exc:  # A's token, B's channel
        client.conversations_history(channel="C9")
    assert _error(exc) == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:  # B's token, A's channel
        other.chat_postMessage(channel="C1", text="leak")
    assert _error(exc) == "channel_not_found"
    assert emu.messages("C1") == []

    assert [c.method for c in globex.calls] == ["auth.test", "chat.postMessage", "chat.postMessage"]
    assert [c.method for c in emu.calls] == ["auth.test", "auth.test", "conversations.history"]
    with pytest.raises(SlackApiError) as exc:
        _api(emu, "xoxb-nobody").auth_test()
    assert _error(exc) == "invalid_auth"
    assert emu.calls[-1].token == "xoxb-nobody"
    assert len(globex.calls) == 3

    globex.inject("users.info", "error:user_not_found")  # faults are per team too
    assert client.users_info(user="U1")["user"]["id"] == "U1"
    with pytest.raises(SlackApiError):
        other.users_info(user="U7")


def test_second_team_files_and_payloads(emu: SlackEmulator, globex: SlackEmulator) -> None:
    obj = globex.add_file(
        "F9", name="g.png", content=PNG, mimetype="image/png", filetype="png", user="U7"
    )
    assert obj["url_private_download"].startswith(f"{globex.base_url}/files-pri/T0TEAM2-F9/")
    assert _get(obj["url_private_download"], globex.bot_token)[2] == PNG
    # Another team's token gets Slack's login page; so does the primary asked for B's file.
    assert _get(obj["url_private_download"], emu.bot_token)[1].startswith("text/html")
    on_primary = obj["url_private_download"].replace(globex.base_url, emu.base_url)
    assert _get(on_primary, globex.bot_token)[2] == PNG
    assert _api(emu, globex.bot_token).files_info(file="F9")["file"]["user_team"] == "T0TEAM2"
    assert [c.method for c in globex.calls] == [
        "files.download",
        "files.download",
        "files.download",
        "files.info",
    ]
    assert emu.calls == []

    envelope = globex.message_event(channel="C9", user="U7", files=["F9"])
    event = envelope["event"]
    assert (event["team"], event["files"][0]["user_team"]) == ("T0TEAM2", "T0TEAM2")
    assert envelope["team_id"] == "T0TEAM2"
    assert envelope["authorizations"][0]["user_id"] == globex.bot_user_id
    assert envelope["api_app_id"] == emu.app_id
    command = globex.slash_command("/images", user="U7", channel="C9")
    assert (command["team_id"], command["team_domain"]) == ("T0TEAM2", "globex")
    assert command["response_url"].startswith(globex.base_url)
    WebhookClient(command["response_url"]).send(text="done")
    assert globex.calls_to("response_url")


def test_teams_start_and_stop_with_the_primary() -> None:
    primary = SlackEmulator()
    early = primary.add_team("T0EARLY", "Early")
    with primary:
        late = primary.add_team("T0LATE", "Late", bot_token="xoxb-late")
        for team in (early, late):
            assert _api(primary, team.bot_token).auth_test()["team_id"] == team.team_id
        assert primary.team("T0LATE") is late
        with pytest.raises(ValueError, match="already"):
            primary.add_team("T0LATE", "Again")
        with pytest.raises(ValueError, match="already"):
            primary.add_team("T0OTHER", "Other", bot_token=primary.bot_token)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{late.base_url}/response/x", timeout=2)


def test_sign_in_with_slack_in_the_second_team(emu: SlackEmulator, globex: SlackEmulator) -> None:
    emu.sign_in_as("U7", team_id="T0TEAM2")
    status, location, _ = _browse(_authorize_url(emu, team="T0TEAM2"))
    assert status == 302
    token = _exchange(emu, _back_to_app(location)["code"])
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["https://slack.com/team_id"]) == ("U7", "T0TEAM2")
    assert claims["https://slack.com/team_name"] == "Globex"
    info = WebClient(base_url=emu.api_url, token=token["access_token"]).openid_connect_userInfo()
    assert info["https://slack.com/team_id"] == "T0TEAM2"

    emu.sign_in_as("U7")  # found in whichever team has that person
    # Signed in to Globex, asked for Acme: the page to pick one of Acme's people.
    status, _, page = _browse(_authorize_url(emu, team="T0TEAM1"))
    assert (status, "<title>Sign in to Acme</title>" in page) == (200, True)

    emu.sign_in_as(None)
    status, _, page = _browse(_authorize_url(emu))  # no team: everyone of every workspace
    links = _links(page, emu.base_url)
    assert {"Alice Liddell (@alice) in Acme", "Zed Zebra (@zed) in Globex"} <= set(links)
    status, location, _ = _browse(links["Zed Zebra (@zed) in Globex"])
    claims = jwt.decode(
        _exchange(emu, _back_to_app(location)["code"])["id_token"],
        options={"verify_signature": False},
    )
    assert claims["https://slack.com/team_id"] == "T0TEAM2"
    with pytest.raises(ValueError, match="U7"):
        emu.sign_in_as("U7", team_id="T0TEAM1")


# -- the OAuth v2 install -----------------------------------------------------------------------

INSTALL_REDIRECT = "http://127.0.0.1:9/slack/oauth_redirect"


def _install_url(emu: SlackEmulator, **params: str | None) -> str:
    """Bolt's /slack/install redirect; a None value leaves that parameter out."""
    defaults: dict[str, str | None] = {
        "client_id": emu.client_id,
        "scope": "chat:write,files:read",
        "user_scope": None,
        "redirect_uri": INSTALL_REDIRECT,
        "state": "st-9",
    }
    query = {k: v for k, v in {**defaults, **params}.items() if v is not None}
    return f"{emu.base_url}/oauth/v2/authorize?{urlencode(query)}"


def _install(emu: SlackEmulator, **params: str | None) -> dict[str, str]:
    """Opens the install page, clicks Allow; the query the app is sent back with."""
    status, _, page = _browse(_install_url(emu, **params))
    assert status == 200, page
    status, location, _ = _browse(_links(page, emu.base_url)["Allow"])
    assert status == 302
    return _back_to_app(location, INSTALL_REDIRECT)


def _access(emu: SlackEmulator, **params: str) -> Any:
    args = {"code": "", "redirect_uri": INSTALL_REDIRECT, **params}
    return WebClient(base_url=emu.api_url).oauth_v2_access(
        client_id=emu.client_id, client_secret=emu.client_secret, **args
    )


def test_install_in_the_second_team(emu: SlackEmulator, globex: SlackEmulator) -> None:
    emu.oauth_redirect_urls = ["http://127.0.0.1:9/slack"]
    status, _, page = _browse(_install_url(emu, team="T0TEAM2"))
    assert status == 200
    assert (
        "<title>Image Library is requesting permission to access the Globex Slack workspace"
        "</title>" in page
    )
    links = _links(page, emu.base_url)
    status, location, _ = _browse(links["Allow"])
    back = _back_to_app(location, INSTALL_REDIRECT)
    assert (status, back["state"]) == (302, "st-9")

    answer = _access(emu, code=back["code"]).data
    token = answer.pop("access_token")
    assert answer == {
        "ok": True,
        "app_id": emu.app_id,
        "authed_user": {"id": "U7"},
        "scope": "chat:write,files:read",
        "token_type": "bot",
        "bot_user_id": globex.bot_user_id,
        "team": {"id": "T0TEAM2", "name": "Globex"},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    assert token.startswith("xoxb-")
    assert token != globex.bot_token
    assert _api(emu, token).auth_test()["team_id"] == "T0TEAM2"
    _api(emu, token).chat_postMessage(channel="C9", text="installed")
    assert globex.calls_to("chat.postMessage")[0].token == token

    with pytest.raises(SlackApiError) as exc:  # a code works once
        _access(emu, code=back["code"])
    assert _error(exc) == "invalid_code"
    status, location, _ = _browse(links["Cancel"])
    assert _back_to_app(location, INSTALL_REDIRECT) == {"error": "access_denied", "state": "st-9"}

    paths = [c.params["_path"] for c in emu.calls_to("oauth.v2.authorize")]
    assert paths == [
        "/oauth/v2/authorize",
        "/oauth/v2/authorize/approve",
        "/oauth/v2/authorize/cancel",
    ]
    accesses = emu.calls_to("oauth.v2.access")
    assert [c.response["ok"] for c in accesses] == [True, False]
    assert accesses[0].headers["authorization"].startswith("Basic ")
    assert globex.calls_to("oauth.v2.access") == []


def test_install_with_user_scopes_and_who_installs(
    emu: SlackEmulator, globex: SlackEmulator
) -> None:
    back = _install(
        emu, user_scope="identity.basic"
    )  # no team, no install_as: the primary's first person
    answer = _access(emu, code=back["code"])
    user = answer["authed_user"]
    assert (user["id"], user["scope"], user["token_type"]) == ("U1", "identity.basic", "user")
    assert user["access_token"].startswith("xoxp-")
    assert answer["team"]["id"] == "T0TEAM1"
    me = _api(emu, user["access_token"]).auth_test()
    assert (me["user_id"], me["team_id"], "bot_id" in me.data) == ("U1", "T0TEAM1", False)

    emu.install_as("T0TEAM2", "U7")  # like sign_in_as: wins over the team asked
    answer = _access(emu, code=_install(emu, team="T0TEAM1")["code"])
    assert (answer["team"]["id"], answer["authed_user"]) == ("T0TEAM2", {"id": "U7"})
    for team_id, user_id in (("T0TEAM2", "U1"), ("T0TEAM2", globex.bot_user_id)):
        with pytest.raises(ValueError, match=user_id):
            emu.install_as(team_id, user_id)
    with pytest.raises(ValueError, match="T0NOPE"):
        emu.install_as("T0NOPE", "U1")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"client_id": "123.456"}, "invalid_client_id"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": ","}, "invalid_scope"),
        ({"scope": "chat:write,Not A Scope"}, "invalid_scope"),
        ({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, "bad_redirect_uri"),
        ({"redirect_uri": "http://127.0.0.1:8/slack/oauth_redirect"}, "bad_redirect_uri"),
        ({"team": "T0NOPE"}, "Unknown team"),
    ],
)
def test_install_page_refuses_bad_requests(
    emu: SlackEmulator, params: dict[str, str | None], error: str
) -> None:
    emu.oauth_redirect_urls = ["http://127.0.0.1:9/slack"]
    status, location, page = _browse(_install_url(emu, **params))
    assert (status, location) == (400, "")
    assert error in page
    assert emu.calls_to("oauth.v2.authorize")[0].status == 400


def test_install_redirect_uri_rules(emu: SlackEmulator) -> None:
    # No redirect_uri and none configured: nowhere to go back to.
    assert _browse(_install_url(emu, redirect_uri=None))[0] == 400
    emu.oauth_redirect_urls = [INSTALL_REDIRECT]
    back = _install(emu, redirect_uri=None)  # the configured one is used
    # None was given to authorize, so oauth.v2.access need not repeat it.
    WebClient(base_url=emu.api_url).oauth_v2_access(
        client_id=emu.client_id, client_secret=emu.client_secret, code=back["code"]
    )
    back = _install(emu)
    with pytest.raises(SlackApiError) as exc:
        _access(emu, code=back["code"], redirect_uri="http://127.0.0.1:9/other")
    assert _error(exc) == "bad_redirect_uri"
    assert _access(emu, code=back["code"])["ok"]


JsonAnswer = dict[str, Any]


def _form_access(emu: SlackEmulator, **form: str) -> JsonAnswer:
    """oauth.v2.access with the credentials in the form, through urllib."""
    data = urlencode(form).encode()
    with urllib.request.urlopen(f"{emu.api_url}oauth.v2.access", data, timeout=5) as resp:
        answer: JsonAnswer = json.loads(resp.read())
    return answer


def test_oauth_v2_access_errors(emu: SlackEmulator) -> None:
    code = _install(emu)["code"]
    good = {"client_id": emu.client_id, "client_secret": emu.client_secret}
    cases = [
        ({**good, "client_id": "1.2", "code": code}, "invalid_client_id"),
        ({**good, "client_secret": "nope", "code": code}, "bad_client_secret"),
        ({**good, "code": "1.2.3"}, "invalid_code"),
        ({**good, "code": code, "redirect_uri": "http://127.0.0.1:9/x"}, "bad_redirect_uri"),
        ({**good, "code": code, "grant_type": "password"}, "invalid_grant_type"),
        (
            {**good, "grant_type": "refresh_token", "refresh_token": "xoxe-1-x"},
            "invalid_refresh_token",
        ),
    ]
    for form, error in cases:
        assert _form_access(emu, **form) == {"ok": False, "error": error}
    answer = _form_access(emu, **good, code=code, redirect_uri=INSTALL_REDIRECT)
    assert answer["ok"] and answer["team"]["id"] == "T0TEAM1"

    emu.oauth_code_ttl = 0.0  # codes expire (Slack: after 10 minutes)
    code = _install(emu)["code"]
    assert _form_access(emu, **good, code=code, redirect_uri=INSTALL_REDIRECT)["error"] == (
        "invalid_code"
    )


def _refresh(emu: SlackEmulator, refresh_token: str) -> Any:
    """oauth.v2.access with grant_type=refresh_token, as slack_sdk's TokenRotator calls it."""
    return WebClient(base_url=emu.api_url).oauth_v2_access(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )


def test_token_rotation_and_refresh(emu: SlackEmulator, globex: SlackEmulator) -> None:
    emu.token_rotation = True
    answer = _access(emu, code=_install(emu, team="T0TEAM2", user_scope="identity.basic")["code"])
    assert answer["access_token"].startswith("xoxe.xoxb-1-")
    assert answer["refresh_token"].startswith("xoxe-1-")
    assert answer["expires_in"] == 43200
    user = answer["authed_user"]
    assert user["access_token"].startswith("xoxe.xoxp-1-")
    assert (user["refresh_token"][:7], user["expires_in"]) == ("xoxe-1-", 43200)

    renewed = _refresh(emu, answer["refresh_token"])
    assert (renewed["token_type"], renewed["team"]["id"]) == ("bot", "T0TEAM2")
    assert renewed["bot_user_id"] == globex.bot_user_id
    assert renewed["access_token"] not in (answer["access_token"], None)
    assert renewed["refresh_token"] != answer["refresh_token"]
    for token in (answer["access_token"], renewed["access_token"]):  # both live until expiry
        assert _api(emu, token).auth_test()["team_id"] == "T0TEAM2"
    with pytest.raises(SlackApiError) as exc:  # a refresh token works once
        _refresh(emu, answer["refresh_token"])
    assert _error(exc) == "invalid_refresh_token"
    user_renewed = _refresh(emu, user["refresh_token"])
    assert (user_renewed["token_type"], user_renewed["user_id"]) == ("user", "U7")
    assert user_renewed["access_token"].startswith("xoxe.xoxp-1-")

    emu.token_ttl = 0.3
    short = _refresh(emu, renewed["refresh_token"])
    assert short["expires_in"] == 1
    obj = globex.add_file(
        "F9", name="g.png", content=PNG, mimetype="image/png", filetype="png", user="U7"
    )
    assert _get(obj["url_private_download"], short["access_token"])[2] == PNG
    time.sleep(0.4)
    with pytest.raises(SlackApiError) as exc:
        _api(emu, short["access_token"]).auth_test()
    assert _error(exc) == "token_expired"
    assert globex.calls_to("auth.test")[-1].response["error"] == "token_expired"
    assert _get(obj["url_private_download"], short["access_token"])[1].startswith("text/html")


def test_uninstall_revokes_every_token(emu: SlackEmulator, globex: SlackEmulator) -> None:
    emu.token_rotation = True
    answer = _access(emu, code=_install(emu, team="T0TEAM2", user_scope="identity.basic")["code"])
    obj = globex.add_file(
        "F9", name="g.png", content=PNG, mimetype="image/png", filetype="png", user="U7"
    )

    envelope = emu.uninstall("T0TEAM2")
    assert envelope["type"] == "event_callback"
    assert (envelope["team_id"], envelope["api_app_id"]) == ("T0TEAM2", emu.app_id)
    assert envelope["token"] == emu.verification_token
    assert envelope["event"]["type"] == "app_uninstalled"
    assert isinstance(envelope["event"]["event_ts"], str)
    assert envelope["event_id"].startswith("Ev")
    assert isinstance(envelope["event_time"], int)
    assert envelope["authorizations"][0]["team_id"] == "T0TEAM2"

    for token in (globex.bot_token, answer["access_token"], answer["authed_user"]["access_token"]):
        with pytest.raises(SlackApiError) as exc:
            _api(emu, token).auth_test()
        assert _error(exc) == "token_revoked"
    status, ctype, body = _get(obj["url_private_download"], answer["access_token"])
    assert (status, ctype.startswith("text/html"), b"Sign in to Globex" in body) == (
        200,
        True,
        True,
    )
    with pytest.raises(SlackApiError) as exc:
        _refresh(emu, answer["refresh_token"])
    assert _error(exc) == "invalid_refresh_token"
    assert WebClient(token=emu.bot_token, base_url=emu.api_url).auth_test()["ok"]  # A untouched

    again = _access(emu, code=_install(emu, team="T0TEAM2")["code"])  # reinstalling works
    assert _api(emu, again["access_token"]).auth_test()["team_id"] == "T0TEAM2"


def test_revoke_bot_tokens(emu: SlackEmulator, globex: SlackEmulator) -> None:
    answer = _access(emu, code=_install(emu, team="T0TEAM2", user_scope="identity.basic")["code"])
    envelope = emu.revoke_bot_tokens("T0TEAM2")
    event = envelope["event"]
    assert (event["type"], event["tokens"]) == (
        "tokens_revoked",
        {"oauth": [], "bot": [globex.bot_user_id]},
    )
    assert envelope["team_id"] == "T0TEAM2"
    with pytest.raises(SlackApiError) as exc:
        _api(emu, answer["access_token"]).auth_test()
    assert _error(exc) == "token_revoked"
    assert _api(emu, answer["authed_user"]["access_token"]).auth_test()["user_id"] == "U7"
    with pytest.raises(ValueError, match="T0NOPE"):
        emu.uninstall("T0NOPE")
