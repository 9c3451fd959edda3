"""Send requests to the app exactly as Slack does: signed, form- or JSON-encoded, over HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    elapsed: float  # seconds from send to the full answer

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackSender:
    """Signs with the signing secret like Slack: v0=HMAC-SHA256(secret, v0:{ts}:{body})."""

    def __init__(self, url: str, signing_secret: str) -> None:
        self.url = url
        self._verifier = SignatureVerifier(signing_secret)

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
        ts = str(timestamp if timestamp is not None else int(time.time()))
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature
                or self._verifier.generate_signature(timestamp=ts, body=body),
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
                **(headers or {}),
            },
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
        headers = {}
        if retry_num is not None:
            headers = {
                "X-Slack-Retry-Num": str(retry_num),
                "X-Slack-Retry-Reason": retry_reason or "http_timeout",
            }
        return self.post(json.dumps(envelope), content_type="application/json", headers=headers)

    def command(self, **fields: str) -> Reply:
        return self.post(urlencode(fields), content_type="application/x-www-form-urlencoded")

    def interactive(self, payload: dict[str, Any]) -> Reply:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, content_type="application/x-www-form-urlencoded")
