"""Changing an image's details through the API: the details form's rules, errors per
field, and only the poster or an admin."""

from __future__ import annotations

from tests.api.conftest import ApiDoor, post_image
from tests.conftest import ADMIN, MEMBER, POSTER, PUBLIC_CHANNEL


def test_details_change_field_by_field_with_the_forms_rules(api: ApiDoor) -> None:
    image_id = post_image(api, seed=31, channel=PUBLIC_CHANNEL, user=POSTER)
    poster = api.client(POSTER)
    path = f"/api/v1/images/{image_id}"
    saved = poster.patch(path, {"title": "Keynote stage", "tags": ["Stage", "stage", "Keynote"]})
    assert saved.status == 200, saved.text
    assert saved.json()["title"] == "Keynote stage" and saved.json()["tags"] == ["Stage", "Keynote"]
    kept = poster.patch(path, {"description": "Hall A"}).json()
    assert kept["title"] == "Keynote stage" and kept["description"] == "Hall A"

    refused = poster.patch(
        path,
        {"title": " ", "tags": [f"t{i}" for i in range(21)], "shoot_date": "2999-01-01"},
    )
    assert refused.status == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert set(refused.json()["errors"]) == {"title", "tags", "shoot_date"}
    assert "at most 20 tags" in refused.json()["errors"]["tags"]
    wrong_types = poster.patch(path, {"tags": "not a list", "category_id": "x", "color": 1})
    assert wrong_types.status == 422
    assert set(wrong_types.json()["errors"]) == {"tags", "category_id", "color"}
    missing_category = poster.patch(path, {"category_id": 424242})
    assert missing_category.status == 422 and "category" in missing_category.json()["errors"]
    assert poster.get(path).json()["title"] == "Keynote stage"


def test_only_the_poster_or_an_admin_changes_or_archives(api: ApiDoor) -> None:
    image_id = post_image(api, seed=32, channel=PUBLIC_CHANNEL, user=POSTER)
    member = api.client(MEMBER)
    path = f"/api/v1/images/{image_id}"
    assert member.get(path).json()["can_edit"] is False
    assert member.patch(path, {"title": "Mine"}).status == 403
    assert member.post(f"{path}/archive").status == 403
    assert api.client(ADMIN).patch(path, {"title": "Fixed by admin"}).status == 200
    archived = api.client(POSTER).post(f"{path}/archive")
    assert archived.status == 200 and archived.json()["status"] == "archived"
    poster = api.client(POSTER)
    assert poster.get("/api/v1/images").json()["items"] == []
    assert [i["id"] for i in poster.get("/api/v1/images?status=archived").json()["items"]] == [
        image_id
    ]
    actions = [e["action"] for e in poster.get(f"{path}/history").json()["items"]]
    assert actions[-1] == "archived" and "details_added" in actions
