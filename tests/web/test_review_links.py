"""Client review links end to end: the app as a process, asked on the web or in Slack's modal,
a client deciding on their review page over HTTP, and what Slack then received (the cards,
the thread, the requester), the audit, and the e-mails a local SMTP server got."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from handlers.slack.approvals import ids as approvals_ids
from storage.access import ReviewLink
from storage.db import session_scope
from storage.models import ApprovalRequest, AuditEvent, Category, Image
from tests.conftest import MEMBER, POSTER, PUBLIC_CHANNEL, AppProcess
from tests.fakes.slack_api import SlackEmulator
from tests.fakes.smtp_server import FakeSmtpServer
from tests.live import start_live, wait_until
from tests.web.conftest import Answer, Browser, Web, web_env
from tests.web.test_pages import category, upload

CLARA = "Clara <clara@example.com>"


def ask(
    browser: Browser, image_id: int, *, approvers: tuple[str, ...] = (), outside: str = CLARA
) -> Answer:
    browser.get(f"/images/{image_id}/approval")
    fields = [("approvers", a) for a in approvers] + [("outside", outside), ("note", "For Q4")]
    return browser.post(f"/images/{image_id}/approval", fields)


def links_on(answer: Answer) -> list[str]:
    """The review links a page hands over, as paths."""
    return re.findall(r'value="https?://[^"/]+(/review/[A-Za-z0-9_-]{43})"', answer.text)


def request_of(page: Answer) -> int:
    found = re.search(r'action="/review/[A-Za-z0-9_-]+/(\d+)"', page.text)
    assert found, page.text[:2000]
    return int(found.group(1))


def slack_image(web: Web, file_id: str, *, seed: int) -> int:
    """An image posted in #marketing-shoots (so it has a thread), by the poster."""
    web.live.post(web.live.add_jpeg(file_id, seed=seed))
    stored = wait_until(
        lambda: [i for i in web.live.stored() if i.slack_file_id == file_id], what="stored"
    )
    return int(stored[0].id)


def said(web: Web, method: str = "chat.postMessage") -> str:
    return json.dumps([c.params for c in web.slack.calls_to(method)])


def updates_saying(web: Web, text: str) -> list[dict[str, object]]:
    """The parameters of the chat.update calls whose card says `text`."""
    return [c.params for c in web.slack.calls_to("chat.update") if text in json.dumps(c.params)]


def audit_lines(web: Web, image_id: int) -> list[tuple[str, str, dict[str, object]]]:
    with session_scope(web.live.db.factory) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.image_id == image_id))
        return [(e.actor_id, e.action, dict(e.detail or {})) for e in rows]


def no_broken_mentions(web: Web) -> None:
    everything = json.dumps([c.params for c in web.slack.calls])
    assert "<@review:" not in everything
    assert not [c for c in web.slack.calls if str(c.params.get("channel", "")).startswith("review")]


def set_policy_all(web: Web, image_ids: list[int]) -> None:
    campaigns = category(web, "Campaigns")
    with session_scope(web.live.db.factory) as session:
        session.execute(
            update(Category).where(Category.id == campaigns).values(approval_policy="all")
        )
        session.execute(update(Image).where(Image.id.in_(image_ids)).values(category_id=campaigns))


def test_a_client_approves_under_any_and_slack_and_the_web_show_it(web: Web) -> None:
    image_id = slack_image(web, "F0REVIEW1", seed=61)
    poster = web.sign_in(POSTER)
    asked = ask(poster, image_id, approvers=(MEMBER,))
    assert asked.status == 200 and "only time these links are shown" in asked.text
    [path] = links_on(asked)
    wait_until(lambda: web.live.cards_recorded() >= 1, what="the member's card")
    # Slack saw the client by name, never as a mention; no card went to them.
    thread = wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("thread_ts") and "Sent for approval" in c.params.get("text", "")
        ],
        what="the thread notice",
    )
    assert f"<@{MEMBER}>, Clara (client)" in thread[0].params["text"]
    clara = web.browser()
    page = clara.get(path)
    assert page.status == 200 and "Hello Clara" in page.text and "For Q4" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    request_id = request_of(page)
    picture = clara.get(f"{path}/{request_id}/image")
    assert picture.status == 200 and picture.headers["Content-Type"] == "image/jpeg"
    decided = clara.post(f"{path}/{request_id}", {"decision": "approved", "name": "Clara"})
    assert decided.status == 200 and "your decision is recorded" in decided.text
    assert 'value="approved"' not in decided.text  # settled: no buttons
    wait_until(lambda: updates_saying(web, "Approved by Clara (client)"), what="card updated")
    told = wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("thread_ts") and "Approved by Clara (client)" in c.params["text"]
        ],
        what="the requester told in the thread",
    )
    assert told[0].params["text"].startswith(f"<@{POSTER}>")
    assert ("approved", {"reviewer": "Clara"}) in [
        (a, {"reviewer": d.get("reviewer")}) for _, a, d in audit_lines(web, image_id)
    ]
    image_page = poster.get(f"/images/{image_id}")
    assert "Approved by Clara (client, via review link)" in image_page.text
    assert 'class="status status-approved"' in image_page.text
    # The member's card no longer offers buttons; a click there changes nothing.
    assert approvals_ids.APPROVE not in json.dumps(updates_saying(web, "Approved by Clara")[-1])
    no_broken_mentions(web)


