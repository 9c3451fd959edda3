"""Attacks on the outside doors over HTTP: a review link reaching past its own requests,
tokens of one kind of link on the other's routes, HTML and Slack markup in names and
labels, members at the admin's upload-link routes, HTML named .jpg, and the private
headers on the error pages of those routes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from sqlalchemy import update

from bot import tokens
from storage.access import ApiToken, ReviewLink
from storage.db import session_scope
from tests import images
from tests.conftest import ADMIN, MEMBER, POSTER, TEAM
from tests.live import wait_until
from tests.web.conftest import Answer, Web
from tests.web.test_pages import upload
from tests.web.test_review_links import (
    ask,
    links_on,
    request_of,
    slack_image,
    updates_saying,
)
from tests.web.test_upload_links import make_link, send, the_link


def private(answer: Answer) -> None:
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def plain(answer: Answer) -> str:
    """The page without its per-request CSRF token."""
    return re.sub(r'content="[^"]*"', "", answer.text)


def test_a_review_link_reaches_only_its_own_open_requests(web: Web) -> None:
    poster = web.sign_in(POSTER)
    mine, other, cancelled = upload(poster, 3, seed=140)
    [path] = links_on(ask(poster, mine, approvers=(MEMBER,)))
    [other_path] = links_on(ask(poster, other, approvers=(MEMBER,)))
    [gone_path] = links_on(ask(poster, cancelled, approvers=(MEMBER,)))
    clara = web.browser()
    own, foreign = request_of(clara.get(path)), request_of(clara.get(other_path))
    assert clara.get(f"{path}/{own}/image").status == 200
    # Another request's bytes and vote are not this link's.
    assert clara.get(f"{path}/{foreign}/image").status == 404
    assert clara.post(f"{path}/{foreign}", {"decision": "approved"}).status == 400
    assert (image := web.live.image(other)) is not None and image.status == "pending"
    # A withdrawn request stops serving its image to the link.
    gone = request_of(clara.get(gone_path))
    assert clara.get(f"{gone_path}/{gone}/image").status == 200
    poster.get("/approvals")
    poster.post(f"/approvals/{gone}/cancel")
    page = clara.get(gone_path)
    assert "withdrawn" in page.text and f"/{gone}/image" not in page.text
    assert clara.get(f"{gone_path}/{gone}/image").status == 404


def test_a_review_token_opens_no_upload_link_and_unknown_tokens_look_alike(web: Web) -> None:
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1, seed=150)
    [path] = links_on(ask(poster, image_id, approvers=(MEMBER,)))
    token = path.rsplit("/", 1)[1]
    stranger = web.browser()
    unknown = stranger.get("/u/" + "A" * 43)
    for wrong in (f"/u/{token}", "/u/" + "A" * 44, "/u/" + "a" * 65, "/u/%3Cb%3E" + "a" * 40):
        answer = stranger.get(wrong)
        assert answer.status == 404 and plain(answer) == plain(unknown), wrong
        private(answer)
    posted = stranger.post(f"/u/{token}/files", {}, csrf=False)
    assert posted.status == 404
    private(posted)
    near, short = stranger.get("/review/" + "Z" * 43), stranger.get(f"/review/{'C' * 9}")
    assert near.status == short.status == 404 and plain(near) == plain(short)
    private(short)


def test_html_in_a_clients_name_is_escaped_on_their_page_and_the_approvals(web: Web) -> None:
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1, seed=160)
    [path] = links_on(ask(poster, image_id, approvers=(MEMBER,)))
    evil = '<script>alert(1)</script><img src=x onerror="x">'
    with session_scope(web.live.db.factory) as session:
        session.execute(update(ReviewLink).values(name=evil))
    for page in (web.browser().get(path), poster.get("/approvals")):
        assert page.status == 200
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    private(web.browser().get(path))


def test_a_name_typed_on_the_review_page_reaches_slack_only_escaped(web: Web) -> None:
    image_id = slack_image(web, "F0ATTACK1", seed=170)
    poster = web.sign_in(POSTER)
    [path] = links_on(ask(poster, image_id, approvers=(MEMBER,)))
    wait_until(lambda: web.live.cards_recorded() >= 1, what="the member's card")
    clara = web.browser()
    request_id = request_of(clara.get(path))
    evil = "<!channel> *x* <https://evil.example|y>"
    clara.post(f"{path}/{request_id}", {"decision": "approved", "name": evil})
    # The vote is the link's: Slack names Clara, never what was typed.
    wait_until(lambda: updates_saying(web, "Approved by Clara (client)"), what="card updated")
    everything = json.dumps([c.params for c in web.slack.calls])
    assert "<!channel>" not in everything and "evil.example" not in everything
    page = poster.get(f"/images/{image_id}")
    assert "<https://evil" not in page.text and "<!channel>" not in page.text


def test_upload_links_take_no_html_and_answer_members_no(web: Web) -> None:
    evil = "<script>alert(1)</script> <!channel> <https://evil.example|y>"
    path = make_link(web, label=evil)
    boss = web.sign_in(ADMIN)
    for page in (boss.get("/admin"), web.browser().get(path)):
        assert page.status == 200 and "<script>alert(1)" not in page.text
    # A member can neither make a link nor revoke the admin's.
    member = web.sign_in(MEMBER)
    member.get("/")
    made = member.post("/admin/upload-links", {"label": "mine", "days": "7"})
    assert made.status in (403, 404) and "/u/" not in made.text
    member.post(f"/admin/upload-links/{the_link(web).id}/revoke")
    assert the_link(web).revoked_at is None
    # HTML named .jpg goes nowhere; a real image goes in as a draft.
    agency = web.browser()
    page = b"<html><script>alert(1)</script></html>"
    refused = send(agency, path, "cover.jpg", page)
    assert refused.json()["state"] == "failed", refused.text
    assert send(agency, path, "a.jpg", images.jpeg(seed=180)).json()["state"] == "stored"
    # The same picture again: kept (the admin settles duplicates), and the answer names no
    # image of the library, no id, no link: only this file's name, outcome and what is left.
    again = send(agency, path, "b.jpg", images.jpeg(seed=180)).json()
    assert set(again) <= {"name", "state", "reason", "left"}, again
    assert again["state"] == "stored" and again["reason"] is None, again


def test_nobody_revokes_anothers_api_token_and_its_name_is_escaped(web: Web) -> None:
    view, _ = tokens.create(
        web.live.db.factory,
        team_id=TEAM,
        user_id=POSTER,
        name="<script>alert(1)</script>",
        now=datetime.now(UTC),
        expires_at=None,
    )
    poster = web.sign_in(POSTER)
    page = poster.get("/tokens")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    # Without the form's CSRF token, even the owner's post does nothing.
    assert poster.post(f"/tokens/{view.id}/revoke", {}, csrf=False).status == 400
    member = web.sign_in(MEMBER)
    member.get("/tokens")
    assert member.post(f"/tokens/{view.id}/revoke").status == 404
    with session_scope(web.live.db.factory) as session:
        assert session.get(ApiToken, view.id).revoked_at is None  # type: ignore[union-attr]
