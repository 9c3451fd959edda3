"""Who sees what on the web, and who may change what: every view of an image, every size of
it, the grid, its count, its tags and categories, uploads, edits, approvals and the admin
pages, each checked from the side of someone who must not see (or change) it, against the
real app with images that came in through Slack or through the upload page.

Each test would let a private image (or a change) through if the check it aims at were
removed. An image someone may not see must look exactly like one that does not exist."""

from __future__ import annotations

import itertools
import random
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import func, select

from bot.config import Settings
from bot.uploads import GUESTS_PICK_A_CONVERSATION, NOT_A_MEMBER
from handlers.web.security import secret_key
from storage.db import session_scope
from storage.models import ApprovalRequest, Category, Image, WatchedChannel
from tests.conftest import (
    ADMIN,
    GUEST,
    MEMBER,
    POSTER,
    PRIVATE_CHANNEL,
    PUBLIC_CHANNEL,
    TEAM,
    AppProcess,
)
from tests.fakes.slack_api import SlackEmulator
from tests.images import jpeg
from tests.live import start_live, wait_until
from tests.web.conftest import Answer, Browser, Web, web_env

RENDITIONS = ("original", "grid", "large", "web", "square", "thumb")
MISSING = 999999
FILES = itertools.count(1)


# -- helpers ------------------------------------------------------------------------------------


def post_image(web: Web, *, seed: int, channel: str = PUBLIC_CHANNEL, user: str = POSTER) -> int:
    """Post a JPEG in a watched Slack channel; the id of the image once it is stored."""
    file_id = f"F0VIS{next(FILES):05d}"
    before = {i.id for i in web.live.stored()}
    web.live.post(web.live.add_jpeg(file_id, seed=seed), channel=channel, user=user)
    fresh = wait_until(
        lambda: [i.id for i in web.live.stored() if i.id not in before], what=f"{file_id} stored"
    )
    return int(fresh[0])


def watch_private_channel(
    web: Web, channel: str = PRIVATE_CHANNEL, name: str = "launch-secret"
) -> None:
    answer = web.live.command(f"watch <#{channel}|{name}>", user=ADMIN)
    assert f"Watching <#{channel}>" in str(answer), answer


def edit(
    browser: Browser, image_id: int, *, title: str, tags: str = "", category: str = ""
) -> Answer:
    """Save the edit form of an image (as the page would post it), without following."""
    browser.get(f"/images/{image_id}/edit")
    fields = {"title": title, "tags": tags, "category": category, "shoot_date": ""}
    return browser.post(f"/images/{image_id}/edit", {**fields, "description": ""}, follow=False)


def add_category(web: Web, admin: Browser, name: str) -> int:
    admin.get("/admin")
    answer = admin.post("/admin/categories", {"action": "add", "name": name})
    assert answer.status == 200 and f"Added {name}" in answer.text, answer.text[:500]
    return category_id(web, name)


def page_body(answer: Answer) -> str:
    """The page without its per-request CSRF tokens, to compare two answers."""
    return re.sub(
        r'(name="csrf-token" content=|name="csrf_token" value=)"[^"]*"', r'\1""', answer.text
    )


def urlpath(url: str) -> str:
    return urlsplit(url).path


def count_line(answer: Answer) -> str:
    found = re.search(r'<p class="count" role="status">([^<]*)</p>', answer.text)
    assert found, answer.text[:1000]
    return found.group(1).strip()


def grid_ids(answer: Answer) -> set[int]:
    return {int(i) for i in re.findall(r'<li class="tile">\s*<a href="/images/(\d+)"', answer.text)}


def chips(answer: Answer) -> list[str]:
    return re.findall(r'<a class="chip[^"]*" href="[^"]*"[^>]*>([^<]*)</a>', answer.text)


def image_rows(web: Web) -> int:
    with session_scope(web.live.db.factory) as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


def assert_like_missing(browser: Browser, image_id: int) -> None:
    """Every GET view and size of `image_id` is the 404 of an image that does not exist."""
    for suffix in ("", *(f"/{r}" for r in RENDITIONS), "/edit", "/approval"):
        seen = browser.get(f"/images/{image_id}{suffix}")
        missing = browser.get(f"/images/{MISSING}{suffix}")
        assert seen.status == 404, (suffix, seen.status, seen.text[:300])
        assert missing.status == 404
        assert page_body(seen) == page_body(missing), suffix
        assert seen.headers.get("Content-Type") == missing.headers.get("Content-Type")


