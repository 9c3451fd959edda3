"""Who sees what through the API: a token acts as exactly its person. An image someone may
not see answers like one that does not exist, in every resource and every count."""

from __future__ import annotations

from sqlalchemy import update

from bot.uploads import GUESTS_PICK_A_CONVERSATION
from storage.access import ApiToken
from storage.db import session_scope
from tests.api.conftest import ApiDoor, post_image
from tests.conftest import GUEST, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL
from tests.images import jpeg
from tests.web.test_visibility import watch_private_channel

MISSING = 999_999
PER_IMAGE = ("", "/renditions", "/history")


def ids(answer: object) -> set[int]:
    return {item["id"] for item in answer.json()["items"]}  # type: ignore[attr-defined]


def test_a_members_token_never_sees_a_private_channels_image(api: ApiDoor) -> None:
    watch_private_channel(api)  # type: ignore[arg-type]
    public = post_image(api, seed=1, channel=PUBLIC_CHANNEL, user=POSTER)
    secret = post_image(api, seed=2, channel=PRIVATE_CHANNEL, user=POSTER)
    poster, member = api.client(POSTER), api.client(MEMBER)
    assert poster.patch(f"/api/v1/images/{secret}", {"tags": ["launch"]}).status == 200
    assert poster.patch(f"/api/v1/images/{public}", {"tags": ["keynote"]}).status == 200

    assert ids(poster.get("/api/v1/images")) == {public, secret}
    listed = member.get("/api/v1/images").json()
    assert {i["id"] for i in listed["items"]} == {public} and listed["total"] == 1
    assert member.get("/api/v1/images?q=tag:launch").json()["total"] == 0
    assert member.get("/api/v1/tags").json()["items"] == ["keynote"]
    assert member.get("/api/v1/tags?prefix=lau").json()["items"] == []
    assert "launch" in poster.get("/api/v1/tags?prefix=lau").json()["items"]
    assert sum(c["images"] for c in member.get("/api/v1/categories").json()["items"]) <= 1
    for suffix in PER_IMAGE:
        hidden = member.get(f"/api/v1/images/{secret}{suffix}")
        missing = member.get(f"/api/v1/images/{MISSING}{suffix}")
        assert hidden.status == missing.status == 404, suffix
        assert hidden.body == missing.body, suffix  # the same problem, byte for byte
        assert poster.get(f"/api/v1/images/{secret}{suffix}").status == 200, suffix
    changed = member.patch(f"/api/v1/images/{secret}", {"title": "mine now"})
    assert changed.status == 404 and changed.body == member.get(f"/api/v1/images/{MISSING}").body
    assert member.post(f"/api/v1/images/{secret}/archive").status == 404
    assert api.live.image(secret).title != "mine now"  # type: ignore[union-attr]


def test_a_guests_token_sees_only_their_own_channels_images(api: ApiDoor) -> None:
    api.slack.add_channel("C0GUESTS", "with-agency", members=[POSTER, GUEST, "UBOT"])
    public = post_image(api, seed=3, channel=PUBLIC_CHANNEL, user=POSTER)
    guest = api.client(GUEST)
    assert guest.get("/api/v1/images").json()["items"] == []
    assert guest.get(f"/api/v1/images/{public}").status == 404
    assert guest.get(f"/api/v1/images/{public}/renditions").status == 404
    uploaded = guest.upload([("agency.jpg", jpeg(seed=5))], audience="C0GUESTS")
    assert uploaded.status == 200, uploaded.text
    own = uploaded.json()["items"][0]["image_id"]
    assert ids(guest.get("/api/v1/images")) == {own}
    assert guest.get(f"/api/v1/images/{own}/renditions").status == 200
    refused = guest.upload([("all.jpg", jpeg(seed=6))], audience="workspace")
    assert refused.status == 422
    assert refused.json()["errors"] == {"audience": GUESTS_PICK_A_CONVERSATION}


def test_another_workspaces_token_sees_nothing_of_this_one(api: ApiDoor) -> None:
    public = post_image(api, seed=4, channel=PUBLIC_CHANNEL, user=POSTER)
    api.slack.add_user("UOTHER", "olaf", real_name="Olaf Other", team_id="T0OTHER")
    other = api.client("UOTHER", team="T0OTHER")
    for path in ("/api/v1/images", f"/api/v1/images/{public}", "/api/v1/tags"):
        answer = other.get(path)
        assert answer.status == 401, (path, answer.status)
        assert answer.headers["Content-Type"] == "application/problem+json"


def test_revoked_expired_and_deactivated_tokens_are_refused(api: ApiDoor) -> None:
    token_id, token = api.token(MEMBER)
    client = api.anonymous(token)
    assert client.get("/api/v1/images").status == 200
    with session_scope(api.live.db.factory) as session:
        session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=ApiToken.created_at)
        )
    refused = client.get("/api/v1/images")
    assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    expiring_id, expiring = api.token(MEMBER)
    with session_scope(api.live.db.factory) as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == expiring_id)
            .values(expires_at=ApiToken.created_at)
        )
    assert api.anonymous(expiring).get("/api/v1/images").status == 401
    api.slack.add_user("UGONE", "gone", real_name="Gone Person", deleted=True)
    gone = api.client("UGONE").get("/api/v1/images")
    assert gone.status == 401 and "deactivated" in gone.json()["detail"]


def test_the_web_session_cookie_is_not_a_way_in(api: ApiDoor) -> None:
    from tests.web.conftest import Web

    browser = Web(api.live).sign_in(MEMBER)
    assert browser.get("/").status == 200
    answer = browser.request("GET", "/api/v1/images")
    assert answer.status == 401 and answer.headers["Content-Type"] == "application/problem+json"
    posted = browser.request(
        "POST", "/api/v1/images/1/archive", headers={"X-CSRFToken": browser.token}
    )
    assert posted.status == 401
