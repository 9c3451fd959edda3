"""App Home: `app_home_opened` publishes the person's Home tab (their images missing details,
their uploads, what waits for their approval), and the buttons on it work from there."""

from __future__ import annotations

import time

from tests.conftest import ADMIN, MEMBER, POSTER
from tests.handlers.slack.harness import Harness, buttons, said


def test_opening_home_publishes_it_even_with_nothing_to_show(h: Harness) -> None:
    sent = h.home_opened(MEMBER)
    assert (sent.status, sent.body) == (200, "")
    view = h.home(MEMBER)
    assert view["type"] == "home"
    assert (view["blocks"][0]["type"], view["blocks"][0]["text"]["text"]) == (
        "header",
        "Image library",
    )
    text = said(view)
    assert "`/images help` lists all commands" in text
    assert "Nothing: all your images have their details." in text
    assert "No uploads yet." in text
    assert h.slack.home_views[MEMBER]["id"]  # what Slack now shows on the tab


def test_home_lists_my_images_still_missing_details(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0LIST", seed=1, name="Launch_party.jpg")
    # Recorded but not stored (Slack will not hand over its bytes yet): not on the Home tab.
    h.slack.inject("files.download", "server_error", times=10)
    assert h.post(h.add_jpeg("F0COMING", seed=2, name="Still_coming.jpg")).status == 200
    h.home_opened(POSTER)
    view = h.home(POSTER, containing="Launch party")
    assert "Still coming" not in said(view)
    (add_details,) = buttons(view["blocks"], "add_details")
    assert add_details["value"] == str(image_id)
    click = h.click("add_details", add_details["value"], user=POSTER, home=True)
    _, modal = h.opened_view(click)  # the button works from the Home tab too
    assert modal["callback_id"] == "details.modal"


def test_an_approver_decides_from_home(watching: Harness) -> None:
    h = watching
    image_id = h.posted_image("F0WAIT", seed=2, name="Hero_shot.jpg")
    view_id, _ = h.opened_view(h.click("request_approval", str(image_id), user=POSTER))
    values = {"approvers": {"value": {"type": "multi_users_select", "selected_users": [MEMBER]}}}
    assert h.submit(view_id, values).body == ""
    h.home_opened(MEMBER)  # (already refreshed with the request: refreshes are coalesced)
    home = h.home(MEMBER, containing="Waiting for your approval")
    assert "Hero shot" in said(home) and "asked by <@UPOSTER>" in said(home)
    (approve,) = buttons(home["blocks"], "approve")
    assert len(buttons(home["blocks"], "reject")) == 1
    # The Home can show the request before the listener that asked has written down where
    # the approver's card is; a person is slower than that, a test must wait for it.
    h.settle()
    h.click("approve", approve["value"], user=MEMBER, home=True)
    h.settle()
    (card,) = [c for c in h.dms(MEMBER) if c.params.get("blocks")]
    now = h.slack.message(card.response["channel"], card.response["ts"])
    assert now is not None and "Approved by <@UMEMBER>" in said(now["blocks"])


def test_opening_the_messages_tab_publishes_nothing(h: Harness) -> None:
    sent = h.event(
        {"type": "app_home_opened", "user": MEMBER, "channel": "DMEMBER", "tab": "messages"}
    )
    assert sent.status == 200
    h.home_opened(ADMIN)  # a refresh asked after the one (not) asked for MEMBER
    h.home(ADMIN)
    time.sleep(0.05)
    assert h.calls("views.publish", lambda c: c.params["user_id"] == MEMBER) == []
