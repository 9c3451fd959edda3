"""The web library in a real browser (Debian's Chromium, driven by Playwright): a newcomer's
first minute with nothing configured, and a marketing team's day with Slack connected -
sign in through Slack's (the emulator's) pages, upload several files, fill the batch's
details, search, open an image, ask for approval, approve as the approver and check Slack
saw it. Every page is screenshotted at 1280 x 800 and 390 x 844, checked with axe-core and
used with the keyboard somewhere."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests import images
from tests.conftest import ADMIN, POSTER, AppProcess, app_env
from tests.live import wait_until
from tests.web.browser import (
    PageFactory,
    assert_accessible,
    assert_no_console_errors,
    screenshot,
)
from tests.web.conftest import Web
from tests.web.test_pages import category


def check(page: Page, name: str, *, expected: tuple[str, ...] = ()) -> None:
    """What every page must be: accessible, free of console errors (a CSP violation is
    one), and photographed. Slack's own sign-in page (the emulator's) has no favicon."""
    page.wait_for_load_state()
    assert_accessible(page)
    assert_no_console_errors(page, ignore=(r"127\.0\.0\.1:\d+/favicon\.ico", *expected))
    screenshot(page, name)


def sign_in_through_slack(page: Page, who: str) -> None:
    """From any page: our sign-in page, then Slack's, where `who` is chosen."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_role("link", name="Sign in with Slack").click()
    expect(page.get_by_role("heading", name=re.compile("Sign in to"))).to_be_visible()
    page.get_by_role("link", name=re.compile(who)).click()
    expect(page.get_by_role("searchbox", name="Search the library")).to_be_visible()


