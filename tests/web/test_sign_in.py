"""Who comes in: Sign in with Slack through the emulator's OpenID Connect endpoints, the
local owner's one-time link, the session cookie, sign-out, and the checks around them."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ADMIN, GUEST, MEMBER, POSTER, AppProcess, app_env
from tests.web.conftest import Browser, Web


def test_sign_in_with_slack_lands_on_the_library_with_the_persons_name(web: Web) -> None:
    browser = web.sign_in(MEMBER)
    page = browser.get("/")
    assert page.status == 200
    assert 'class="who">max <span class="role">(member)</span>' in page.text
    authorize = web.slack.calls_to("openid.connect.authorize")[0].params
    assert authorize["client_id"] == web.slack.client_id
    assert authorize["scope"].split() == ["openid", "email", "profile"]
    assert authorize["redirect_uri"] == web.url + "/login/callback"
    assert authorize["team"] == web.slack.team_id
    assert authorize["state"] and authorize["nonce"]
    assert web.slack.calls_to("openid.connect.token")


def test_the_session_cookie_is_httponly_samesite_lax_and_new_at_sign_in(web: Web) -> None:
    browser = web.browser()
    browser.get("/login")
    before = {c.name: c.value for c in browser.jar}
    web.slack.sign_in_as(POSTER)
    answer = browser.request("GET", "/login?start=1", follow=False)
    to_slack = answer.headers["Location"]
    answer = browser.request("GET", to_slack, follow=False)  # Slack approves at once
    answer = browser.request("GET", answer.headers["Location"], follow=False)  # our callback
    assert answer.status == 302 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    after = {c.name: c.value for c in browser.jar}
    assert after["imglib_session"] != before.get("imglib_session")
    assert 'class="who">pat <span' in browser.get("/").text


def test_a_callback_whose_state_was_not_issued_here_is_refused(web: Web) -> None:
    victim = web.browser()
    web.slack.sign_in_as(GUEST)
    # The attacker starts a sign-in, and sends the victim the callback with their code.
    attacker = web.browser()
    to_slack = attacker.request("GET", "/login?start=1", follow=False).headers["Location"]
    callback = attacker.request("GET", to_slack, follow=False).headers["Location"]
    answer = victim.request("GET", callback)
    assert answer.status == 400 and "Start again" in answer.text
    assert victim.get("/").url.endswith("/login?next=/")


def test_cancelling_in_slack_says_so_and_signs_nobody_in(web: Web) -> None:
    browser = web.browser()
    to_slack = browser.request("GET", "/login?start=1", follow=False).headers["Location"]
    picker = browser.get(to_slack)
    cancel = re.search(r'href="([^"]*cancel[^"]*)"', picker.text)
    assert cancel, picker.text
    answer = browser.get(urllib.parse.urljoin(to_slack, cancel.group(1).replace("&amp;", "&")))
    assert answer.status == 400 and "cancelled" in answer.text
    assert "/login" in browser.get("/").url


def test_next_goes_back_only_to_a_page_of_this_site(web: Web) -> None:
    web.slack.sign_in_as(MEMBER)
    for target, expected in (
        ("/approvals", "/approvals"),
        ("https://evil.example/steal", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
    ):
        browser = web.browser()
        query = urllib.parse.urlencode({"start": 1, "next": target})
        answer = browser.get(f"/login?{query}")
        assert urllib.parse.urlsplit(answer.url).netloc == urllib.parse.urlsplit(web.url).netloc
        assert urllib.parse.urlsplit(answer.url).path == expected, (target, answer.url)


def test_signing_out_ends_the_session(web: Web) -> None:
    browser = web.sign_in(ADMIN)
    assert browser.post("/logout").url.endswith("/login")
    assert browser.get("/").url.endswith("/login?next=/")


def test_forms_without_the_csrf_token_are_refused(web: Web) -> None:
    browser = web.sign_in(ADMIN)
    answer = browser.post("/admin/categories", {"action": "add", "name": "Sneaky"}, csrf=False)
    assert answer.status == 400 and "expired" in answer.text
    answer = browser.post("/admin/categories", {"action": "add", "name": "Fine"})
    assert answer.status == 200 and "Added Fine" in answer.text


def test_pages_carry_the_security_headers(web: Web) -> None:
    browser = web.sign_in(MEMBER)
    headers = browser.get("/").headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_static_files_are_cached_for_a_year_under_their_content_hash(web: Web) -> None:
    page = web.sign_in(MEMBER).get("/")
    script = re.search(r'src="(/static/app\.js\?v=[0-9a-f]{12})"', page.text)
    assert script
    answer = web.browser().request("GET", script.group(1))
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_sign_in_attempts_are_rate_limited(web: Web) -> None:
    browser = web.browser()
    statuses = [browser.request("GET", "/login?start=1", follow=False).status for _ in range(25)]
    assert statuses[:20] == [302] * 20
    assert statuses[-1] == 429


def test_slack_requests_still_work_with_sign_in_with_slack_configured(web: Web) -> None:
    """Bolt would turn its own OAuth flow on from SLACK_CLIENT_ID/SECRET and drop the bot
    token (SLACK.md): the app keeps being a single-workspace app."""
    answer = web.live.command("categories", user=ADMIN)
    assert "categor" in str(answer).lower()


def test_without_slack_the_printed_link_signs_the_owner_in_once(
    database_url: str, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> None:
    env = app_env(database_url=database_url, slack=None, media_dir=tmp_path / "media")
    app = run_app(env)
    printed = re.search(r"(http://localhost:\d+/login/link\?token=\S+)", app.logs())
    assert printed, app.logs()
    link = printed.group(1).replace("http://localhost", "http://127.0.0.1")
    browser = Browser(app.url)
    page = browser.get(link)
    assert "This link signs you in once" in page.text
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    signed = browser.post("/login/link", {"token": token})
    assert 'class="who">Owner <span class="role">(admin)</span>' in signed.text
    again = Browser(app.url)
    again.get(link)
    refused = again.post("/login/link", {"token": token})
    assert refused.status == 400 and "used already or has expired" in refused.text
    assert "/login" in again.get("/").url


def test_the_session_key_is_made_once_and_kept_and_https_cookies_are_secure(
    database_url: str, tmp_path: Path
) -> None:
    from bot.local import LOCAL_TEAM
    from handlers.web import Workspaces, create_web
    from tests.conftest import make_services

    env = app_env(database_url=database_url, slack=None, media_dir=tmp_path / "media")
    env["PUBLIC_BASE_URL"] = "https://images.example.com"
    services = make_services(env)
    try:
        first = create_web(services, bolt_app=None, workspaces=Workspaces.only(LOCAL_TEAM))
        second = create_web(services, bolt_app=None, workspaces=Workspaces.only(LOCAL_TEAM))
        assert first.secret_key == second.secret_key and len(first.secret_key or b"") == 32
        assert (tmp_path / ".secret-key").stat().st_mode & 0o077 == 0
        assert first.config["SESSION_COOKIE_SECURE"] is True
        answer = first.test_client().get("/login", base_url="https://images.example.com")
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        services.shutdown()


def test_signing_out_ends_the_session_on_the_server_too(web: Web) -> None:
    """A copy of the cookie taken before signing out (another tab, a stolen one) is worth
    nothing afterwards."""
    browser = web.sign_in(MEMBER)
    copied = "; ".join(f"{c.name}={c.value}" for c in browser.jar)
    assert browser.request("GET", "/", headers={"Cookie": copied}).url.endswith("/")
    browser.post("/logout")
    replay = web.browser().request("GET", "/", headers={"Cookie": copied}, follow=False)
    assert replay.status == 302 and "/login" in replay.headers["Location"]