def test_under_all_the_client_and_the_slack_approver_must_both_approve(web: Web) -> None:
    poster = web.sign_in(POSTER)
    first, second = upload(poster, 2, seed=70)
    set_policy_all(web, [first, second])
    [path] = links_on(ask(poster, first, approvers=(MEMBER,)))
    [other_path] = links_on(ask(poster, second, approvers=(MEMBER,)))
    wait_until(lambda: web.live.cards_recorded() >= 2, what="the member's cards")
    clara = web.browser()
    request_id = request_of(clara.get(path))
    approved = clara.post(f"{path}/{request_id}", {"decision": "approved", "name": "Clara"})
    assert "Waiting for the other approvers" in approved.text
    wait_until(
        lambda: updates_saying(web, f"Approved so far by Clara (client); waiting for <@{MEMBER}>"),
        what="the member's card says who approved",
    )
    assert (image := web.live.image(first)) is not None and image.status == "pending"
    payload = web.slack.block_action(
        user=MEMBER, action_id=approvals_ids.APPROVE, value=str(request_id), channel=None
    )
    payload["container"] = {"type": "message", "channel_id": f"D{MEMBER}", "message_ts": "1.1"}
    assert web.live.sender.interactive(payload).status == 200
    wait_until(lambda: (i := web.live.image(first)) and i.status == "approved", what="approved")
    # One rejection rejects, with the reason everywhere.
    other_id = request_of(clara.get(other_path))
    refused = clara.post(f"{other_path}/{other_id}", {"decision": "rejected", "name": "Clara"})
    assert refused.status == 400 and "Say why it is rejected" in refused.text
    clara.post(f"{other_path}/{other_id}", {"decision": "rejected", "reason": "Too dark & <b>"})
    wait_until(
        lambda: updates_saying(web, "Rejected by Clara (client): Too dark &amp; &lt;b&gt;"),
        what="the card says rejected, escaped",
    )
    told = wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == POSTER and "Rejected by Clara" in c.params.get("text", "")
        ],
        what="the requester told",
    )
    assert told
    page = poster.get(f"/images/{second}")
    assert html.escape("Rejected by Clara (client, via review link): Too dark & <b>") in page.text
    no_broken_mentions(web)


