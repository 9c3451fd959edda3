"""The browser harness itself, on a tiny static site served from 127.0.0.1: before the web
door's pages exist, this shows a click, a screenshot, axe-core and error capture all work."""

from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.web.browser import (
    DESKTOP,
    MOBILE,
    PageFactory,
    assert_accessible,
    assert_no_console_errors,
    check_accessibility,
    console_errors,
    screenshot,
)

PIXEL = (  # a 1x1 PNG
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/"
    "iZk9HQAAAABJRU5ErkJggg=="
)
# As the web door will: scripts only from files of its own (the script below is one). A page
# naming no icon makes Chromium fetch /favicon.ico, and that 404 is a console error.
HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy" content="script-src 'self'">
<title>{title}</title></head>"""
SITE = {
    "good.html": HEAD.format(title="Good page")
    + f"""<body><main><h1>Hello</h1>
<img src="{PIXEL}" alt="A single pixel">
<button type="button" id="greet">Say hello</button>
<p role="status" id="greeting">Not yet</p>
</main><script src="greet.js"></script></body></html>""",
    "greet.js": """document.getElementById("greet").addEventListener("click", () => {
  document.getElementById("greeting").textContent = "Hello, world";
});""",
    "bad.html": HEAD.format(title="Bad page")
    + f"""<body><main><h1>No alt text</h1><img src="{PIXEL}"></main></body></html>""",
    "broken.html": HEAD.format(title="Broken page")
    + """<body><main><h1>Broken</h1></main>
<script src="broken.js"></script><script src="missing.js"></script></body></html>""",
    "broken.js": """console.error("something went wrong");
undefinedFunction();""",
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    for name, content in SITE.items():
        (root / name).write_text(content)
    handler = functools.partial(QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_a_click_runs_the_pages_script(page_factory: PageFactory, site: str) -> None:
    from playwright.sync_api import expect

    page = page_factory(base_url=site)
    page.goto("/good.html")
    page.get_by_role("button", name="Say hello").click()
    expect(page.get_by_role("status")).to_have_text("Hello, world")
    assert_no_console_errors(page)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("mobile", [False, True], ids=["desktop", "mobile"])
def test_a_screenshot_is_a_png_of_the_viewport(
    page_factory: PageFactory, site: str, mobile: bool
) -> None:
    page = page_factory(base_url=site, mobile=mobile)
    page.goto("/good.html")
    path = screenshot(page, "harness-good")
    size = MOBILE if mobile else DESKTOP
    assert path.name == f"harness-good-{size['width']}x{size['height']}.png"
    assert png_size(path) == (size["width"], size["height"])


def test_axe_finds_the_missing_alt_text(page_factory: PageFactory, site: str) -> None:
    page = page_factory(base_url=site)
    page.goto("/bad.html")
    violations = check_accessibility(page)
    image_alt = [v for v in violations if v["id"] == "image-alt"]
    assert image_alt, violations
    assert image_alt[0]["impact"] == "critical"
    assert image_alt[0]["nodes"][0]["target"] == ["img"]
    with pytest.raises(AssertionError, match=r"image-alt \[critical\]: .*\['img'\]"):
        assert_accessible(page)


def test_the_good_page_is_accessible_despite_its_csp(page_factory: PageFactory, site: str) -> None:
    page = page_factory(base_url=site, mobile=True)
    page.goto("/good.html")
    assert_accessible(page)
    assert_accessible(page)  # axe is injected once per page
    assert_no_console_errors(page)  # injecting axe past the CSP logs nothing


def test_console_errors_are_captured(page_factory: PageFactory, site: str) -> None:
    page = page_factory(base_url=site)
    page.goto("/broken.html", wait_until="load")
    errors = console_errors(page)
    assert any("something went wrong" in e for e in errors), errors
    assert any(e.startswith("uncaught:") and "undefinedFunction" in e for e in errors), errors
    assert any("404" in e for e in errors), errors  # missing.js
    with pytest.raises(AssertionError, match="the page logged errors"):
        assert_no_console_errors(page)
