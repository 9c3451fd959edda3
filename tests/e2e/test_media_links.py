"""Signed links to local originals keep working whichever process made them and across
restarts: every process signs with the same key (MEDIA_SIGNING_KEY, or one kept beside the
media), Socket Mode included, which has no signing secret to derive one from."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from storage.media import MediaInfo
from tests import images
from tests.conftest import TEAM, AppProcess, app_env, free_port, make_services
from tests.fakes.slack_api import SlackEmulator


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("explicit_key", [False, True])
def test_a_link_made_by_the_worker_opens_in_socket_mode_after_a_restart(
    slack: SlackEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
    explicit_key: bool,
) -> None:
    port = free_port()
    env = app_env(
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        slack=slack,
        media_dir=tmp_path / "media",
        socket_mode=True,
        port=port,
    )
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    if explicit_key:
        env["MEDIA_SIGNING_KEY"] = "k" * 40
    worker = make_services(env)  # this process plays the worker: it makes the link
    data = images.jpeg(seed=3)
    original = tmp_path / "upload.jpg"
    original.write_bytes(data)
    stored = worker.media.put(
        original, MediaInfo(sha256=sha256(data).hexdigest(), format="JPEG", team_id=TEAM)
    )
    link = worker.media.original_url(stored.key)
    assert link is not None

    app = run_app(env, command=("socket",))
    assert fetch(link) == 200
    app.stop()
    app.start()  # a restart (a deploy, a crash): the link Slack holds still opens
    assert fetch(link) == 200
    assert fetch(link.replace("s=", "s=x")) == 403
    # Raw bytes that are not UTF-8 (no client percent-encodes for an attacker): Socket Mode's
    # small server passes them on, and they must be a 403 like any bad link, not a 500.
    path = link.removeprefix(f"http://127.0.0.1:{port}")
    for raw in (path.replace("s=", "s=\xff").encode("latin-1"), path.encode() + b"\xc3("):
        assert raw_get(port, raw) == 403, raw
    worker.shutdown()


def raw_get(port: int, target: bytes) -> int:
    """The status of a GET whose request target is exactly these bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        head = conn.recv(64)
    return int(head.split(b" ", 2)[1])


def test_media_signing_key_must_be_long_and_is_never_shown() -> None:
    with pytest.raises(ConfigError, match="MEDIA_SIGNING_KEY"):
        Settings.from_env({"MEDIA_SIGNING_KEY": "short"}, dotenv=False)
    settings = Settings.from_env({"MEDIA_SIGNING_KEY": "s" * 40}, dotenv=False)
    assert "s" * 40 not in repr(settings)
    assert "s" * 40 in settings.secret_values
