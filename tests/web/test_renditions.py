"""The ready-made sizes on the image page: made by libvips from the local original, or by
Cloudinary's transformations (a signed redirect), and only for people who may see it."""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests import images
from tests.conftest import POSTER, AppProcess
from tests.fakes.cloudinary_api import CloudinaryEmulator
from tests.fakes.slack_api import SlackEmulator
from tests.live import start_live
from tests.web.conftest import Web, web_env


def test_local_sizes_are_made_from_the_original(web: Web) -> None:
    poster = web.sign_in(POSTER)
    big = images.jpeg(width=2400, height=1800, seed=5)
    image_id = poster.upload([("big.jpg", big)]).json()["image_id"]
    expected = {"web": (1600, 1200), "square": (1080, 1080), "thumb": (360, 240)}
    for size, dimensions in expected.items():
        answer = poster.get(f"/images/{image_id}/{size}?download=1")
        assert answer.status == 200 and answer.headers["Content-Type"] == "image/jpeg"
        assert "attachment" in answer.headers["Content-Disposition"]
        assert PILImage.open(io.BytesIO(answer.body)).size == dimensions, size
    original = poster.get(f"/images/{image_id}/original")
    assert original.body == big


@pytest.fixture
def cloudinary_web(
    database_url: str,
    slack: SlackEmulator,
    cloudinary: CloudinaryEmulator,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
) -> Iterator[Web]:
    running = start_live(
        database_url=database_url,
        slack=slack,
        tmp_path=tmp_path,
        run_app=run_app,
        extra_env={**web_env(slack), "CLOUDINARY_URL": cloudinary.cloudinary_url},
    )
    yield Web(running)
    running.db.shutdown()


def test_with_cloudinary_sizes_are_signed_transformations(cloudinary_web: Web) -> None:
    poster = cloudinary_web.sign_in(POSTER)
    answer = poster.upload([("shot.jpg", images.jpeg(seed=9))]).json()
    assert answer["state"] == "stored", answer
    expected = {
        "web": "c_limit,f_auto,h_1600,q_auto,w_1600",
        "square": "c_fill,f_auto,h_1080,q_auto,w_1080",
        "thumb": "c_fill,f_auto,h_240,q_auto,w_360",
    }
    for size, transformation in expected.items():
        redirect = poster.request("GET", f"/images/{answer['image_id']}/{size}", follow=False)
        assert redirect.status == 302, size
        location = urllib.parse.urlsplit(redirect.headers["Location"])
        assert location.scheme == "https" and location.hostname == "res.cloudinary.com"
        assert "/s--" in location.path and f"/{transformation}/" in location.path, location.path
    download = poster.request(
        "GET", f"/images/{answer['image_id']}/square?download=1", follow=False
    ).headers["Location"]
    assert "/c_fill,f_auto,fl_attachment,h_1080,q_auto,w_1080/" in download, download
    stranger = cloudinary_web.browser()
    hidden = stranger.request("GET", f"/images/{answer['image_id']}/square", follow=False)
    assert hidden.status == 302 and "/login" in hidden.headers["Location"]
