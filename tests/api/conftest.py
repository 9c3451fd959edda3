"""The API against the real app (gunicorn, a real port) with the Slack emulator: tokens are
made on the app's database the way `python -m bot token create` makes them, and a client
sends `Authorization: Bearer` and nothing else (no cookies)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import tokens
from tests.conftest import TEAM, AppProcess, free_port
from tests.fakes.slack_api import SlackEmulator
from tests.live import Live, start_live, wait_until
from tests.web.conftest import Answer, multipart, web_env


@dataclass
class Client:
    """One token's calls to the API."""

    base_url: str
    token: str

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return Answer(
                    response.status, response.url, dict(response.headers), response.read()
                )
        except urllib.error.HTTPError as error:
            return Answer(error.code, self.base_url + path, dict(error.headers), error.read())

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("POST", path, body=body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("PATCH", path, body=body, **kw)

    def upload(
        self,
        files: list[tuple[str, bytes]],
        *,
        audience: str | None = None,
        key: str | None = None,
    ) -> Answer:
        fields = [("audience", audience)] if audience is not None else []
        body, content_type = multipart(fields, "file", files)
        headers = {"Content-Type": content_type}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.request("POST", "/api/v1/images", data=body, headers=headers)


@dataclass
class ApiDoor:
    live: Live

    @property
    def url(self) -> str:
        return self.live.app.url

    @property
    def slack(self) -> SlackEmulator:
        return self.live.slack

    def token(
        self, user: str, *, team: str = TEAM, expires_at: datetime | None = None
    ) -> tuple[int, str]:
        view, token = tokens.create(
            self.live.db.factory,
            team_id=team,
            user_id=user,
            name=f"tests {uuid.uuid4().hex[:6]}",
            now=datetime.now(UTC),
            expires_at=expires_at,
        )
        return view.id, token

    def client(self, user: str, **kw: Any) -> Client:
        return Client(self.url, self.token(user, **kw)[1])

    def anonymous(self, token: str = "") -> Client:
        return Client(self.url, token)


def api_env(slack: SlackEmulator) -> dict[str, str]:
    """Sign in with Slack configured, and a public URL so local rendition links are made."""
    port = free_port()
    return {**web_env(slack), "PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}


@pytest.fixture
def api(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[ApiDoor]:
    """The app serving the API, on SQLite and on Postgres, #marketing-shoots watched."""
    running = start_live(
        database_url=database_url,
        slack=slack,
        tmp_path=tmp_path,
        run_app=run_app,
        extra_env=api_env(slack),
    )
    yield ApiDoor(running)
    running.db.shutdown()


FILES = iter(range(1, 10_000))


def post_image(door: ApiDoor, *, seed: int, channel: str, user: str) -> int:
    """Post a JPEG in a watched Slack channel; the id of the image once it is stored."""
    file_id = f"F0API{next(FILES):05d}"
    before = {i.id for i in door.live.stored()}
    door.live.post(door.live.add_jpeg(file_id, seed=seed), channel=channel, user=user)
    fresh = wait_until(
        lambda: [i.id for i in door.live.stored() if i.id not in before], what=f"{file_id} stored"
    )
    return int(fresh[0])


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)
