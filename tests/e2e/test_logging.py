"""What the running app writes to its log never holds a secret, whichever logger wrote it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from tests.conftest import AppProcess, app_env
from tests.fakes.slack_api import SlackEmulator
from tests.live import Live, wait_until


def test_gunicorn_error_log_redacts_the_bot_token(
    tmp_path: Path, slack: SlackEmulator, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(database_url=f"sqlite:///{tmp_path / 'l.db'}", slack=slack, media_dir=tmp_path)
    app = run_app(env)
    # A malformed request line: gunicorn itself logs it ("Invalid request from ip=...: ...").
    with socket.create_connection(("127.0.0.1", app.port), timeout=5) as conn:
        conn.sendall(f"GET / HTTP/1.1 {slack.bot_token}\r\n\r\n".encode())
        conn.recv(4096)
    logged = wait_until(
        lambda: "Invalid request" in app.logs() and app.logs(), what="gunicorn's warning"
    )
    assert "[redacted]" in logged
    assert slack.bot_token not in logged


def test_an_ingested_image_leaves_no_libvips_chatter_in_the_log(live: Live) -> None:
    live.post(live.add_jpeg("F0QUIET", seed=3))
    wait_until(live.stored, what="stored")

    def logged_the_ingest() -> str | None:
        text = live.app.logs()
        return text if "stored image" in text else None

    # The app's own INFO lines are there (written just after the row)...
    logged = wait_until(logged_the_ingest, what="the ingest's log line")
    assert "VIPS" not in logged and "pyvips" not in logged  # ...libvips' INFO lines are not
