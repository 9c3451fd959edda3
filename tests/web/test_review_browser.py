"""A client's review page in a real browser (Chromium via tests/web/browser.py): open the
link, approve one image, reject another with a reason (after forgetting it once), on a
desktop and on a phone; every state screenshotted, checked with axe, free of console errors."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect
from sqlalchemy import update

from storage.db import session_scope
from storage.models import Image
from tests.conftest import MEMBER, POSTER
from tests.live import wait_until
from tests.web.browser import PageFactory, assert_accessible, assert_no_console_errors, screenshot
from tests.web.conftest import Web
from tests.web.test_pages import upload
from tests.web.test_review_links import ask, links_on


def check(page: Page, name: str, *, expected: tuple[str, ...] = ()) -> None:
    page.wait_for_load_state()
    assert_accessible(page)
    assert_no_console_errors(page, ignore=expected)
    screenshot(page, name)


def test_a_client_approves_one_image_and_rejects_another_in_the_browser(
    web: Web, page_factory: PageFactory
) -> None:
    poster = web.sign_in(POSTER)
    beach, office = upload(poster, 2, seed=120)
    with session_scope(web.live.db.factory) as session:
        session.execute(update(Image).where(Image.id == beach).values(title="Beach campaign"))
        session.execute(update(Image).where(Image.id == office).values(title="Office portrait"))
    clara = "Clara Silva <clara@example.com>"
    [approve_link] = links_on(ask(poster, beach, approvers=(MEMBER,), outside=clara))
    [reject_link] = links_on(ask(poster, office, outside=clara))
    wait_until(lambda: web.live.cards_recorded() >= 1, what="the member's card")

    desktop = page_factory(base_url=web.url)
    desktop.goto(approve_link)
    expect(desktop.get_by_role("heading", name="Hello Clara Silva")).to_be_visible()
    expect(desktop.get_by_role("img", name="Beach campaign")).to_be_visible()
    assert desktop.evaluate("document.querySelector('.review-image img').naturalWidth") > 0
    check(desktop, "review-open")
    desktop.get_by_role("button", name="Approve").click()
    expect(desktop.get_by_text("your decision is recorded")).to_be_visible()
    expect(desktop.get_by_role("button", name="Approve")).to_have_count(0)
    check(desktop, "review-approved")

    phone = page_factory(base_url=web.url, mobile=True)
    phone.goto(reject_link)
    expect(phone.get_by_role("heading", name="Office portrait")).to_be_visible()
    check(phone, "review-open-phone")
    phone.get_by_role("button", name="Reject").click()
    expect(phone.get_by_role("alert")).to_contain_text("Say why it is rejected")
    phone.get_by_label("Reason (needed to reject)").fill("The light is too harsh")
    phone.get_by_role("button", name="Reject").click()
    expect(phone.get_by_text("You rejected it")).to_be_visible()
    # The page that said a reason was missing answered 400, as every refused form does.
    check(phone, "review-rejected-phone", expected=(r"status of 400 .*/review/",))

    # Slack saw both, by the client's name.
    wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.update")
            if "Approved by Clara Silva (client)" in json.dumps(c.params)
        ],
        what="the member's card updated",
    )
    told = wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == POSTER
            and re.search(
                r"Rejected by Clara Silva \(client\): The light", c.params.get("text", "")
            )
        ],
        what="the requester told of the rejection",
    )
    assert told
