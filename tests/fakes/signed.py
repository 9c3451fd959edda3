"""Send requests to the app exactly as Slack does: signed, form- or JSON-encoded, over HTTP.

The encoding (`encode_event`, `encode_command`, `encode_interactive`) and the signing
(`SlackSigner.headers`) are usable on their own: the fast tier (tests/handlers/) hands the
same body and headers to Bolt's `App.dispatch` in-process instead of POSTing them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def encode_event(envelope: dict[str, Any]) -> tuple[str, str]:
    """(body, content type) of an Events API delivery: the envelope as JSON."""
    return json.dumps(envelope), JSON


def encode_command(**fields: str) -> tuple[str, str]:
    """(body, content type) of a slash command: its fields, form-encoded."""
    return urlencode(fields), FORM


def encode_interactive(payload: dict[str, Any]) -> tuple[str, str]:
    """(body, content type) of an interaction (actions, views, options, shortcuts):
    `payload=<url-encoded JSON>`."""
    return urlencode({"payload": json.dumps(payload)}), FORM


def retry_headers(retry_num: int | None, retry_reason: str = "") -> dict[str, str]:
    """What Slack adds when it delivers an event again."""
    if retry_num is None:
        return {}
    return {
        "X-Slack-Retry-Num": str(retry_num),
        "X-Slack-Retry-Reason": retry_reason or "http_timeout",
    }


class SlackSigner:
    """Signs with the signing secret like Slack: v0=HMAC-SHA256(secret, v0:{ts}:{body})."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret)

    def headers(
        self,
        body: str,
        *,
        content_type: str,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> dict[str, str]:
        """The headers Slack sends with `body` (a given `signature` replaces the real one)."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature
            or self._verifier.generate_signature(timestamp=ts, body=body),
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    elapsed: float  # seconds from send to the full answer

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackSender:
    """Posts signed requests to the app's URL, as Slack does."""

    def __init__(self, url: str, signing_secret: str) -> None:
        self.url = url
        self._signer = SlackSigner(signing_secret)

    def post(
        self,
        body: str,
        *,
        content_type: str,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        timeout: float = 10.0,
    ) -> Reply:
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers=self._signer.headers(
                body,
                content_type=content_type,
                headers=headers,
                timestamp=timestamp,
                signature=signature,
            ),
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            data, status = exc.read(), exc.code
        return Reply(status=status, body=data, elapsed=time.perf_counter() - started)

    def event(
        self, envelope: dict[str, Any], *, retry_num: int | None = None, retry_reason: str = ""
    ) -> Reply:
        body, content_type = encode_event(envelope)
        return self.post(
            body, content_type=content_type, headers=retry_headers(retry_num, retry_reason)
        )

    def command(self, **fields: str) -> Reply:
        body, content_type = encode_command(**fields)
        return self.post(body, content_type=content_type)

    def interactive(self, payload: dict[str, Any]) -> Reply:
        body, content_type = encode_interactive(payload)
        return self.post(body, content_type=content_type)
