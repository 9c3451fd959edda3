"""Browser tests of the web door: Debian's Chromium driven by Playwright's sync API (without
Playwright's own browser download), pages per test, screenshots and axe-core checks.

A pytest plugin (tests/conftest.py loads it). Every test that uses `chromium` (through
`page_factory` too) is marked `browser`: without Chromium or Playwright such tests are skipped
with one loud line, and REQUIRE_BROWSER (CI) makes that a failure (see `Tracked` there).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page

# This machine's network is closed: without these Chromium keeps dialling Google.
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root Chromium needs it
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000  # a hung page fails fast, a busy CI machine (4 workers, 2 cores) does not

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored

# axe-core from the npm registry, pinned; the integrity is what
# `npm view axe-core@4.14.1 dist.integrity` printed when it was pinned.
AXE_VERSION = "4.14.1"
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="  # noqa: E501 - as npm prints it
AXE_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "imglib-test"
    / f"axe-core-{AXE_VERSION}"
)


def unavailable(message: str) -> NoReturn:
    """Skip this test for want of something on the machine: a failure under REQUIRE_BROWSER."""
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail(f"{message} (REQUIRE_BROWSER is set, so this is a failure)", pytrace=False)
    pytest.skip(message)


def find_chromium() -> tuple[str | None, str]:
    """(path, where it came from) or (None, why not): $CHROMIUM, else /usr/bin/chromium, else
    `chromium` on PATH."""
    if configured := os.environ.get("CHROMIUM"):
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured, "$CHROMIUM"
        return None, f"CHROMIUM={configured} is not an executable file"
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium", "Debian's package"
    if found := shutil.which("chromium"):
        return found, "PATH"
    return None, "no Chromium (not $CHROMIUM, /usr/bin/chromium or `chromium` on PATH)"


def pytest_report_header(config: pytest.Config) -> str:
    path, source = find_chromium()
    if path is None:
        return f"Browser: NONE - browser tests will be SKIPPED ({source})"
    if importlib.util.find_spec("playwright") is None:
        return "Browser: NONE - browser tests will be SKIPPED (playwright is not installed)"
    return f"Browser: Chromium at {path} ({source})"


@pytest.hookimpl(tryfirst=True)  # before -m deselects: `-m "not browser"` works
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, one per session (per xdist worker)."""
    path, source = find_chromium()
    if path is None:
        unavailable(f"browser tests cannot run: {source}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("browser tests cannot run: playwright is not installed")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=path, args=CHROMIUM_ARGS, timeout=60_000
            )
        except Exception as error:
            unavailable(f"browser tests cannot run: Chromium at {path} did not start: {error}")
        yield browser
        browser.close()


# Errors each page logged: console.error() calls, failed loads, uncaught exceptions.
_errors: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


class PageFactory(Protocol):
    def __call__(
        self,
        *,
        base_url: str | None = None,
        mobile: bool = False,
        viewport: dict[str, int] | None = None,
        **context_options: Any,
    ) -> Page: ...