def test_expired_revoked_settled_and_cancelled_links_say_so_without_buttons(web: Web) -> None:
    poster = web.sign_in(POSTER)
    ids = upload(poster, 4, seed=80)
    expired, revoked, settled, cancelled = (
        links_on(ask(poster, i, approvers=(MEMBER,)))[0] for i in ids
    )
    clara = web.browser()
    # Expired: nothing shown, nothing decided, no image bytes.
    expired_request = request_of(clara.get(expired))
    with session_scope(web.live.db.factory) as session:
        session.execute(
            update(ReviewLink)
            .where(
                ReviewLink.id
                == session.scalars(select(ReviewLink.id).order_by(ReviewLink.id)).first()
            )
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    page = clara.get(expired)
    assert "has expired" in page.text and 'value="approved"' not in page.text
    assert clara.get(f"{expired}/{expired_request}/image").status == 404
    late = clara.post(f"{expired}/{expired_request}", {"decision": "approved"})
    assert late.status == 400 and "has expired" in late.text
    assert (image := web.live.image(ids[0])) is not None and image.status == "pending"
    # Revoked by the requester on the image page: the request waits for the member only.
    revoked_request = request_of(clara.get(revoked))
    image_page = poster.get(f"/images/{ids[1]}")
    link_id = re.search(r'action="/review-links/(\d+)/revoke"', image_page.text).group(1)  # type: ignore[union-attr]
    done = poster.post(f"/review-links/{link_id}/revoke", {"back": str(ids[1])})
    assert "Review link revoked" in done.text
    assert re.search(r"waiting for\s+max\s*</p>", done.text), done.text
    assert "was revoked" in clara.get(revoked).text
    assert clara.post(f"{revoked}/{revoked_request}", {"decision": "approved"}).status == 400
    assert (image := web.live.image(ids[1])) is not None and image.status == "pending"
    # Settled by someone else: the page tells the outcome.
    settled_request = request_of(clara.get(settled))
    member = web.sign_in(MEMBER)
    member.get("/approvals")
    member.post(f"/approvals/{settled_request}/decide", {"decision": "approved"})
    page = clara.get(settled)
    assert "This request is settled" in page.text and 'value="approved"' not in page.text
    # Cancelled by the requester.
    cancelled_request = request_of(clara.get(cancelled))
    poster.get("/approvals")
    poster.post(f"/approvals/{cancelled_request}/cancel")
    page = clara.get(cancelled)
    assert "withdrawn" in page.text and 'value="approved"' not in page.text
    # Unknown and malformed tokens: a plain 404, rate limited like every outside page.
    for wrong in ("/review/" + "A" * 43, "/review/short", "/review/%3Cscript%3E"):
        answer = clara.get(wrong)
        assert answer.status == 404 and "Hello" not in answer.text
    no_broken_mentions(web)


def test_revoking_the_only_client_of_a_request_cancels_it_and_tells_slack(web: Web) -> None:
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1, seed=90)
    set_policy_all(web, [image_id])
    asked = ask(poster, image_id)  # only a client: allowed
    assert asked.status == 200
    mine = poster.get("/approvals")
    assert "Clara (client)" in mine.text
    link_id = re.search(r'action="/review-links/(\d+)/revoke"', mine.text).group(1)  # type: ignore[union-attr]
    assert web.sign_in(MEMBER).post(f"/review-links/{link_id}/revoke").status == 400
    poster.get("/approvals")
    assert "Review link revoked" in poster.post(f"/review-links/{link_id}/revoke").text
    assert (image := web.live.image(image_id)) is not None and image.status == "draft"
    with session_scope(web.live.db.factory) as session:
        assert session.scalars(select(ApprovalRequest.state)).all() == ["cancelled"]
    wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == POSTER and "cancelled" in c.params.get("text", "")
        ],
        what="the requester told it was cancelled",
    )
    no_broken_mentions(web)


def test_the_review_page_shows_nothing_else_of_the_library(web: Web) -> None:
    poster = web.sign_in(POSTER)
    shown, hidden = upload(poster, 2, seed=95)
    with session_scope(web.live.db.factory) as session:
        session.execute(
            update(Image).where(Image.id == hidden).values(title="Secret merger", tags=["m-and-a"])
        )
        session.execute(
            update(Image).where(Image.id == shown).values(title="Beach", tags=["internal-tag"])
        )
    [path] = links_on(ask(poster, shown, approvers=(MEMBER,)))
    page = web.browser().get(path)
    assert "Beach" in page.text
    for leak in (
        "Secret merger",
        "m-and-a",
        "internal-tag",
        f"/images/{hidden}",
        f"/images/{shown}",
        MEMBER,
        "<nav",
    ):
        assert leak not in page.text, leak
    hrefs = re.findall(r'href="([^"]+)"', page.text)
    assert all(h.startswith(("/static/", "#", "data:")) for h in hrefs), hrefs
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"


def test_asked_in_slack_without_smtp_the_requester_gets_the_links_in_a_dm(web: Web) -> None:
    image_id = slack_image(web, "F0REVIEW2", seed=63)
    view_id, view = web.live.click_to_open(approvals_ids.REQUEST_APPROVAL, str(image_id))
    assert approvals_ids.OUTSIDE_BLOCK in json.dumps(view)

    def submit(outside: str) -> object:
        values = {
            "approvers": {"value": {"type": "multi_users_select", "selected_users": []}},
            approvals_ids.OUTSIDE_BLOCK: {"value": {"type": "plain_text_input", "value": outside}},
        }
        return web.live.submit(view_id, values)

    bad = submit("Clara <clara@nowhere>")
    assert "Line 1" in bad.json()["errors"][approvals_ids.OUTSIDE_BLOCK]  # type: ignore[attr-defined]
    too_long = submit(("x" * 101) + " <clara@example.com>")
    assert "under 100" in too_long.json()["errors"][approvals_ids.OUTSIDE_BLOCK]  # type: ignore[attr-defined]
    ok = submit("clara@example.com, Clara\nBo <bo@example.org>")
    assert ok.status == 200  # type: ignore[attr-defined]
    dm = wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == POSTER and "/review/" in c.params.get("text", "")
        ],
        what="the links handed to the requester",
    )
    paths = re.findall(r"(/review/[A-Za-z0-9_-]{43})", dm[0].params["text"])
    assert len(paths) == 2 and "Bo &lt;bo@example.org&gt;" in dm[0].params["text"]
    assert "/review/" not in json.dumps(web.slack.messages(PUBLIC_CHANNEL))
    assert "Hello Bo" in web.browser().get(paths[1]).text
    no_broken_mentions(web)


