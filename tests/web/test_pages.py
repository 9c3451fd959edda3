"""The web library end to end, over HTTP like a browser without JavaScript: searching with
the Slack query language, paging, uploading, the batch details form, editing, archiving,
duplicates, approvals that Slack sees (and the other way round), and the admin page."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from bot import admin
from handlers.slack.approvals import ids as approvals_ids
from storage.db import session_scope
from storage.models import ApprovalRequest, Category
from tests import images
from tests.conftest import ADMIN, GUEST, MEMBER, POSTER, PRIVATE_CHANNEL, TEAM
from tests.live import wait_until
from tests.web.conftest import Browser, Web


def upload(browser: Browser, count: int, *, seed: int = 0) -> list[int]:
    """Upload `count` different JPEGs; their image ids."""
    ids = []
    for n in range(count):
        answer = browser.upload([(f"shot-{seed + n}.jpg", images.jpeg(seed=seed + n))])
        assert answer.status == 200 and answer.json()["state"] == "stored", answer.text
        ids.append(answer.json()["image_id"])
    return ids


def titles_on(page: str) -> list[str]:
    return re.findall(r'<span class="tile-title">([^<]*)</span>', page)


def category(web: Web, name: str) -> int:
    admin.add_category(
        web.live.db.factory, team_id=TEAM, name=name, actor_id=ADMIN, now=web.live.db.clock()
    )
    with session_scope(web.live.db.factory) as session:
        return int(session.scalars(select(Category.id).where(Category.name == name)).one())


def test_upload_then_one_details_form_for_the_batch_then_find_them(web: Web) -> None:
    marketing = category(web, "Marketing")
    poster = web.sign_in(POSTER)
    ids = upload(poster, 3)
    form = poster.get(f"/upload/details?ids={','.join(map(str, ids))}")
    assert form.status == 200
    assert all(f'name="title-{i}"' in form.text for i in ids)
    fields: list[tuple[str, str]] = [("ids", ",".join(map(str, ids)))]
    fields += [(f"title-{i}", f"CMO portrait {n}") for n, i in enumerate(ids)]
    fields += [("tags", "cmo, launch"), ("category", str(marketing))]
    fields += [("shoot_date", "2026-10-01"), ("description", "Q4 shoot")]
    saved = poster.post("/upload/details", fields)
    assert saved.status == 200 and "Details saved for 3 images" in saved.text
    for image_id in ids:
        image = web.live.image(image_id)
        assert image is not None and image.tags == ["cmo", "launch"]
        assert image.category_id == marketing and image.description == "Q4 shoot"
    member = web.sign_in(MEMBER)
    found = member.get("/?q=tag%3Acmo+category%3AMarketing")
    assert sorted(titles_on(found.text)) == ["CMO portrait 0", "CMO portrait 1", "CMO portrait 2"]
    assert "3 images" in found.text
    assert member.get("/tags?q=cm").json() == {"tags": ["cmo"]}
    assert web.sign_in(GUEST).get("/tags?q=cm").json() == {"tags": []}  # sees none of them
    # The same query in Slack answers the same images.
    answer = web.live.command("tag:cmo category:Marketing", user=MEMBER)
    assert json.dumps(answer).count("CMO portrait") >= 3


def test_the_details_form_answers_field_errors_and_keeps_what_was_typed(web: Web) -> None:
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1)
    poster.get(f"/upload/details?ids={image_id}")
    answer = poster.post(
        "/upload/details",
        {"ids": str(image_id), f"title-{image_id}": "Kept", "shoot_date": "2999-01-01"},
    )
    assert answer.status == 400
    assert 'id="shoot_date-error"' in answer.text and 'value="Kept"' in answer.text
    image = web.live.image(image_id)
    assert image is not None and image.title != "Kept"


def test_refused_files_say_why_and_a_second_copy_is_named_a_duplicate(web: Web) -> None:
    poster = web.sign_in(POSTER)
    pdf = poster.upload([("brief.pdf", b"%PDF-1.4 not an image")]).json()
    assert pdf["state"] == "failed" and "PDF" in pdf["reason"]
    empty = poster.upload([("empty.jpg", b"")]).json()
    assert empty["state"] == "failed" and "empty" in empty["reason"]
    first = poster.upload([("a.jpg", images.jpeg(seed=7))]).json()
    second = poster.upload([("a-again.jpg", images.jpeg(seed=7))]).json()
    assert second["duplicate_of"]["id"] == first["image_id"]
    page = poster.get(f"/images/{second['image_id']}")
    assert "already in the library" in page.text
    kept = poster.post(f"/images/{second['image_id']}/duplicate", {"keep": "0"})
    assert kept.url.endswith(f"/images/{first['image_id']}")
    assert poster.get(f"/images/{second['image_id']}").status == 404


def test_load_more_pages_by_keyset_without_repeating_an_image(web: Web) -> None:
    poster = web.sign_in(POSTER)
    upload(poster, 50)
    first = poster.get("/")
    more = re.search(r'id="load-more" href="([^"]+)"', first.text)
    assert more and "50 images" in first.text
    second = poster.get(more.group(1).replace("&amp;", "&"))
    page_one, page_two = titles_on(first.text), titles_on(second.text)
    assert len(page_one) == 48 and len(page_two) == 2
    assert not set(page_one) & set(page_two)
    assert 'id="load-more"' not in second.text
    fragment = poster.get(more.group(1).replace("&amp;", "&") + "&fragment=1")
    assert titles_on(fragment.text) == page_two and "<html" not in fragment.text


def test_approval_asked_on_the_web_reaches_slack_and_a_web_decision_updates_the_card(
    web: Web,
) -> None:
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1)
    form = poster.get(f"/images/{image_id}/approval")
    assert f'value="{ADMIN}"' in form.text and f'value="{POSTER}"' not in form.text
    asked = poster.post(f"/images/{image_id}/approval", [("approvers", ADMIN), ("note", "ok?")])
    assert asked.status == 200 and "Approval requested" in asked.text
    card = wait_until(
        lambda: [
            c
            for c in web.slack.calls_to("chat.postMessage")
            if c.params.get("channel") == ADMIN and "approval" in json.dumps(c.params.get("blocks"))
        ],
        what="the approver's card",
    )[0]
    assert approvals_ids.APPROVE in json.dumps(card.params["blocks"])
    wait_until(lambda: web.live.cards_recorded() >= 1, what="card recorded")
    approver = web.sign_in(ADMIN)
    queue = approver.get("/approvals")
    request_id = int(re.search(r"/approvals/(\d+)/decide", queue.text).group(1))  # type: ignore[union-attr]
    refused = approver.post(f"/approvals/{request_id}/decide", {"decision": "rejected"})
    assert refused.status == 400 and "Say why" in refused.text
    decided = approver.post(f"/approvals/{request_id}/decide", {"decision": "approved"})
    assert decided.status == 200 and "Decision saved" in decided.text
    update = wait_until(lambda: web.slack.calls_to("chat.update"), what="the card updated")
    assert "Approved by" in json.dumps(update[-1].params["blocks"])
    assert approvals_ids.APPROVE not in json.dumps(update[-1].params["blocks"])
    image = web.live.image(image_id)
    assert image is not None and image.status == "approved"
    mine = poster.get("/approvals")
    assert "approved" in mine.text


def test_a_decision_clicked_in_slack_shows_on_the_web(web: Web) -> None:
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1)
    poster.get(f"/images/{image_id}/approval")
    poster.post(f"/images/{image_id}/approval", [("approvers", MEMBER)])
    wait_until(lambda: web.live.cards_recorded() >= 1, what="card recorded")
    with session_scope(web.live.db.factory) as session:
        request_id = session.scalars(select(ApprovalRequest.id)).one()
    payload = web.slack.block_action(
        user=MEMBER, action_id=approvals_ids.APPROVE, value=str(request_id), channel=None
    )
    payload["container"] = {"type": "message", "channel_id": f"D{MEMBER}", "message_ts": "1.1"}
    assert web.live.sender.interactive(payload).status == 200
    wait_until(lambda: (i := web.live.image(image_id)) and i.status == "approved", what="approved")
    page = poster.get(f"/images/{image_id}")
    assert 'class="status status-approved"' in page.text
    assert "approval approved" in page.text or "approved" in page.text


def test_edit_and_archive_from_the_web(web: Web) -> None:
    events = category(web, "Events")
    poster = web.sign_in(POSTER)
    [image_id] = upload(poster, 1)
    poster.get(f"/images/{image_id}/edit")
    saved = poster.post(
        f"/images/{image_id}/edit",
        {"title": "Hero shot", "tags": "hero", "shoot_date": "", "category": str(events)},
    )
    assert saved.status == 200 and "Details saved" in saved.text and "Hero shot" in saved.text
    assert 'href="/?q=category:Events"' in poster.get("/").text  # a chip for it
    poster.post(f"/images/{image_id}/archive")
    library = poster.get("/")
    assert "Hero shot" not in titles_on(library.text)
    assert "category:Events" not in library.text  # no chip that would find nothing
    assert titles_on(poster.get("/?q=status%3Aarchived").text) == ["Hero shot"]


def test_admin_manages_categories_and_sees_roles(web: Web) -> None:
    boss = web.sign_in(ADMIN)
    page = boss.get("/admin")
    assert page.status == 200 and "People and roles" in page.text
    assert boss.post("/admin/categories", {"action": "add", "name": "Events"}).status == 200
    renamed = boss.post(
        "/admin/categories", {"action": "rename", "name": "Events", "new_name": "Live events"}
    )
    assert "Renamed to Live events" in renamed.text
    approvers = boss.post(
        "/admin/categories",
        [
            ("action", "approvers"),
            ("name", "Live events"),
            ("approvers", MEMBER),
            ("policy", "all"),
        ],
    )
    assert "Saved the approvers" in approvers.text
    with session_scope(web.live.db.factory) as session:
        row = session.scalars(select(Category).where(Category.name == "Live events")).one()
        assert row.default_approvers == [MEMBER] and row.approval_policy == "all"
    category(web, "Press")
    merged = boss.post(
        "/admin/categories", {"action": "merge", "name": "Press", "into": "Live events"}
    )
    assert "Merged Press into Live events" in merged.text
    problem = boss.post("/admin/categories", {"action": "add", "name": "Live events"})
    assert problem.status == 400 and 'class="problem"' in problem.text


def test_admin_watches_a_channel_the_app_is_in_and_is_told_to_invite_it_otherwise(
    web: Web,
) -> None:
    web.slack.add_channel("C0NOAPP", "press-room", members=[ADMIN, POSTER])
    category(web, "Press")
    boss = web.sign_in(ADMIN)
    page = boss.get("/admin")
    assert f'<option value="{PRIVATE_CHANNEL}">#launch-secret</option>' in page.text
    refused = boss.post("/admin/channels/watch", {"channel": "C0NOAPP"})
    assert refused.status == 400 and "Invite me there first" in refused.text
    watched = boss.post("/admin/channels/watch", {"channel": PRIVATE_CHANNEL, "category": "Press"})
    assert "Watching #launch-secret" in watched.text
    assert "#launch-secret → Press" in watched.text
    web.live.post(web.live.add_jpeg("F0PRESS", seed=77), channel=PRIVATE_CHANNEL)
    stored = wait_until(web.live.stored, what="the image from the newly watched channel")
    assert stored[0].channel_id == PRIVATE_CHANNEL
    stranger = boss.post("/admin/channels/watch", {"channel": "C0SOMEWHERE"})
    assert stranger.status == 400 and "Choose one of your channels" in stranger.text
