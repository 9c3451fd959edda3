"""Personal access tokens for the JSON API: made on the web page (shown once, kept hashed),
listed with when they were last used, revoked; and minted on the server with
`python -m bot token create`."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select

from bot import tokens
from storage.access import ApiToken
from storage.db import session_scope
from tests.conftest import MEMBER, POSTER, ROOT, TEAM, app_env
from tests.web.browser import PageFactory
from tests.web.conftest import Web
from tests.web.test_browser import check, sign_in_through_slack

TOKEN = re.compile(r'id="new-token" class="token" value="(il_[A-Za-z0-9_-]{43})"')


def test_a_token_made_on_the_web_is_shown_once_kept_hashed_and_acts_as_its_person(
    web: Web,
) -> None:
    browser = web.sign_in(MEMBER)
    page = browser.get("/tokens")
    assert page.status == 200 and "You have no tokens yet." in page.text
    made = browser.post("/tokens", {"name": "CMS  sync", "expires": "30"})
    assert made.status == 200 and "the only time it is shown" in made.text
    token = TOKEN.search(made.text)
    assert token, made.text[:2000]
    secret = token.group(1)

    listed = browser.get("/tokens")
    assert secret not in listed.text  # never shown again
    assert "CMS sync" in listed.text and secret[:9] + "…" in listed.text
    with session_scope(web.live.db.factory) as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash != secret and secret not in row.token_hash
        assert (row.team_id, row.user_id, row.name) == (TEAM, MEMBER, "CMS sync")
        assert row.expires_at is not None and row.last_used_at is None

    now = web.live.db.clock()
    holder = tokens.holder_of(web.live.db.factory, secret, now=now)
    assert holder is not None and (holder.team_id, holder.user_id) == (TEAM, MEMBER)
    listed_again = browser.get("/tokens").text
    last_used = re.search(r'"Last used">(\d{4}-\d\d-\d\d \d\d:\d\d) UTC</td>', listed_again)
    assert last_used and last_used.group(1) == now.strftime("%Y-%m-%d %H:%M")


def test_revoking_ends_the_token_and_only_its_owner_can(web: Web) -> None:
    owner = web.sign_in(MEMBER)
    owner.get("/tokens")
    secret = TOKEN.search(owner.post("/tokens", {"name": "script", "expires": "never"}).text)
    assert secret
    token_id = tokens.tokens_of(web.live.db.factory, team_id=TEAM, user_id=MEMBER)[0].id

    other = web.sign_in(POSTER)
    other.get("/tokens")
    refused = other.post(f"/tokens/{token_id}/revoke")
    assert refused.status == 404 and "already revoked, or not yours" in refused.text
    assert tokens.holder_of(web.live.db.factory, secret.group(1), now=web.live.db.clock())

    done = owner.post(f"/tokens/{token_id}/revoke")
    assert done.status == 200 and "Token revoked." in done.text and "revoked</span>" in done.text
    assert tokens.holder_of(web.live.db.factory, secret.group(1), now=web.live.db.clock()) is None


def test_the_form_explains_what_is_wrong_and_needs_its_csrf_token(web: Web) -> None:
    browser = web.sign_in(MEMBER)
    browser.get("/tokens")
    unnamed = browser.post("/tokens", {"name": "   ", "expires": "30"})
    assert unnamed.status == 400 and "Give the token a name" in unnamed.text
    odd = browser.post("/tokens", {"name": "x", "expires": "forever"})
    assert odd.status == 400 and "Choose when the token expires." in odd.text
    forged = browser.post("/tokens", {"name": "x", "expires": "30"}, csrf=False)
    assert forged.status == 400
    assert tokens.tokens_of(web.live.db.factory, team_id=TEAM, user_id=MEMBER) == []
    assert "/login" in web.browser().get("/tokens").url  # signed out: sign in first


def test_expired_tokens_no_longer_work(web: Web) -> None:
    factory, now = web.live.db.factory, web.live.db.clock()
    _, secret = tokens.create(
        factory, team_id=TEAM, user_id=MEMBER, name="short", now=now, expires_at=now + timedelta(1)
    )
    assert tokens.holder_of(factory, secret, now=now) is not None
    assert tokens.holder_of(factory, secret, now=now + timedelta(days=2)) is None
    assert tokens.holder_of(factory, secret + "x", now=now) is None
    assert tokens.holder_of(factory, "Bearer " + secret, now=now) is None


def test_the_server_mints_a_token_for_the_local_owner_once(
    database_url: str, tmp_path: Path
) -> None:
    env = app_env(database_url=database_url, slack=None, media_dir=tmp_path / "media")
    for args in (["migrate"], ["token", "create", "--user", "owner", "--name", "CI"]):
        done = _bot(env, *args)
        assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert re.fullmatch(r"il_[A-Za-z0-9_-]{43}", secret), done.stdout
    assert "only time the token is shown" in done.stderr and secret not in done.stderr

    from bot.local import LOCAL_OWNER, LOCAL_TEAM
    from tests.conftest import make_services

    services = make_services(env)
    try:
        holder = tokens.holder_of(services.factory, secret, now=services.clock())
        assert holder is not None and (holder.team_id, holder.user_id) == (LOCAL_TEAM, LOCAL_OWNER)
    finally:
        services.shutdown()
    refused = _bot(env, "token", "create", "--user", "owner", "--name", " ")
    assert refused.returncode == 2 and "Give the token a name" in refused.stderr


def _bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_in_a_browser_a_token_is_made_copied_from_its_field_and_revoked(
    web: Web, page_factory: PageFactory
) -> None:
    for mobile, size in ((False, "desktop"), (True, "phone")):
        page = page_factory(base_url=web.url, mobile=mobile)
        sign_in_through_slack(page, "pat")
        page.get_by_role("link", name="API tokens").click()
        page.get_by_label("Name").fill(f"CMS sync {size}")
        page.get_by_label("Expires").select_option("30")
        page.get_by_role("button", name="Create token").click()
        field = page.get_by_role("textbox", name="Token", exact=True)
        expect(field).to_have_value(re.compile(r"^il_[A-Za-z0-9_-]{43}$"))
        check(page, "tokens-new")
        page.get_by_role("link", name="API tokens").click()
        expect(page.get_by_role("textbox", name="Token", exact=True)).to_have_count(0)
        page.get_by_role("button", name=f"Revoke CMS sync {size}").click()
        expect(page.get_by_role("status")).to_have_text("Token revoked.")
        check(page, "tokens")
        page.get_by_role("link", name="JSON API").click()  # the reference, made from the spec
        expect(page.get_by_role("heading", level=1)).to_contain_text("API")
        expect(page.get_by_text("GET /api/v1/images", exact=True).first).to_be_visible()
        check(page, "api-docs")
