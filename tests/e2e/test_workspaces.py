"""Installed in two workspaces from /slack/install, through Slack's OAuth flow (the emulator's
authorize page and oauth.v2.access): each workspace's library stays its own.

The two workspaces reuse the same user, channel and file ids on purpose (Slack's are unique;
ours repeat): a query, card, suggestion, link or job that forgot its workspace would then show
one workspace's images to the other, and these tests would see it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot import admin, tokens
from bot.scheduler import remind_approvers
from handlers.slack.details import ids as details_ids
from storage.db import session_scope
from storage.models import Image
from tests.conftest import (
    ADMIN,
    GUEST,
    MEMBER,
    POSTER,
    PRIVATE_CHANNEL,
    PUBLIC_CHANNEL,
    SIGNING_SECRET,
    TEAM,
    AppProcess,
    app_env,
    make_services,
)
from tests.e2e.test_approvals import posted_image
from tests.e2e.test_search import tag_options
from tests.fakes.slack_api import Call, SlackEmulator
from tests.live import Live, RealClock, form_values, wait_until
from tests.web.conftest import Browser

TEAM_B = "T0TEAM2"
PHOTO = "F0PHOTO"  # the same file id in both workspaces


def populate(emulator: SlackEmulator) -> SlackEmulator:
    """A second workspace with the first one's people and channels, under the same ids."""
    emulator.add_user(ADMIN, "gia", real_name="Gia Admin", is_admin=True)
    emulator.add_user(POSTER, "pia", real_name="Pia Poster")
    emulator.add_user(MEMBER, "mo", real_name="Mo Member")
    emulator.add_user(GUEST, "gus", real_name="Gus Guest", is_restricted=True)
    bot = emulator.bot_user_id
    emulator.add_channel(PUBLIC_CHANNEL, "shoots", members=[ADMIN, POSTER, MEMBER, bot])
    emulator.add_channel(PRIVATE_CHANNEL, "secret", is_private=True, members=[ADMIN, POSTER, bot])
    return emulator