def test_a_newcomer_uploads_finds_and_opens_an_image_within_a_minute_with_nothing_configured(
    database_url: str,
    tmp_path: Path,
    run_app: Callable[..., AppProcess],
    page_factory: PageFactory,
) -> None:
    app = run_app(app_env(database_url=database_url, slack=None, media_dir=tmp_path / "media"))
    link = re.search(r"(http://localhost:\d+/login/link\?token=\S+)", app.logs())
    assert link, app.logs()
    started = time.monotonic()
    page = page_factory(base_url=app.url)
    page.goto(link.group(1).replace("http://localhost", app.url.rsplit(":", 1)[0]))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("0 images")).to_be_visible()
    page.get_by_role("link", name="Upload", exact=True).click()
    page.set_input_files(
        "#files",
        files=[
            {"name": "beach.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=31)},
            {"name": "office.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=32)},
        ],
    )
    expect(page.locator(".result-stored")).to_have_count(2)
    page.get_by_role("link", name="Add details for these images").click()
    page.get_by_label("Title of image 1").fill("Beach campaign")
    page.get_by_label("Tags").fill("summer")
    page.get_by_role("button", name="Save details").click()
    page.get_by_role("searchbox", name="Search the library").fill("beach")
    page.keyboard.press("Enter")
    page.get_by_role("link", name=re.compile("Beach campaign")).click()
    expect(page.get_by_role("heading", name="Beach campaign")).to_be_visible()
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"the newcomer's first minute took {elapsed:.1f} s"
    assert_no_console_errors(page)


def test_the_marketing_teams_day_in_the_browser(web: Web, page_factory: PageFactory) -> None:
    category(web, "Marketing")
    for mobile in (False, True):
        page = page_factory(base_url=web.url, mobile=mobile)
        page.goto("/login")
        check(page, "login")
    page = page_factory(base_url=web.url)
    sign_in_through_slack(page, "pat")
    check(page, "library-empty")

    # Upload three files at once (one refused), with a progress bar each.
    page.get_by_role("link", name="Upload", exact=True).click()
    page.set_input_files(
        "#files",
        files=[
            {"name": "cmo-1.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=41)},
            {"name": "cmo-2.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=42)},
            {"name": "brief.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 x"},
        ],
    )
    expect(page.locator(".result-stored")).to_have_count(2)
    expect(page.locator(".result-failed")).to_contain_text("PDF")
    expect(page.locator("progress")).to_have_count(3)
    check(page, "upload")

    # One details form for the batch, keyboard only.
    page.get_by_role("link", name="Add details for these images").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Add details")).to_be_visible()
    check(page, "batch-details")
    page.get_by_label("Title of image 1").fill("CMO on stage")
    page.get_by_label("Title of image 2").fill("CMO backstage")
    page.get_by_label("Tags").fill("cmo, keynote")
    page.get_by_label("Category").select_option(label="Marketing")
    page.get_by_label("Shoot date").fill("2026-10-02")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_text("Details saved for 2 images")).to_be_visible()
    check(page, "library")

    # Search with the Slack query language; a chip narrows it.
    page.get_by_role("searchbox", name="Search the library").fill("tag:cmo stage")
    page.keyboard.press("Enter")
    expect(page.locator(".tile")).to_have_count(1)
    page.get_by_role("link", name="Marketing", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"category:Marketing"))
    expect(page.locator(".chip.active")).to_have_text(["Marketing", "cmo"])
    check(page, "library-filtered")
    page.goto("/?q=tag:cmo")
    expect(page.locator(".tile")).to_have_count(2)
    page.get_by_role("link", name=re.compile("CMO on stage")).click()
    expect(page.get_by_role("heading", name="CMO on stage")).to_be_visible()
    expect(page.get_by_role("link", name="Square, 1080 px")).to_be_visible()
    check(page, "image")
    image_url = page.url

    page.get_by_role("link", name="Edit details").click()
    expect(page.get_by_role("heading", name="Edit details")).to_be_visible()
    check(page, "edit")
    page.go_back()

    # Ask Ana (an admin) to approve it.
    page.get_by_role("link", name="Request approval").click()
    check(page, "request-approval")
    page.get_by_label("ana").check()
    page.get_by_role("button", name="Send for approval").click()
    expect(page.locator(".notice")).to_contain_text("Approval requested")
    wait_until(lambda: web.live.cards_recorded() >= 1, what="the approver's card")

    # Ana approves in her browser; the card in her Slack DM changes.
    approver = page_factory(base_url=web.url)
    sign_in_through_slack(approver, "ana")
    approver.get_by_role("link", name="Approvals").click()
    expect(approver.get_by_role("heading", name="Waiting for me (1)")).to_be_visible()
    check(approver, "approvals")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("Decision saved")).to_be_visible()
    updates = wait_until(lambda: web.slack.calls_to("chat.update"), what="card updated")
    assert "Approved by <@UADMIN>" in json.dumps(updates[-1].params["blocks"])
    page.goto(image_url)
    expect(page.locator(".facts .status")).to_have_text("approved")

    approver.get_by_role("link", name="Admin").click()
    expect(approver.get_by_role("heading", name="Categories")).to_be_visible()
    check(approver, "admin")
    approver.goto("/images/999999")
    expect(approver.get_by_role("heading", name=re.compile("nothing here"))).to_be_visible()
    check(approver, "not-found", expected=(r"404 \(NOT FOUND\).*/images/999999",))

    # The same pages on a phone.
    phone = page_factory(base_url=web.url, mobile=True)
    sign_in_through_slack(phone, "pat")
    check(phone, "library")
    image_id = image_url.rsplit("/", 1)[1]
    for path, name in (
        ("/upload", "upload"),
        (image_url, "image"),
        (f"{image_url}/edit", "edit"),
        (f"{image_url}/approval", "request-approval"),
        (f"/upload/details?ids={image_id}", "batch-details"),
        ("/?q=tag:cmo+category:Marketing", "library-filtered"),
        ("/approvals", "approvals"),
    ):
        phone.goto(path)
        check(phone, name)
    admin_phone = page_factory(base_url=web.url, mobile=True)
    sign_in_through_slack(admin_phone, "ana")
    admin_phone.goto("/admin")
    check(admin_phone, "admin")
    assert POSTER and ADMIN  # the people named above by their Slack names, pat and ana


def tab_to(page: Page, target: Locator, *, limit: int = 60) -> None:
    """Press Tab until `target` has the focus (a person finding it with the keyboard)."""
    handle = target.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("el => el === document.activeElement", handle):
            return
    raise AssertionError(f"Tab never reached {target}")


def test_everything_works_with_the_keyboard(web: Web, page_factory: PageFactory) -> None:
    """Tab, Enter and Space only: choose files (the file chooser opens from the keyboard),
    open the details form, save, find the image, ask for approval, approve."""
    page = page_factory(base_url=web.url)
    sign_in_through_slack(page, "pat")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    tab_to(page, page.get_by_role("link", name="Upload", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Upload images")).to_be_visible()
    page.wait_for_load_state()
    tab_to(page, page.locator("#files"))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(
        [
            {"name": "k-1.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=61)},
            {"name": "k-2.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=62)},
        ]
    )
    expect(page.locator(".result-stored")).to_have_count(2)
    expect(page.get_by_role("link", name="Add details for these images")).to_be_focused()
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_label("Title of image 1"))
    page.keyboard.type(" by keyboard")
    tab_to(page, page.get_by_role("button", name="Save details"))
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_contain_text("Details saved for 2 images")
    tab_to(page, page.get_by_role("searchbox", name="Search the library"))
    page.keyboard.type("keyboard")
    page.keyboard.press("Enter")
    expect(page.locator(".tile")).to_have_count(1)
    tab_to(page, page.locator(".tile a"))
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_role("link", name="Request approval"))
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_label("ana"))
    page.keyboard.press("Space")
    tab_to(page, page.get_by_role("button", name="Send for approval"))
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_contain_text("Approval requested")

    approver = page_factory(base_url=web.url)
    sign_in_through_slack(approver, "ana")
    approver.goto("/approvals")
    tab_to(approver, approver.get_by_role("button", name="Approve"))
    approver.keyboard.press("Enter")
    expect(approver.locator(".notice")).to_contain_text("Decision saved")
    assert_no_console_errors(page, ignore=(r"127\.0\.0\.1:\d+/favicon\.ico",))


def test_load_more_appends_the_next_tiles_and_tags_are_suggested_as_you_type(
    web: Web, page_factory: PageFactory
) -> None:
    from tests.web.test_pages import upload

    poster = web.sign_in(POSTER)
    ids = upload(poster, 50)
    poster.get(f"/images/{ids[0]}/edit")
    poster.post(f"/images/{ids[0]}/edit", {"title": "Tagged", "tags": "cmo, keynote"})
    web.slack.sign_in_as(None)  # the browser below signs in through Slack's page
    page = page_factory(base_url=web.url)
    sign_in_through_slack(page, "pat")
    expect(page.locator(".tile")).to_have_count(48)
    page.get_by_role("link", name="Load more").click()
    expect(page.locator(".tile")).to_have_count(50)
    expect(page.get_by_role("link", name="Load more")).to_have_count(0)
    assert page.url.endswith("/")  # appended in place, the address unchanged
    page.goto(f"/images/{ids[1]}/edit")
    page.get_by_label("Tags").press_sequentially("key")
    expect(page.locator("#tag-suggestions option")).to_have_count(1)
    assert page.locator("#tag-suggestions option").get_attribute("value") == "keynote"
    assert_no_console_errors(page, ignore=(r"127\.0\.0\.1:\d+/favicon\.ico",))