def assert_sees(browser: Browser, image_id: int, title: str | None = None) -> None:
    page = browser.get(f"/images/{image_id}")
    assert page.status == 200, page.status
    if title:
        assert f"<h1>{title}</h1>" in page.text
    for size in RENDITIONS:
        answer = browser.get(f"/images/{image_id}/{size}")
        assert answer.status == 200 and answer.body[:2] == b"\xff\xd8", size


def category_id(web: Web, name: str) -> int:
    with session_scope(web.live.db.factory) as session:
        found = session.scalar(
            select(Category.id).where(Category.team_id == TEAM, Category.name == name)
        )
    assert found is not None
    return int(found)


# -- 1. a private channel's image ---------------------------------------------------------------


def test_an_image_from_a_private_channel_does_not_exist_for_someone_outside_it(web: Web) -> None:
    watch_private_channel(web)
    public = post_image(web, seed=11)
    secret = post_image(web, seed=12, channel=PRIVATE_CHANNEL)
    admin, poster, member = web.sign_in(ADMIN), web.sign_in(POSTER), web.sign_in(MEMBER)
    moonshot = add_category(web, admin, "Moonshot")
    assert edit(poster, public, title="Keynote stage", tags="keynote").status == 302
    saved = edit(poster, secret, title="Falcon reveal", tags="falcon", category=str(moonshot))
    assert saved.status == 302, saved.text[:500]

    assert_like_missing(member, secret)
    # Changing it is the same 404, and changes nothing.
    member.get("/")
    for path, fields in (
        (f"/images/{secret}/approval", {"approvers": ADMIN, "note": "please"}),
        (f"/images/{secret}/archive", {}),
        (f"/images/{secret}/edit", {"title": "Leaked", "tags": "", "category": ""}),
    ):
        answer = member.post(path, fields, follow=False)
        assert answer.status == 404, (path, answer.status)
        missing = member.post(path.replace(str(secret), str(MISSING)), fields, follow=False)
        assert page_body(answer) == page_body(missing), path
    image = web.live.image(secret)
    assert image is not None and image.title == "Falcon reveal" and image.status != "archived"
    with session_scope(web.live.db.factory) as session:
        assert session.scalars(select(ApprovalRequest)).all() == []

    # Not in the grid, the count, the chips, nor any search.
    grid = member.get("/")
    assert grid_ids(grid) == {public} and count_line(grid) == "1 image"
    assert "Falcon" not in grid.text and "falcon" not in chips(grid)
    assert "Moonshot" not in chips(grid) and "keynote" in chips(grid)
    for query in ("tag:falcon", "falcon", "Falcon reveal", "category:Moonshot", "tag:falcom"):
        found = member.get(f"/?q={quote(query)}")
        assert found.status == 200 and grid_ids(found) == set(), query
        assert count_line(found).startswith("0 images"), query
        # Neither its title, nor its tag offered as a chip, suggestion or correction.
        for leak in ("Falcon reveal", f"/images/{secret}", ">falcon<", "Showing tag"):
            assert leak.lower() in query.lower() or leak not in found.text, (query, leak)

    # The people in the channel see all of it.
    for browser in (poster, admin):
        assert_sees(browser, secret, "Falcon reveal")
        grid = browser.get("/")
        assert grid_ids(grid) == {public, secret} and count_line(grid) == "2 images"
        assert {"falcon", "keynote", "Moonshot"} <= set(chips(grid))
        assert grid_ids(browser.get("/?q=tag:falcon")) == {secret}
        assert grid_ids(browser.get("/?q=category:Moonshot")) == {secret}