@pytest.fixture
def mailing(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[tuple[Web, FakeSmtpServer]]:
    with FakeSmtpServer() as smtp:
        extra = web_env(slack) | {"SMTP_URL": smtp.url, "SMTP_FROM": "Images <img@example.com>"}
        running = start_live(
            database_url=database_url,
            slack=slack,
            tmp_path=tmp_path,
            run_app=run_app,
            extra_env=extra,
        )
        yield Web(running), smtp
        running.db.shutdown()


def test_with_smtp_the_client_is_emailed_their_link_and_the_password_stays_secret(
    mailing: tuple[Web, FakeSmtpServer],
) -> None:
    web, smtp = mailing
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1, seed=99)
    asked = ask(poster, image_id, approvers=(MEMBER,))
    assert "e-mailed their review links" in asked.text and not links_on(asked)
    [mail] = smtp.wait_for(1)
    assert mail.recipients == ["clara@example.com"] and mail.user == smtp.user
    assert mail.message["From"] == "Images <img@example.com>"
    assert "asks you to review" in mail.body and "For Q4" in mail.body
    path = re.search(r"http://localhost:\d+(/review/[A-Za-z0-9_-]{43})", mail.body).group(1)  # type: ignore[union-attr]
    assert "Hello Clara" in web.browser().get(path).text
    assert smtp.password not in web.live.app.logs()


def test_one_link_covers_every_image_of_a_batch_asked_from_the_details_form(web: Web) -> None:
    poster = web.sign_in(POSTER)
    ids = upload(poster, 2, seed=130)
    poster.get(f"/upload/details?ids={','.join(map(str, ids))}")
    fields = [("ids", ",".join(map(str, ids))), ("tags", "q4"), ("outside", "bad line")]
    fields += [(f"title-{i}", f"Batch {n}") for n, i in enumerate(ids)]
    refused = poster.post("/upload/details", fields)
    assert refused.status == 400 and 'id="outside-error"' in refused.text
    saved = poster.post("/upload/details", [*fields[:2], ("outside", CLARA), *fields[3:]])
    assert saved.status == 200 and "Approval requested for 2 images" in saved.text
    [path] = links_on(saved)
    clara = web.browser()
    page = clara.get(path)
    assert "Batch 0" in page.text and "Batch 1" in page.text
    first, second = re.findall(r'action="/review/[A-Za-z0-9_-]+/(\d+)"', page.text)
    clara.post(f"{path}/{first}", {"decision": "approved"})
    clara.post(f"{path}/{second}", {"decision": "rejected", "reason": "Off brand"})
    statuses = [(i := web.live.image(image_id)) and i.status for image_id in ids]
    assert statuses == ["approved", "rejected"]
    page = clara.get(path)
    assert page.text.count("This request is settled") == 2


def test_over_https_a_client_decides_though_their_page_sends_no_referrer(
    routed_web: Web,
) -> None:
    """Flask-WTF refuses an https form post without a Referer (its strict check), and the
    review page sends none, by design: the link's own token is what authorises the post."""
    web = routed_web
    image_id = slack_image(web, "F0REVIEWS", seed=67)
    poster = web.sign_in(POSTER)
    [path] = links_on(ask(poster, image_id))
    clara = web.browser()
    https = {"X-Forwarded-Proto": "https", "Referer": ""}
    page = clara.get(path, headers=https)
    assert page.status == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    decided = clara.post(
        f"{path}/{request_of(page)}", {"decision": "approved", "name": "Clara"}, headers=https
    )
    assert decided.status == 200 and "your decision is recorded" in decided.text, decided.text
    wait_until(
        lambda: (
            updates_saying(web, "Approved by Clara (client)")
            or said(web).count("Approved by Clara (client)")
        ),
        what="Slack told",
    )