@pytest.fixture
def page_factory(chromium: Browser) -> Iterator[PageFactory]:
    """page_factory(base_url=..., mobile=False) -> a Page in a new browser context (1280x800, or
    390x844 with touch for `mobile`), timeouts 5 s, errors collected for
    `assert_no_console_errors`. Every context is closed after the test."""
    contexts = []

    def new_page(
        *,
        base_url: str | None = None,
        mobile: bool = False,
        viewport: dict[str, int] | None = None,
        **context_options: Any,
    ) -> Page:
        if mobile:
            context_options = {"is_mobile": True, "has_touch": True} | context_options
        context = chromium.new_context(
            base_url=base_url,
            viewport=viewport or (MOBILE if mobile else DESKTOP),
            **context_options,
        )
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors = _errors.setdefault(page, [])

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location
                errors.append(
                    f"console.error: {message.text} ({where.get('url')}:{where.get('lineNumber')})"
                )

        def on_page_error(error: Error) -> None:
            errors.append(f"uncaught: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    yield new_page
    for context in contexts:
        context.close()


def console_errors(page: Page) -> list[str]:
    """What `page` logged as errors so far (console.error, failed loads, uncaught exceptions)."""
    return list(_errors.get(page, []))


def assert_no_console_errors(page: Page, *, ignore: tuple[str, ...] = ()) -> None:
    """Fails listing the errors `page` logged, but those matching an `ignore` regex."""
    errors = [e for e in console_errors(page) if not any(re.search(p, e) for p in ignore)]
    assert not errors, "the page logged errors:\n  " + "\n  ".join(errors)


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG at tests/web/screenshots/<name>-<width>x<height>.png (the viewport's
    size); returns its path."""
    size = page.viewport_size or {"width": 0, "height": 0}
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"
    page.screenshot(path=path, full_page=True)
    return path


# -- accessibility ----------------------------------------------------------------------------

_axe_problem: str | None = None  # why axe-core could not be had: asked once per process


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def axe_script() -> Path:
    """axe.min.js of AXE_VERSION, fetched once with `npm pack` into a cache outside the repo
    (~/.cache/imglib-test/) and checked against AXE_INTEGRITY. Parallel workers wait on a lock."""
    global _axe_problem  # noqa: PLW0603 - once per process
    script = AXE_CACHE / "axe.min.js"
    if script.is_file():
        return script
    if _axe_problem is None:
        _axe_problem = _fetch_axe(script)
    if _axe_problem:
        unavailable(f"accessibility checks cannot run: {_axe_problem}")
    return script


def _fetch_axe(script: Path) -> str:
    """Puts axe.min.js at `script`; returns why not, or ''."""
    npm = shutil.which("npm")
    if npm is None:
        return f"npm is not installed (axe-core {AXE_VERSION} comes from the npm registry)"
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    with (AXE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if script.is_file():  # another worker fetched it meanwhile
            return ""
        with tempfile.TemporaryDirectory(dir=AXE_CACHE) as tmp:
            try:
                subprocess.run(
                    [npm, "pack", f"axe-core@{AXE_VERSION}", "--ignore-scripts", "--silent"],
                    cwd=tmp,
                    check=True,
                    capture_output=True,
                    timeout=180,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                output = getattr(error, "stderr", b"") or b""
                return f"`npm pack axe-core@{AXE_VERSION}` failed: {output.decode()[-500:]}"
            tarball = Path(tmp) / f"axe-core-{AXE_VERSION}.tgz"
            data = tarball.read_bytes()
            if _integrity(data) != AXE_INTEGRITY:
                pytest.fail(
                    f"axe-core {AXE_VERSION} from npm is not the pinned tarball: integrity "
                    f"{_integrity(data)}, expected {AXE_INTEGRITY}"
                )
            with tarfile.open(tarball) as archive:
                member = archive.extractfile("package/axe.min.js")
                assert member is not None
                partial = Path(tmp) / "axe.min.js"
                partial.write_bytes(member.read())
            partial.replace(script)  # atomic: a reader sees all of it or nothing
    return ""


def check_accessibility(
    page: Page, *, context: str | None = None, options: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """axe-core's violations on `page` as it is now (or in the `context` selector): each a dict
    with id, impact, help, helpUrl and nodes (whose `target` are selectors)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        logged = len(_errors.get(page, []))
        source = axe_script()
        from playwright.sync_api import Error

        try:
            page.add_script_tag(path=source)
        except Error as error:
            if "Content Security Policy" not in str(error):
                raise
            # The page's CSP refused an inline script (as it should): evaluate axe from outside
            # the page instead, and forget the refusal the page logged.
            page.evaluate(source.read_text())
            del _errors.setdefault(page, [])[logged:]
    return page.evaluate(
        "async ([context, options]) => (await axe.run(context ?? document, options ?? {}))"
        ".violations",
        [context, options],
    )


def assert_accessible(
    page: Page,
    *,
    impacts: tuple[str, ...] = ("serious", "critical"),
    context: str | None = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Fails listing every axe-core violation of these impacts (id, help, first targets)."""
    violations = [
        v
        for v in check_accessibility(page, context=context, options=options)
        if v.get("impact") in impacts
    ]
    lines = []
    for v in violations:
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:3]]
        more = f" (+{len(v['nodes']) - 3} more)" if len(v["nodes"]) > 3 else ""
        lines.append(f"{v['id']} [{v['impact']}]: {v['help']} - {targets}{more}")
    assert not violations, f"{len(violations)} accessibility violations on {page.url}:\n  " + (
        "\n  ".join(lines)
    )