def test_look_alikes_and_duplicates_never_point_at_a_private_copy(web: Web) -> None:
    watch_private_channel(web)
    secret = post_image(web, seed=5, channel=PRIVATE_CHANNEL)
    public = post_image(web, seed=5)  # the same picture, posted in public afterwards
    poster, member = web.sign_in(POSTER), web.sign_in(MEMBER)
    assert edit(poster, secret, title="Falcon mockup").status == 302
    assert f'href="/images/{secret}"' in poster.get(f"/images/{public}").text
    page = member.get(f"/images/{public}")
    assert page.status == 200
    assert f"/images/{secret}" not in page.text and "Falcon" not in page.text
    # Uploading the same picture again: the answer does not reveal the private copy.
    answer = member.upload([("copy.jpg", jpeg(seed=5))]).json()
    assert answer["state"] == "stored"
    assert answer.get("duplicate_of", {}).get("id") != secret
    assert answer.get("duplicate_of", {}).get("id") == public


# -- 2. guests ----------------------------------------------------------------------------------


def test_a_guest_sees_no_image_from_a_public_channel(web: Web) -> None:
    public = post_image(web, seed=21)
    assert edit(web.sign_in(POSTER), public, title="Keynote", tags="keynote").status == 302
    guest = web.sign_in(GUEST)
    grid = guest.get("/")
    assert grid.status == 200 and grid_ids(grid) == set() and count_line(grid) == "0 images"
    assert_like_missing(guest, public)
    for query in ("keynote", "tag:keynote"):
        found = guest.get(f"/?q={quote(query)}")
        assert grid_ids(found) == set() and ">keynote<" not in found.text, query
    assert_sees(web.sign_in(MEMBER), public)


# -- 3. another workspace -----------------------------------------------------------------------


