"""Approvals through the API: the same use cases as Slack and the web, so the approver's DM
card arrives, and a decision made here updates it."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ApiDoor, later, post_image
from tests.conftest import ADMIN, GUEST, MEMBER, POSTER, PUBLIC_CHANNEL
from tests.live import wait_until


def cards_to(api: ApiDoor, user: str) -> list[Any]:
    """Approval cards DMed to `user` (in their DM with the bot, or addressed to them)."""
    return [
        c
        for c in api.slack.calls_to("chat.postMessage")
        if any(b.get("block_id", "").startswith("approval:") for b in c.params.get("blocks", []))
        and c.params["channel"] in (user, f"D{user[1:]}")
    ]


def ask(api: ApiDoor, image_id: int, approvers: list[str], **extra: Any) -> Any:
    poster = api.client(POSTER)
    assert poster.patch(f"/api/v1/images/{image_id}", {"title": "For the site"}).status == 200
    return poster.post(f"/api/v1/images/{image_id}/approvals", {"approvers": approvers, **extra})


def test_asking_sends_the_card_and_deciding_updates_it(api: ApiDoor) -> None:
    image_id = post_image(api, seed=41, channel=PUBLIC_CHANNEL, user=POSTER)
    asked = ask(
        api, image_id, [MEMBER], note="For the launch page", due_at=later(days=2).isoformat()
    )
    assert asked.status == 201, asked.text
    request = asked.json()
    assert request["state"] == "open" and [v["approver_id"] for v in request["votes"]] == [MEMBER]
    wait_until(lambda: cards_to(api, MEMBER), what="the approver's card")

    member = api.client(MEMBER)
    waiting = member.get("/api/v1/approvals?role=approver&state=open").json()["items"]
    assert [r["id"] for r in waiting] == [request["id"]]
    mine = api.client(POSTER).get("/api/v1/approvals?role=requester").json()["items"]
    assert [r["id"] for r in mine] == [request["id"]]

    no_reason = member.post(f"/api/v1/approvals/{request['id']}/decision", {"decision": "reject"})
    assert no_reason.status == 422 and "reason" in no_reason.json()["errors"]
    decided = member.post(f"/api/v1/approvals/{request['id']}/decision", {"decision": "approve"})
    assert decided.status == 200, decided.text
    assert decided.json()["request"]["state"] == "approved" and decided.json()["counted"]
    wait_until(lambda: api.slack.calls_to("chat.update"), what="the card updated")
    assert api.client(POSTER).get(f"/api/v1/images/{image_id}").json()["status"] == "approved"
    again = member.post(
        f"/api/v1/approvals/{request['id']}/decision", {"decision": "reject", "reason": "late"}
    )
    assert again.status == 200 and again.json()["counted"] is False
    assert again.json()["request"]["state"] == "approved"


def test_who_may_ask_decide_and_cancel(api: ApiDoor) -> None:
    image_id = post_image(api, seed=42, channel=PUBLIC_CHANNEL, user=POSTER)
    not_poster = api.client(MEMBER).post(
        f"/api/v1/images/{image_id}/approvals", {"approvers": [ADMIN]}
    )
    assert not_poster.status == 403
    self_approval = ask(api, image_id, [POSTER])
    assert self_approval.status == 422 and "approvers" in self_approval.json()["errors"]
    assert ask(api, image_id, ["not-an-id"]).status == 422
    request_id = ask(api, image_id, [ADMIN]).json()["id"]
    path = f"/api/v1/approvals/{request_id}"
    for user in (MEMBER, POSTER):
        refused = api.client(user).post(f"{path}/decision", {"decision": "approve"})
        assert refused.status == 403, (user, refused.text)
    guest = api.client(GUEST).post(f"{path}/decision", {"decision": "approve"})
    missing = api.client(GUEST).post("/api/v1/approvals/999999/decision", {"decision": "approve"})
    assert guest.status == missing.status == 404 and guest.body == missing.body
    assert api.client(MEMBER).post(f"{path}/cancel").status == 403
    cancelled = api.client(POSTER).post(f"{path}/cancel")
    assert cancelled.status == 200 and cancelled.json()["request"]["state"] == "cancelled"
    assert api.client(POSTER).get(f"/api/v1/images/{image_id}").json()["status"] == "draft"


def test_a_client_named_through_the_api_gets_a_link_and_decides_on_it(api: ApiDoor) -> None:
    from tests.web.conftest import Browser

    image_id = post_image(api, seed=44, channel=PUBLIC_CHANNEL, user=POSTER)
    bad = ask(api, image_id, [], reviewers=[{"name": "Clara", "email": "not-an-address"}])
    assert bad.status == 422 and "does not look like an e-mail" in bad.json()["errors"]["reviewers"]
    nobody = ask(api, image_id, [])
    assert nobody.status == 422 and "approvers" in nobody.json()["errors"]

    asked = ask(api, image_id, [], reviewers=[{"name": "Clara", "email": "clara@example.com"}])
    assert asked.status == 201, asked.text
    [link] = asked.json()["review_links"]
    assert link["name"] == "Clara" and link["emailed"] is False  # no SMTP: handed over once
    assert link["url"].startswith(api.url + "/review/")
    [vote] = asked.json()["votes"]
    assert vote["approver_id"] == link["approver_id"] and vote["client_name"] == "Clara"

    clara = Browser(api.url)
    page = clara.get(link["url"])
    assert page.status == 200 and "Hello Clara" in page.text
    request_id = asked.json()["id"]
    decided = clara.post(link["url"] + f"/{request_id}", {"decision": "approved", "name": "Clara"})
    assert decided.status == 200 and "your decision is recorded" in decided.text
    mine = api.client(POSTER).get("/api/v1/approvals?role=requester&state=approved").json()
    assert [r["id"] for r in mine["items"]] == [request_id]
    assert mine["items"][0]["votes"][0]["decision"] == "approved"
    history = api.client(POSTER).get(f"/api/v1/images/{image_id}/history").json()
    summaries = [e["summary"] for e in history["items"]]
    assert "Approved by Clara (client, via review link)" in summaries
