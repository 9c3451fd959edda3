"""`/media` links over HTTP against the running app: a bad link of any shape is a 403, and
the first preview of a transparent PNG is a JPEG on white."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage

from storage.db import session_scope
from storage.models import Image, IngestJob, IngestState
from tests.conftest import POSTER, PUBLIC_CHANNEL, AppProcess, app_env, free_port, make_services
from tests.fakes.slack_api import SlackEmulator
from tests.live import RealClock, wait_until


def transparent_png() -> bytes:
    picture = PILImage.new("RGBA", (900, 600), (0, 0, 0, 0))
    picture.paste((200, 30, 30, 255), (300, 200, 600, 400))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_media_links_refuse_any_bad_signature_and_serve_a_first_preview(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    port = free_port()
    env = app_env(database_url=database_url, slack=slack, media_dir=tmp_path / "media", port=port)
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    db = make_services(env, clock=RealClock(), watch=True)
    app = run_app(env)
    slack.add_file(
        "F0PNG",
        name="logo.png",
        content=transparent_png(),
        mimetype="image/png",
        filetype="png",
        user=POSTER,
    )
    app.sender().event(slack.message_event(channel=PUBLIC_CHANNEL, user=POSTER, files=["F0PNG"]))

    def stored_key() -> str | None:
        with session_scope(db.factory) as session:
            return session.scalar(
                Image.__table__.select()
                .with_only_columns(Image.storage_key)
                .join(IngestJob.__table__, IngestJob.image_id == Image.id)
                .where(IngestJob.state == IngestState.STORED)
            )

    key = wait_until(stored_key, what="the PNG to be stored")
    thumb = db.media.thumbnail_url(key, width=360, height=240)
    assert thumb is not None
    base, signature = thumb.rsplit("&s=", 1)
    # Non-ASCII in the signature (a link mangled on the way) made hmac.compare_digest raise.
    for bad in ("%C3%A9t%C3%A9", "%FF%FE", signature[:-1] + "%E2%9C%93", "", "x" * 300):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}&s={bad}", timeout=10)
        assert refused.value.code == 403, bad
        assert refused.value.read() == b"This link is invalid or expired\n"
    with urllib.request.urlopen(thumb, timeout=30) as response:
        assert response.headers["Content-Type"] == "image/jpeg"
        preview = PILImage.open(io.BytesIO(response.read()))
    assert preview.format == "JPEG"
    assert preview.size == (360, 240)
    assert preview.convert("RGB").getpixel((5, 5)) >= (250, 250, 250)  # white, not black
    red, green, blue = preview.convert("RGB").getpixel((180, 120))
    assert red > 150 and green < 80 and blue < 80
    db.shutdown()