def test_someone_from_another_workspace_is_refused_at_sign_in(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator signs in only its own workspace's people and names its own team in every
    id_token; here it is made to hand out a valid id_token for a person of another
    workspace (what Slack does for someone signed in to another workspace that ignores the
    `team` hint), and the app must refuse it."""
    post_image(web, seed=31)
    slack = web.slack
    slack.add_user("UOTHER", "olaf", real_name="Olaf Other", team_id="T0OTHER")
    can_sign_in, user_claims = slack._can_sign_in, slack._user_claims

    def claims(user_id: str, scopes: frozenset[str]) -> dict[str, object]:
        found = user_claims(user_id, scopes)
        found["https://slack.com/team_id"] = slack.users[user_id]["team_id"]
        return found

    monkeypatch.setattr(slack, "_can_sign_in", lambda u: u == "UOTHER" or can_sign_in(u))
    monkeypatch.setattr(slack, "_user_claims", claims)
    slack.sign_in_as("UOTHER")
    browser = web.browser()
    answer = browser.get("/login?start=1")
    assert answer.status == 400, (answer.status, answer.url)
    assert "not installed in that workspace" in answer.text
    assert slack.calls_to("openid.connect.token")  # the id_token was valid, the team was not
    assert urlpath(browser.get("/").url) == "/login"
    assert browser.get("/images/1/thumb").url.endswith("/login?next=/images/1/thumb")


def session_cookie(web: Web, team_id: str, user_id: str) -> str:
    """A session cookie the app would have set for `user_id` of `team_id`: a session the
    server holds, in a cookie signed with the app's key."""
    from bot.signin import start_session

    session_id = start_session(
        web.live.db.factory, team_id=team_id, user_id=user_id, now=web.live.db.clock()
    )
    forger = Flask("forger")
    forger.secret_key = secret_key(Settings.from_env(web.live.env, dotenv=False))
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    value = serializer.dumps({"sid": session_id, "_permanent": True})
    return f"imglib_session={value}"


def test_a_session_of_another_workspace_sees_none_of_this_ones_images(web: Web) -> None:
    """Were a session for another workspace's person ever made (the team check at sign-in
    gone), it is ended on its first request, as the sessions of a workspace the app was
    uninstalled from are, and shows nothing of this workspace."""
    public = post_image(web, seed=32)
    web.slack.add_user("UOTHER", "olaf", real_name="Olaf Other", team_id="T0OTHER")
    own = web.browser().request("GET", "/", headers={"Cookie": session_cookie(web, TEAM, MEMBER)})
    assert own.status == 200 and grid_ids(own) == {public}  # the forged cookie is good
    cookie = {"Cookie": session_cookie(web, "T0OTHER", "UOTHER")}
    other = web.browser()
    grid = other.request("GET", "/", headers=cookie)
    assert grid.url.endswith("/login?next=/") and grid_ids(grid) == set(), grid.url
    for suffix in ("", "/thumb", "/original", "/edit"):
        answer = other.request("GET", f"/images/{public}{suffix}", headers=cookie)
        assert answer.url.endswith(f"/login?next=/images/{public}{suffix}"), (suffix, answer.url)
        assert grid_ids(answer) == set() and "<h1>Sign in to the image library</h1>" in answer.text


# -- 4. editing ---------------------------------------------------------------------------------


def test_a_member_sees_someone_elses_image_but_cannot_edit_or_archive_it(web: Web) -> None:
    image_id = post_image(web, seed=41)
    poster = web.sign_in(POSTER)
    assert edit(poster, image_id, title="Original title").status == 302
    member = web.sign_in(MEMBER)
    page = member.get(f"/images/{image_id}")
    assert page.status == 200 and "<h1>Original title</h1>" in page.text
    assert f"/images/{image_id}/edit" not in page.text
    assert f"/images/{image_id}/archive" not in page.text
    assert member.get(f"/images/{image_id}/edit").status == 403
    member.get(f"/images/{image_id}")
    fields = {"title": "Hijacked", "tags": "pwned", "category": "", "shoot_date": ""}
    assert member.post(f"/images/{image_id}/edit", fields, follow=False).status == 403
    assert member.post(f"/images/{image_id}/archive", follow=False).status == 403
    # Neither the batch form of uploads.
    assert member.get(f"/upload/details?ids={image_id}").status == 404
    answer = member.post(
        "/upload/details",
        {"ids": str(image_id), f"title-{image_id}": "Hijacked", "tags": "pwned"},
        follow=False,
    )
    assert answer.status == 404
    image = web.live.image(image_id)
    assert image is not None
    assert image.title == "Original title" and image.tags == [] and image.status != "archived"

    admin = web.sign_in(ADMIN)
    assert edit(admin, image_id, title="Edited by the admin").status == 302
    assert (image := web.live.image(image_id)) is not None and image.title == "Edited by the admin"
    assert edit(poster, image_id, title="Edited by the poster", tags="stage").status == 302
    image = web.live.image(image_id)
    assert image is not None and image.title == "Edited by the poster" and image.tags == ["stage"]


def pats_private_draft(web: Web) -> int:
    """An image in a private channel the admin is not in, titled by its poster."""
    web.slack.add_channel("G0POSTER", "pats-drafts", is_private=True, members=[POSTER, "UBOT"])
    watch_private_channel(web, "G0POSTER", "pats-drafts")
    secret = post_image(web, seed=42, channel="G0POSTER")
    assert edit(web.sign_in(POSTER), secret, title="Pat's secret draft").status == 302
    return secret


def test_an_admin_outside_a_private_channel_does_not_see_its_images(web: Web) -> None:
    secret = pats_private_draft(web)
    admin = web.sign_in(ADMIN)
    assert_like_missing(admin, secret)
    admin.get("/")
    for path, fields in (
        (f"/images/{secret}/edit", {"title": "Renamed by admin", "tags": "", "category": ""}),
        (f"/images/{secret}/archive", {}),
    ):
        assert admin.post(path, fields, follow=False).status == 404, path
    assert grid_ids(admin.get("/")) == set()
    image = web.live.image(secret)
    assert image is not None and image.title == "Pat's secret draft" and image.status != "archived"


def test_an_admin_outside_a_private_channel_cannot_open_its_images_in_the_batch_form(
    web: Web,
) -> None:
    secret = pats_private_draft(web)
    admin = web.sign_in(ADMIN)
    details = admin.get(f"/upload/details?ids={secret}")
    missing = admin.get(f"/upload/details?ids={MISSING}")
    assert details.status == 404 and "secret draft" not in details.text
    assert page_body(details) == page_body(missing)


def test_an_admin_outside_a_private_channel_cannot_change_its_images_in_the_batch_form(
    web: Web,
) -> None:
    secret = pats_private_draft(web)
    admin = web.sign_in(ADMIN)
    admin.get("/")
    answer = admin.post(
        "/upload/details",
        {"ids": str(secret), f"title-{secret}": "Renamed by admin", "tags": "x"},
        follow=False,
    )
    image = web.live.image(secret)
    assert image is not None and image.title == "Pat's secret draft" and image.tags == []
    assert answer.status == 404


# -- 5. uploads on the web ----------------------------------------------------------------------


def test_an_upload_for_the_workspace_is_for_members_not_guests(web: Web) -> None:
    member = web.sign_in(MEMBER)
    answer = member.upload([("team.jpg", jpeg(seed=51))], audience="workspace")
    assert answer.status == 200, answer.text[:500]
    uploaded = answer.json()
    assert uploaded["state"] == "stored", uploaded
    image_id = int(uploaded["image_id"])
    assert_like_missing(web.sign_in(GUEST), image_id)
    assert_sees(web.sign_in(POSTER), image_id)
    assert grid_ids(web.sign_in(GUEST).get("/")) == set()


def test_an_upload_for_a_private_channel_is_only_for_its_members(web: Web) -> None:
    poster = web.sign_in(POSTER)
    assert "launch-secret" in poster.get("/upload").text
    answer = poster.upload([("secret.jpg", jpeg(seed=52))], audience=PRIVATE_CHANNEL)
    uploaded = answer.json()
    assert answer.status == 200 and uploaded["state"] == "stored", uploaded
    image_id = int(uploaded["image_id"])
    image = web.live.image(image_id)
    assert image is not None and image.channel_id == PRIVATE_CHANNEL and image.channel_private
    member = web.sign_in(MEMBER)
    assert_like_missing(member, image_id)
    assert grid_ids(member.get("/")) == set()
    assert_like_missing(web.sign_in(GUEST), image_id)
    admin = web.sign_in(ADMIN)
    assert_sees(admin, image_id)
    assert grid_ids(admin.get("/")) == {image_id}


def test_an_upload_for_a_conversation_the_uploader_is_not_in_is_refused(web: Web) -> None:
    member = web.sign_in(MEMBER)
    assert "launch-secret" not in member.get("/upload").text
    answer = member.upload([("sneak.jpg", jpeg(seed=53))], audience=PRIVATE_CHANNEL)
    assert answer.status == 400 and answer.json() == {"error": NOT_A_MEMBER}
    answer = member.upload([("sneak.jpg", jpeg(seed=53))], audience="C0NOSUCH")
    assert answer.status == 400 and answer.json() == {"error": NOT_A_MEMBER}
    assert image_rows(web) == 0


def test_a_guest_cannot_share_an_upload_with_the_whole_workspace(web: Web) -> None:
    guest = web.sign_in(GUEST)
    assert "workspace" not in re.findall(r'<option value="([^"]*)"', guest.get("/upload").text)
    for audience in ("workspace", ""):
        answer = guest.upload([("guest.jpg", jpeg(seed=54))], audience=audience)
        assert answer.status == 400, answer.text[:300]
        assert answer.json() == {"error": GUESTS_PICK_A_CONVERSATION}
        assert "Guests can only share images with a conversation they are in" in answer.text
    answer = guest.upload([("guest.jpg", jpeg(seed=54))], audience=PUBLIC_CHANNEL)
    assert answer.status == 400 and answer.json() == {"error": NOT_A_MEMBER}
    assert image_rows(web) == 0


def test_uploads_are_refused_for_what_slack_posts_are_refused_for(web: Web) -> None:
    poster = web.sign_in(POSTER)
    pdf = poster.upload([("brief.jpg", b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")]).json()
    assert pdf["state"] == "failed" and "PDF" in pdf["reason"], pdf
    assert pdf["url"] is None and "thumb" not in pdf
    empty = poster.upload([("empty.jpg", b"")]).json()
    assert empty["state"] == "failed" and "empty" in empty["reason"], empty
    assert web.live.stored() == []
    for refused in (pdf, empty):
        assert_like_missing(poster, int(refused["image_id"]))


def test_the_same_image_uploaded_twice_points_at_the_first(web: Web) -> None:
    poster = web.sign_in(POSTER)
    first = poster.upload([("a.jpg", jpeg(seed=55))]).json()
    second = poster.upload([("again.jpg", jpeg(seed=55))]).json()
    assert first["state"] == "stored" and "duplicate_of" not in first
    assert second["duplicate_of"] == {
        "id": first["image_id"],
        "url": f"/images/{first['image_id']}",
    }


@pytest.fixture
def small_web(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[Web]:
    """The web door with MAX_IMAGE_MB=1."""
    running = start_live(
        database_url=database_url,
        slack=slack,
        tmp_path=tmp_path,
        run_app=run_app,
        extra_env={**web_env(slack), "MAX_IMAGE_MB": "1"},
    )
    yield Web(running)
    running.db.shutdown()


def test_a_file_over_max_image_mb_is_refused_and_not_kept(small_web: Web, tmp_path: Path) -> None:
    poster = small_web.sign_in(POSTER)
    noise = random.Random(7)
    answer = poster.upload([("huge.jpg", b"\xff\xd8\xff" + noise.randbytes(1024 * 1024 + 100_000))])
    assert answer.status == 413, (answer.status, answer.text[:300])
    assert "too large" in answer.json()["error"]
    # Over the limit but under the request's overhead allowance: the ingest says why.
    answer = poster.upload([("big.jpg", b"\xff\xd8\xff" + noise.randbytes(1024 * 1024 + 1000))])
    refused = answer.json()
    assert refused["state"] == "failed" and "1 MB" in refused["reason"], refused
    assert small_web.live.stored() == []
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert poster.upload([("fine.jpg", jpeg(seed=56))]).json()["state"] == "stored"


# -- 6. admin pages -----------------------------------------------------------------------------


def test_the_admin_pages_do_not_exist_for_members_and_guests(web: Web) -> None:
    for user in (MEMBER, GUEST):
        browser = web.sign_in(user)
        page = browser.get("/admin")
        assert page.status == 404 and page_body(page) == page_body(browser.get("/admin/nothing"))
        assert 'href="/admin"' not in browser.get("/").text
        answer = browser.post("/admin/categories", {"action": "add", "name": "Sneaky"})
        assert answer.status == 404, (user, answer.status)
        answer = browser.post(f"/admin/channels/{PUBLIC_CHANNEL}/unwatch", follow=False)
        assert answer.status == 404, (user, answer.status)
    with session_scope(web.live.db.factory) as session:
        assert session.scalars(select(Category)).all() == []
        assert session.scalars(select(WatchedChannel.channel_id)).all() == [PUBLIC_CHANNEL]
    admin = web.sign_in(ADMIN)
    assert admin.get("/admin").status == 200
    assert 'href="/admin"' in admin.get("/").text
    assert admin.post("/admin/categories", {"action": "add", "name": "Fine"}).status == 200
    assert category_id(web, "Fine")


# -- 7. approvals -------------------------------------------------------------------------------


def test_only_an_approver_can_decide_a_request_from_the_web(web: Web) -> None:
    image_id = post_image(web, seed=71)
    poster = web.sign_in(POSTER)
    assert edit(poster, image_id, title="Needs a yes").status == 302
    poster.get(f"/images/{image_id}/approval")
    asked = poster.post(f"/images/{image_id}/approval", {"approvers": ADMIN}, follow=False)
    assert asked.status == 302, asked.text[:500]
    with session_scope(web.live.db.factory) as session:
        request_id = session.scalars(select(ApprovalRequest.id)).one()

    def state() -> tuple[str, str]:
        with session_scope(web.live.db.factory) as session:
            request = session.get(ApprovalRequest, request_id)
            image = session.get(Image, image_id)
            assert request is not None and image is not None
            return request.state, image.status

    before = state()
    assert before[0] == "open"
    for user in (MEMBER, GUEST, POSTER):  # not an approver (the poster asked: not theirs)
        browser = web.sign_in(user)
        browser.get("/approvals")
        answer = browser.post(
            f"/approvals/{request_id}/decide", {"decision": "approved"}, follow=False
        )
        assert answer.status in (400, 403, 404), (user, answer.status)
        assert state() == before, user
    # Nor can they withdraw it (only the requester or an admin).
    member = web.sign_in(MEMBER)
    member.get("/approvals")
    assert member.post(f"/approvals/{request_id}/cancel", follow=False).status in (400, 403, 404)
    assert state() == before

    admin = web.sign_in(ADMIN)
    admin.get("/approvals")
    decided = admin.post(f"/approvals/{request_id}/decide", {"decision": "approved"}, follow=False)
    assert decided.status == 302
    assert state() == ("approved", "approved")


# -- 8. not signed in ---------------------------------------------------------------------------


def test_nothing_is_served_or_taken_without_signing_in(web: Web) -> None:
    image_id = post_image(web, seed=81)
    browser = web.browser()
    for path in ("/", f"/images/{image_id}", f"/images/{image_id}/thumb", "/upload", "/admin"):
        answer = browser.request("GET", path, follow=False)
        assert answer.status == 302, (path, answer.status)
        location = answer.headers["Location"]
        assert urlpath(location) == "/login", location
        assert location.endswith(f"next={path}") or location.endswith(
            f"next={quote(path, safe='')}"
        )
    # Without a session: no CSRF token at all, then with the login page's own token.
    before = image_rows(web)
    answer = browser.upload([("anon.jpg", jpeg(seed=82))])
    assert answer.status in (400, 401), answer.status
    browser.get("/login")
    assert browser.token
    answer = browser.upload([("anon.jpg", jpeg(seed=82))])
    assert answer.status == 401 and "error" in answer.json()
    answer = browser.post(f"/images/{image_id}/archive", follow=False)
    assert answer.status == 401
    assert image_rows(web) == before
    image = web.live.image(image_id)
    assert image is not None and image.status != "archived"


def test_nonsense_in_addresses_is_a_clear_answer_never_a_server_error(web: Web) -> None:
    member = web.sign_in(MEMBER)
    huge = "9" * 23
    for path in (
        f"/images/{huge}",
        f"/images/{huge}/thumb",
        f"/upload/details?ids={huge}",
        f"/?after=f0:{huge}",
        "/login/callback?state=%C3%A9&code=x",
    ):
        answer = member.get(path)
        assert answer.status in (200, 400, 404), (path, answer.status)
    refused = member.post(f"/approvals/{huge}/decide", {"decision": "approved"})
    assert refused.status == 404


def test_an_image_that_is_also_a_web_page_is_served_as_an_image(web: Web) -> None:
    """A PNG carrying a script in a text chunk, uploaded as page.html, must never be served
    as HTML (it would run on this site with the viewer's session)."""
    png = png_with_text(b"<script>alert(document.domain)</script>")
    poster = web.sign_in(POSTER)
    answer = poster.upload([("page.html", png)]).json()
    assert answer["state"] == "stored", answer
    served = poster.get(f"/images/{answer['image_id']}/original")
    assert served.status == 200 and served.headers["Content-Type"] == "image/png"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    download = poster.get(f"/images/{answer['image_id']}/original?download=1")
    assert ".png" in download.headers["Content-Disposition"]
    assert ".html" not in download.headers["Content-Disposition"]


def png_with_text(text: bytes) -> bytes:
    """A real 8x8 PNG with `text` in a tEXt chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80\x20\x20" * 8 for _ in range(8))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Comment\x00" + text)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_guest_picks_approvers_only_among_the_people_of_their_conversation(web: Web) -> None:
    web.slack.add_channel(
        "G0GUESTS", "agency-room", is_private=True, members=[GUEST, POSTER, "UBOT"]
    )
    guest = web.sign_in(GUEST)
    answer = guest.upload([("location.jpg", jpeg(seed=71))], audience="G0GUESTS").json()
    assert answer["state"] == "stored", answer
    form = guest.get(f"/images/{answer['image_id']}/approval")
    offered = set(re.findall(r'name="approvers" value="(U\w+)"', form.text))
    assert offered == {POSTER}  # not the rest of the workspace's directory
    batch = guest.get(f"/upload/details?ids={answer['image_id']}")
    assert set(re.findall(r'name="approvers" value="(U\w+)"', batch.text)) == {POSTER}
    member = web.sign_in(MEMBER)
    assert member.get(f"/images/{answer['image_id']}").status == 404
