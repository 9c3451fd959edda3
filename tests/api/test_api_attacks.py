"""Attacks on the JSON API's door: a token anywhere but the Authorization header, a token
of another workspace, methods that skip the check, and the token leaking into the logs."""

from __future__ import annotations

from tests.api.conftest import ApiDoor, post_image
from tests.conftest import POSTER, PUBLIC_CHANNEL


def test_a_token_works_only_in_the_header_and_only_for_its_workspace(api: ApiDoor) -> None:
    image_id = post_image(api, seed=41, channel=PUBLIC_CHANNEL, user=POSTER)
    _, token = api.token(POSTER)
    nobody = api.anonymous()
    for path in (
        f"/api/v1/images?access_token={token}",
        f"/api/v1/images/{image_id}?token={token}",
    ):
        assert nobody.get(path).status == 401, path
    assert nobody.request("HEAD", f"/api/v1/images/{image_id}").status == 401
    assert nobody.get(f"/api/v1/images/{image_id}", headers={"Authorization": token}).status == 401
    elsewhere = api.client(POSTER, team="T0OTHER")
    assert elsewhere.get(f"/api/v1/images/{image_id}").status in (401, 404)
    listed = elsewhere.get("/api/v1/images").json().get("items", [])
    assert image_id not in {i["id"] for i in listed}
    assert api.anonymous(token).get(f"/api/v1/images/{image_id}").status == 200
    assert token not in api.live.app.logs()
