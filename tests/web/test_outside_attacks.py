"""Attacks on the outside doors over HTTP: a review link reaching past its own requests,
tokens of one kind of link on the other's routes, HTML in a client's name, and the
private headers on the error pages of those routes."""

from __future__ import annotations

import re

from sqlalchemy import update

from storage.access import ReviewLink
from storage.db import session_scope
from tests.conftest import MEMBER, POSTER
from tests.web.conftest import Answer, Web
from tests.web.test_pages import upload
from tests.web.test_review_links import ask, links_on, request_of


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