def install(app: AppProcess, emulator: SlackEmulator, team_id: str) -> str:
    """Install the app in `team_id` as its admin would: /slack/install, Slack's consent page
    (on slack.com: the primary `emulator`'s), Allow, back to /slack/oauth_redirect. Returns
    the text of the page they land on."""
    emulator.install_as(team_id, ADMIN)
    start = requests.get(app.url + "/slack/install", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    assert start.headers["Location"].startswith(emulator.base_url + "/oauth/v2/authorize?")
    # Bolt's state cookie is `Secure`: a browser keeps it for http://127.0.0.1 too.
    cookie = start.headers["Set-Cookie"].split(";", 1)[0]
    consent = requests.get(start.headers["Location"], timeout=10)
    assert consent.status_code == 200
    allow = re.search(r'<a[^>]+href="([^"]+)"[^>]*>\s*Allow', consent.text)
    assert allow, consent.text
    href = allow.group(1).replace("&amp;", "&")
    back = requests.get(
        href if href.startswith("http") else emulator.base_url + href,
        allow_redirects=False,
        timeout=10,
    )
    assert back.status_code == 302
    assert back.headers["Location"].startswith(app.url + "/slack/oauth_redirect?")
    landed = requests.get(back.headers["Location"], headers={"Cookie": cookie}, timeout=10)
    assert landed.status_code == 200, landed.text
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", landed.text))


def oauth_env(slack: SlackEmulator, database_url: str, media_dir: Path) -> dict[str, str]:
    """Installable in any workspace: the app's client values, no bot token."""
    env = app_env(database_url=database_url, slack=None, media_dir=media_dir)
    env.update(
        SLACK_CLIENT_ID=slack.client_id,
        SLACK_CLIENT_SECRET=slack.client_secret,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{env['PORT']}",
    )
    return env


@dataclass
class TwoTeams:
    acme: Live
    globex: Live

    def both(self) -> tuple[Live, Live]:
        return self.acme, self.globex


@pytest.fixture
def teams(
    database_url: str, slack: SlackEmulator, tmp_path: Path, run_app: Callable[..., AppProcess]
) -> Iterator[TwoTeams]:
    globex = populate(slack.add_team(TEAM_B, "Globex"))
    env = oauth_env(slack, database_url, tmp_path / "media")
    db = make_services(env, clock=RealClock())
    app = run_app(env)
    pair = TwoTeams(
        acme=Live(app=app, slack=slack, db=db, env=env),
        globex=Live(app=app, slack=globex, db=db, env=env),
    )
    yield pair
    db.shutdown()


def watch(live: Live) -> None:
    admin.watch(
        live.db.factory,
        team_id=live.slack.team_id,
        channel_id=PUBLIC_CHANNEL,
        category_name=None,
        actor_id=ADMIN,
        now=datetime.now(UTC),
    )


def post_with_details(live: Live, title: str, tag: str, approvers: list[str] = ()) -> int:  # type: ignore[assignment]
    """The poster posts PHOTO in the watched channel and fills in the details modal."""
    image_id = posted_image(live, PHOTO, seed=7 if live.slack.team_id == TEAM else 8)
    view_id, _ = live.click_to_open(details_ids.ADD_DETAILS, str(image_id))
    values = form_values([image_id], titles=[title], tags=[tag], approvers=approvers)
    reply = live.submit(view_id, values)
    assert reply.status == 200 and not reply.body, reply
    return image_id


def signed_in(primary: SlackEmulator, live: Live, user: str = MEMBER) -> Browser:
    """A browser signed in to the web library with Slack as `user` of `live`'s workspace
    (Slack's sign-in page is the primary emulator's, as slack.com's is everyone's)."""
    primary.sign_in_as(user, team_id=live.slack.team_id)
    browser = Browser(live.app.url)
    answer = browser.get("/login?start=1")
    assert answer.status == 200 and "/login" not in answer.url, answer.text[:300]
    return browser


def cards_for(live: Live, title: str) -> list[Call]:
    """The approval cards about `title` Slack accepted (waits for the first; the app sends
    them after answering the modal)."""
    return wait_until(
        lambda: [
            c
            for c in live.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == MEMBER
            and title in json.dumps(c.params)
            and (c.response or {}).get("ok")
        ],
        what="the approval card",
    )


def everything_sent(live: Live) -> str:
    """Every Web API call and response_url message the app sent to the workspace's Slack
    (Slack's own install pages, which the first workspace's emulator serves for all, apart)."""
    sent = [c.params for c in live.slack.calls if not c.method.startswith("oauth.v2.")]
    return json.dumps(sent, ensure_ascii=False, default=str)


def search(live: Live, text: str, user: str = MEMBER) -> str:
    return json.dumps(live.command(text, user=user).get("blocks", []), ensure_ascii=False)


def api(live: Live, user: str, path: str) -> requests.Response:
    _, token = tokens.create(
        live.db.factory,
        team_id=live.slack.team_id,
        user_id=user,
        name="isolation",
        now=datetime.now(UTC),
    )
    return requests.get(
        live.app.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_two_workspaces_install_and_never_see_each_others_library(teams: TwoTeams) -> None:
    acme, globex = teams.both()
    assert "Image Library is installed in Acme Marketing" in install(acme.app, acme.slack, TEAM)
    assert "installed in Globex" in install(globex.app, acme.slack, TEAM_B)
    for live in teams.both():
        # The installer's welcome DM, in their own workspace, with that workspace's token.
        welcome = live.slack.wait_for(
            "chat.postMessage", predicate=lambda c: "watch" in str(c.params)
        )
        assert welcome[0].params["channel"] == ADMIN
        watch(live)

    acme_id = post_with_details(acme, "Acme falcon launch", "falcon", approvers=[MEMBER])
    globex_id = post_with_details(globex, "Globex zeppelin reveal", "zeppelin", approvers=[MEMBER])
    assert acme_id != globex_id
    with session_scope(acme.db.factory) as session:
        rows = session.execute(select(Image.team_id, Image.slack_file_id, Image.title)).all()
    assert sorted(rows) == [
        (TEAM, PHOTO, "Acme falcon launch"),
        (TEAM_B, PHOTO, "Globex zeppelin reveal"),
    ]

    # Search, with the same person and channel ids in both workspaces.
    assert "Acme falcon launch" in search(acme, "falcon")
    assert "Globex zeppelin reveal" in search(globex, "zeppelin")
    for live, foreign in ((acme, "zeppelin"), (globex, "falcon")):
        everything = search(live, "")  # the whole library as the member sees it
        assert foreign not in everything.lower()
        assert "Nothing found" in search(live, foreign)
        assert "Nothing found" in search(live, f"tag:{foreign}")
        # The details modal's tag suggestions offer only what was typed.
        assert tag_options_in(live, foreign[:3]) == [foreign[:3]]

    # The approval card went to each workspace's member, in that workspace only.
    for live, title in ((acme, "Acme falcon launch"), (globex, "Globex zeppelin reveal")):
        assert len(cards_for(live, title)) == 1

    # The JSON API: each workspace's token sees its own library only.
    for live, own, other in ((acme, acme_id, globex_id), (globex, globex_id, acme_id)):
        listed = api(live, MEMBER, "/images").json()
        assert [i["id"] for i in listed["items"]] == [own]
        assert api(live, MEMBER, f"/images/{other}").status_code == 404
        assert api(live, MEMBER, f"/images/{other}/renditions").status_code == 404
        foreign = "falcon" if live is globex else "zeppelin"
        assert api(live, MEMBER, f"/tags?prefix={foreign[:3]}").json()["items"] == []

    # The web library: each workspace's member signs in with Slack and sees their own.
    for live, own, foreign in (
        (acme, "Acme falcon launch", "Globex zeppelin reveal"),
        (globex, "Globex zeppelin reveal", "Acme falcon launch"),
    ):
        page = signed_in(acme.slack, live).get("/").text
        assert own in page and foreign not in page

    # Reminders, sent by a worker two days later, go to each workspace with its own token.
    worker = make_services(acme.env, clock=RealClock(timedelta(days=2)))
    try:
        assert remind_approvers(worker) == 2
    finally:
        worker.shutdown()
    for live, title in ((acme, "Acme falcon launch"), (globex, "Globex zeppelin reveal")):
        reminders = reminders_to(live, MEMBER)
        assert len(reminders) == 1 and title in json.dumps(reminders[0].params)

    # Nothing of one workspace ever reached the other's Slack (its searches for the other's
    # words were answered "Nothing found").
    assert not re.search(r"(?i)zeppelin reveal|globex", everything_sent(acme))
    assert not re.search(r"(?i)falcon launch|acme", everything_sent(globex))
    # Nor a link to the other's original or its previews (their signed paths name its key).
    with session_scope(acme.db.factory) as session:
        keys = dict(session.execute(select(Image.team_id, Image.storage_key)).all())
    assert keys[TEAM] != keys[TEAM_B]
    for live, foreign in ((acme, TEAM_B), (globex, TEAM)):
        assert keys[live.slack.team_id] in everything_sent(live)  # its own previews: links
        assert keys[foreign] not in everything_sent(live)


def tag_options_in(live: Live, typed: str) -> list[str]:
    """`tests.e2e.test_search.tag_options`, asked from `live`'s workspace."""
    payload_team = live.slack.team_id
    if payload_team == TEAM:
        return tag_options(live, typed, user=MEMBER)
    reply = live.sender.interactive(
        {
            "type": "block_suggestion",
            "action_id": details_ids.TAGS,
            "block_id": details_ids.TAGS_BLOCK,
            "value": typed,
            "team": {"id": payload_team},
            "user": {"id": MEMBER, "team_id": payload_team},
            "api_app_id": live.slack.app_id,
            "view": {"id": "V1", "type": "modal", "callback_id": details_ids.DETAILS_MODAL},
        }
    )
    assert reply.status == 200
    return [o["value"] for o in reply.json()["options"]]


def test_uninstalling_pauses_a_workspace_and_installing_again_says_its_library_was_kept(
    teams: TwoTeams,
) -> None:
    acme, globex = teams.both()
    install(acme.app, acme.slack, TEAM)
    install(globex.app, acme.slack, TEAM_B)
    for live in teams.both():
        watch(live)
    post_with_details(acme, "Acme falcon launch", "falcon", approvers=[MEMBER])
    post_with_details(globex, "Globex zeppelin reveal", "zeppelin", approvers=[MEMBER])
    token_b = api_token(globex, MEMBER)
    browser = signed_in(acme.slack, globex)
    cards_for(globex, "Globex zeppelin reveal")
    wait_until(lambda: globex.cards_recorded() == 2, what="both cards written down")

    # Globex uninstalls the app: Slack revokes its tokens and tells the app.
    reply = globex.sender.event(globex.slack.uninstall(TEAM_B))
    assert reply.status == 200  # acked first; the listener forgets the workspace after
    wait_until(lambda: get(globex, "/images", token_b).status_code == 401, what="tokens refused")
    assert "/login" in browser.get("/").url  # signed out of the web library too
    worker = make_services(acme.env, clock=RealClock(timedelta(days=2)))
    try:
        assert remind_approvers(worker) == 1  # Acme's; Globex's waits, unclaimed
    finally:
        worker.shutdown()
    assert reminders_to(globex, MEMBER) == []  # its work stopped

    # Installing again: the page and the installer's DM say the library was kept.
    page = install(globex.app, acme.slack, TEAM_B)
    assert "Welcome back" in page and "1 image" in page
    kept = globex.slack.wait_for(
        "chat.postMessage", predicate=lambda c: "Welcome back" in str(c.params)
    )
    assert kept[-1].params["channel"] == ADMIN
    assert get(globex, "/images", token_b).status_code == 200
    worker = make_services(acme.env, clock=RealClock(timedelta(days=2)))
    try:
        assert remind_approvers(worker) == 1  # Globex's, resumed
    finally:
        worker.shutdown()
    assert len(reminders_to(globex, MEMBER)) == 1


def test_a_revoked_bot_token_stops_only_that_workspace(teams: TwoTeams) -> None:
    acme, globex = teams.both()
    install(acme.app, acme.slack, TEAM)
    install(globex.app, acme.slack, TEAM_B)
    tokens_of = {live.slack.team_id: api_token(live, MEMBER) for live in teams.both()}
    reply = globex.sender.event(globex.slack.revoke_bot_tokens(TEAM_B))
    assert reply.status == 200
    wait_until(
        lambda: get(globex, "/images", tokens_of[TEAM_B]).status_code == 401,
        what="Globex's API tokens refused",
    )
    assert get(acme, "/images", tokens_of[TEAM]).status_code == 200
    assert "Nothing found" in search(acme, "anything")  # Acme's Slack door still answers


def api_token(live: Live, user: str) -> str:
    return tokens.create(
        live.db.factory,
        team_id=live.slack.team_id,
        user_id=user,
        name="kept",
        now=datetime.now(UTC),
    )[1]


def get(live: Live, path: str, token: str) -> requests.Response:
    return requests.get(
        live.app.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def reminders_to(live: Live, user: str) -> list[Call]:
    return [
        c
        for c in live.slack.calls_to("chat.postMessage")
        if c.params.get("channel") == user and "eminder" in json.dumps(c.params)
    ]


def test_rotating_tokens_are_refreshed_before_they_expire(teams: TwoTeams) -> None:
    acme = teams.acme
    acme.slack.token_rotation = True
    acme.slack.token_ttl = 600  # inside the two hours before expiry in which Bolt refreshes
    install(acme.app, acme.slack, TEAM)
    first = acme.slack.calls_to("oauth.v2.access")[-1].response
    assert first is not None and first["refresh_token"]
    acme.slack.token_ttl = 43200
    watch(acme)
    post_with_details(acme, "Acme falcon launch", "falcon")
    refreshes = [
        c
        for c in acme.slack.calls_to("oauth.v2.access")
        if c.params.get("grant_type") == "refresh_token"
    ]
    assert refreshes, "the expiring token was not refreshed"
    fresh = {c.response["access_token"] for c in refreshes if c.response and c.response.get("ok")}
    downloads = acme.slack.calls_to("files.download")
    assert downloads and downloads[-1].token in fresh
    assert first["access_token"] not in {c.token for c in acme.slack.calls_to("chat.postEphemeral")}
