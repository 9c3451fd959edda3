"""An agency upload link in a real browser: the admin makes it on /admin and copies it; a
second browser with no session (the agency) opens it, drops two images and a PDF and sees
an answer per file. Screenshots at 1280 x 800 and 390 x 844, axe, no console errors."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests import images
from tests.web.browser import PageFactory
from tests.web.conftest import Web
from tests.web.test_browser import check, sign_in_through_slack
from tests.web.test_pages import category


def test_an_admin_makes_a_link_and_an_agency_uploads_through_it(
    web: Web, page_factory: PageFactory
) -> None:
    category(web, "Campaigns")
    admin = page_factory(base_url=web.url)
    sign_in_through_slack(admin, "ana")
    admin.goto("/admin")
    admin.get_by_label("Label").fill("Northwind Studio, Lisbon shoot")
    admin.get_by_label("Category", exact=True).select_option(label="Campaigns")
    admin.get_by_label("Most files (empty: no limit)").fill("5")
    admin.get_by_role("button", name="Create link").click()
    field = admin.get_by_label("The new upload link")
    expect(field).to_be_visible()
    link = field.input_value()
    assert re.fullmatch(rf"{re.escape(web.url)}/u/[A-Za-z0-9_-]{{43}}", link), link
    expect(admin.get_by_role("row", name=re.compile("Northwind Studio"))).to_contain_text("live")
    check(admin, "admin-upload-links")

    agency = page_factory(base_url=web.url)  # another browser: no session, no cookies
    agency.goto(link)
    expect(agency.get_by_role("heading", name="Northwind Studio, Lisbon shoot")).to_be_visible()
    expect(agency.locator("#files-left")).to_contain_text("You can send 5 more files")
    check(agency, "upload-link")
    agency.set_input_files(
        "#files",
        files=[
            {"name": "lisbon-1.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=51)},
            {"name": "lisbon-2.jpg", "mimeType": "image/jpeg", "buffer": images.jpeg(seed=52)},
            {"name": "brief.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 no"},
        ],
    )
    expect(agency.locator(".result-stored")).to_have_count(2)
    expect(agency.locator(".result-failed")).to_contain_text(
        "brief.pdf" + "not saved: this file is a PDF, only images are kept"
    )
    expect(agency.locator("#files-left")).to_contain_text("You can send 3 more files")
    assert agency.locator("a").count() == 1  # the skip link; nothing leads into the library
    check(agency, "upload-link-done")

    phone = page_factory(base_url=web.url, mobile=True)
    phone.goto(link)
    expect(phone.locator("label[for=files]")).to_be_visible()
    check(phone, "upload-link")
    admin_phone = page_factory(base_url=web.url, mobile=True)
    sign_in_through_slack(admin_phone, "ana")
    admin_phone.goto("/admin")
    expect(admin_phone.get_by_role("heading", name="Upload links")).to_be_visible()
    check(admin_phone, "admin-upload-links")
