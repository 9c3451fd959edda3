"""What every client relies on: problems for every error, the docs, ETags, rate limits."""

from __future__ import annotations

import http.client
from concurrent.futures import ThreadPoolExecutor

from handlers.web.api.guard import FAILED_TOKENS_PER_MINUTE, REQUESTS_PER_MINUTE
from tests.api.conftest import ApiDoor, post_image
from tests.conftest import MEMBER, POSTER, PUBLIC_CHANNEL
from tests.web.conftest import Answer

PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def assert_problem(answer: object, status: int) -> dict[str, object]:
    assert answer.status == status, (answer.status, answer.text[:300])  # type: ignore[attr-defined]
    assert answer.headers["Content-Type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert set(body) >= PROBLEM_FIELDS and body["status"] == status, body
    return body  # type: ignore[no-any-return]


def test_every_error_is_a_problem(api: ApiDoor) -> None:
    member = api.client(MEMBER)
    assert_problem(api.anonymous().get("/api/v1/images"), 401)
    assert_problem(member.get("/api/v1/no-such-thing"), 404)
    assert_problem(api.anonymous().get("/api/v1/no-such-thing"), 404)
    wrong_method = assert_problem(member.request("DELETE", "/api/v1/images"), 405)
    assert wrong_method["title"] == "Method Not Allowed"
    bad_query = assert_problem(member.get("/api/v1/images?limit=0&status=lost"), 422)
    assert set(bad_query["errors"]) == {"limit", "status.0"}  # type: ignore[arg-type]
    not_json = member.request(
        "PATCH", "/api/v1/images/1", data=b"title=x", headers={"Content-Type": "text/plain"}
    )
    assert_problem(not_json, 415)
    unreadable = member.request(
        "PATCH", "/api/v1/images/1", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert_problem(unreadable, 400)
    assert_problem(member.get("/api/v1/images?cursor=bogus"), 422)
    assert_problem(claims_a_huge_body(api, member.token), 413)


def claims_a_huge_body(api: ApiDoor, token: str) -> Answer:
    """An upload announcing more bytes than twenty images: refused before it is read."""
    connection = http.client.HTTPConnection("127.0.0.1", api.live.app.port, timeout=30)
    connection.putrequest("POST", "/api/v1/images")
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(50 * 1024**3))
    connection.endheaders()
    response = connection.getresponse()
    answer = Answer(response.status, "", dict(response.headers), response.read())
    connection.close()
    return answer


def test_the_openapi_document_and_its_docs_page(api: ApiDoor) -> None:
    spec = api.anonymous().get("/api/v1/openapi.json")
    assert spec.status == 200 and spec.json()["openapi"] == "3.1.0"
    assert "/api/v1/images/{image_id}/renditions" in spec.json()["paths"]
    assert spec.json()["servers"] == [{"url": api.url}]  # PUBLIC_BASE_URL, for Postman
    page = api.anonymous().get("/api/docs")
    assert page.status == 200 and "GET /api/v1/images" in page.text
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    assert 'curl -H "Authorization: Bearer $TOKEN"' in page.text


def test_reads_carry_an_etag_and_answer_304_when_unchanged(api: ApiDoor) -> None:
    image_id = post_image(api, seed=11, channel=PUBLIC_CHANNEL, user=POSTER)
    poster = api.client(POSTER)
    for path in ("/api/v1/images", f"/api/v1/images/{image_id}", "/api/v1/tags"):
        first = poster.get(path)
        etag = first.headers["ETag"]
        again = poster.get(path, headers={"If-None-Match": etag})
        assert again.status == 304 and again.body == b"", path
    before = poster.get(f"/api/v1/images/{image_id}").headers["ETag"]
    assert poster.patch(f"/api/v1/images/{image_id}", {"title": "Renamed"}).status == 200
    after = poster.get(f"/api/v1/images/{image_id}", headers={"If-None-Match": before})
    assert after.status == 200 and after.json()["title"] == "Renamed"


def test_too_many_requests_are_told_when_to_come_back(api: ApiDoor) -> None:
    guesser = api.anonymous("il_not-a-real-token")
    answers = [guesser.get("/api/v1/tags") for _ in range(FAILED_TOKENS_PER_MINUTE + 1)]
    assert {a.status for a in answers[:-1]} == {401}
    slowed = assert_problem(answers[-1], 429)
    assert int(answers[-1].headers["Retry-After"]) >= 1, slowed

    member = api.client(MEMBER)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: member.get("/api/v1/categories").status, range(REQUESTS_PER_MINUTE))
        )
    assert statuses.count(200) == REQUESTS_PER_MINUTE
    limited = member.get("/api/v1/categories")
    assert_problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert api.client(POSTER).get("/api/v1/categories").status == 200  # another token
