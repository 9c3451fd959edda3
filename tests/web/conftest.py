"""The web door running for real (gunicorn, a real port), Sign in with Slack through the
emulator's OpenID Connect endpoints, and a cookie-keeping HTTP client that acts like a
browser without JavaScript: it follows what the pages link to and posts what the forms hold,
CSRF token included."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppProcess
from tests.fakes.slack_api import SlackEmulator
from tests.live import Live, start_live


@dataclass
class Answer:
    status: int
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def form_token(self) -> str:
        found = re.search(r'name="csrf-token" content="([^"]+)"', self.text)
        assert found, f"no CSRF token on {self.url}"
        return found.group(1)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Browser:
    """One person's cookies against the app, like a browser tab without JavaScript."""

    base_url: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)
    token: str = ""

    def _opener(self, follow: bool) -> urllib.request.OpenerDirector:
        handlers: list[Any] = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(_NoRedirects())
        return urllib.request.build_opener(*handlers)

    def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        follow: bool = True,
    ) -> Answer:
        url = path if path.startswith("http") else self.base_url + path
        sent = {"Referer": self.base_url + "/", **(headers or {})}
        req = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with self._opener(follow).open(req, timeout=30) as response:
                return Answer(
                    response.status, response.url, dict(response.headers), response.read()
                )
        except urllib.error.HTTPError as error:
            return Answer(error.code, url, dict(error.headers), error.read())

    def get(self, path: str, **kw: Any) -> Answer:
        answer = self.request("GET", path, **kw)
        if 'name="csrf-token"' in answer.text:
            self.token = answer.form_token()
        return answer

    def post(
        self, path: str, fields: dict[str, Any] | list[tuple[str, str]] | None = None, **kw: Any
    ) -> Answer:
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields or [])
        if not any(k == "csrf_token" for k, _ in pairs) and kw.pop("csrf", True):
            pairs.append(("csrf_token", self.token))
        body = urllib.parse.urlencode(pairs).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **kw.pop("headers", {})}
        return self.request("POST", path, data=body, headers=headers, **kw)

    def upload(self, files: list[tuple[str, bytes]], *, audience: str = "workspace") -> Answer:
        """Like the page's script: one file per request, JSON back."""
        body, content_type = multipart([("audience", audience)], "files", files)
        return self.request(
            "POST",
            "/upload",
            data=body,
            headers={
                "Content-Type": content_type,
                "Accept": "application/json",
                "X-CSRFToken": self.token,
            },
        )


def multipart(
    fields: list[tuple[str, str]], file_field: str, files: list[tuple[str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body, as a browser or curl sends one, and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    for name, content in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Web:
    live: Live

    @property
    def url(self) -> str:
        return self.live.app.url

    @property
    def slack(self) -> SlackEmulator:
        return self.live.slack

    def browser(self) -> Browser:
        return Browser(self.url)

    def sign_in(self, user: str) -> Browser:
        """Sign in with Slack as `user` (signed in to Slack in this browser already)."""
        browser = self.browser()
        self.slack.sign_in_as(user)
        answer = browser.get("/login?start=1")
        assert answer.status == 200 and "/login" not in urllib.parse.urlsplit(answer.url).path, (
            answer.status,
            answer.url,
            answer.text[:500],
        )
        browser.get("/")
        return browser


def web_env(slack: SlackEmulator) -> dict[str, str]:
    return {"SLACK_CLIENT_ID": slack.client_id, "SLACK_CLIENT_SECRET": slack.client_secret}


@pytest.fixture
def web(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[Web]:
    """The app with Slack connected (HTTP) and Sign in with Slack configured, on SQLite and
    on Postgres, #marketing-shoots watched."""
    running = start_live(
        database_url=database_url,
        slack=slack,
        tmp_path=tmp_path,
        run_app=run_app,
        extra_env=web_env(slack),
    )
    yield Web(running)
    running.db.shutdown()


@pytest.fixture
def routed_web(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[Web]:
    """The web door behind one router (TRUSTED_PROXIES=1), as on Heroku: a request whose
    X-Forwarded-Proto says https is an https request to the app."""
    running = start_live(
        database_url=database_url,
        slack=slack,
        tmp_path=tmp_path,
        run_app=run_app,
        extra_env={**web_env(slack), "TRUSTED_PROXIES": "1"},
    )
    yield Web(running)
    running.db.shutdown()
