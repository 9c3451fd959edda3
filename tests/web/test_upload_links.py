"""Agency upload links end to end, on both databases: the admin makes a link on /admin, a
browser without a session uploads through it (JSON, like the page's script), the limits
hold, the images follow the link's conversation, and Slack hears about them once per burst
with an Add details button that opens the details modal."""

from __future__ import annotations

import random
import re
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from bot import scheduler
from bot.upload_links import token_hash
from handlers.slack.details import ids as details_ids
from storage.access import UploadLink, UploadLinkImage
from storage.db import session_scope
from storage.models import AuditEvent, Image, ImageStatus
from tests import images
from tests.conftest import ADMIN, MEMBER, POSTER, PRIVATE_CHANNEL, PUBLIC_CHANNEL, make_services
from tests.live import RealClock
from tests.web.conftest import Answer, Browser, Web, multipart
from tests.web.test_pages import category
from tests.web.test_visibility import small_web  # noqa: F401 - a fixture

LINK = re.compile(r'id="created-link" class="link-field" value="([^"]+)"')


def make_link(web: Web, *, label: str = "Northwind Studio, Lisbon shoot", **form: str) -> str:
    """Create a link on /admin as the admin; its path (/u/<token>), read off the page."""
    category_id = category(web, "Campaigns")
    boss = web.sign_in(ADMIN)
    boss.get("/admin")
    fields = {"label": label, "category": str(category_id), "days": "7", **form}
    page = boss.post("/admin/upload-links", fields)
    assert page.status == 200, page.text[:2000]
    found = LINK.search(page.text)
    assert found, page.text[:2000]
    return found.group(1).removeprefix(web.url)


def send(
    browser: Browser, path: str, name: str, content: bytes, *, headers: dict[str, str] | None = None
) -> Answer:
    """One file, as the page's script sends it."""
    body, content_type = multipart([], "files", [(name, content)])
    return browser.request(
        "POST",
        f"{path}/files",
        data=body,
        headers={
            "Content-Type": content_type,
            "Accept": "application/json",
            **(headers or {}),
        },
    )


def link_images(web: Web) -> list[Image]:
    with session_scope(web.live.db.factory) as session:
        return list(session.scalars(select(Image).order_by(Image.id)))


def the_link(web: Web) -> UploadLink:
    with session_scope(web.live.db.factory) as session:
        link = session.scalars(select(UploadLink)).one()
        session.expunge(link)
        return link


def announce(web: Web, *, later: timedelta = timedelta(minutes=2)) -> int:
    """The worker's notice job, run once as if `later` had passed (the burst is over)."""
    worker = make_services(web.live.env, clock=RealClock(later))
    try:
        return scheduler.announce_link_uploads(worker)
    finally:
        worker.shutdown()


def test_only_admins_make_links_and_the_link_is_shown_once_and_kept_as_a_hash(web: Web) -> None:
    member = web.sign_in(MEMBER)
    assert member.get("/admin").status == 404
    assert member.post("/admin/upload-links", {"label": "x", "category": "1"}).status == 404
    assert member.post("/admin/upload-links/1/revoke").status == 404

    path = make_link(web)
    token = path.removeprefix("/u/")
    assert len(token) >= 43
    link = the_link(web)
    assert link.token_hash == token_hash(token) and token not in repr(link.__dict__)
    again = web.sign_in(ADMIN).get("/admin")
    assert token not in again.text
    assert "Northwind Studio, Lisbon shoot" in again.text and ">live<" in again.text


def test_agency_uploads_images_and_refused_files_say_why(web: Web) -> None:
    path = make_link(web, max_files="3")
    agency = web.browser()  # no session: someone outside the workspace
    page = agency.get(path)
    assert page.status == 200
    assert "Northwind Studio, Lisbon shoot" in page.text and "Campaigns" in page.text
    assert "You can send 3 more files until" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert 'href="/"' not in page.text and "/images/" not in page.text  # no way in

    good = send(agency, path, "lisbon-1.jpg", images.jpeg(seed=31)).json()
    assert good["state"] == "stored" and "image_id" not in good
    assert good["left"].startswith("You can send 2 more files")
    pdf = send(agency, path, "brief.pdf", b"%PDF-1.4 not an image").json()
    assert pdf["state"] == "failed" and pdf["reason"] == "this file is a PDF, only images are kept"
    empty = send(agency, path, "empty.jpg", b"").json()
    assert empty["state"] == "failed" and empty["reason"] == "the file is empty"
    assert empty["left"].startswith("You can send 2 more files")  # refusals use no slot

    stored = [i for i in link_images(web) if i.storage_key]
    assert len(stored) == 1
    image = stored[0]
    assert image.status == ImageStatus.DRAFT and image.category_id == the_link(web).category_id
    assert image.uploader_name == "Northwind Studio, Lisbon shoot"
    assert image.uploader_id == ADMIN
    with session_scope(web.live.db.factory) as session:
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "uploaded_through_link")
        ).one()
        assert audit.image_id == image.id and audit.detail["label"] == image.uploader_name
    # The admin finds it in the library under the link's name; its history names the link.
    boss = web.sign_in(ADMIN)
    assert "lisbon 1" in boss.get("/?q=Northwind").text
    history = boss.get(f"/images/{image.id}").text
    assert "uploaded through link (Northwind Studio, Lisbon shoot)" in history


def test_parallel_uploads_never_pass_the_most_files_and_a_full_link_takes_nothing(
    web: Web,
) -> None:
    path = make_link(web, max_files="2")
    answers: list[Answer] = []
    barrier = threading.Barrier(5)

    def upload(n: int) -> None:
        browser = web.browser()
        barrier.wait()
        answers.append(send(browser, path, f"burst-{n}.jpg", images.jpeg(seed=40 + n)))

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status for a in answers) == [200, 200, 410, 410, 410]
    refused = [a.json() for a in answers if a.status == 410]
    assert all("taken all the files" in r["error"] for r in refused)
    assert len(link_images(web)) == 2 and the_link(web).files_received == 2

    page = web.browser().get(path)
    assert "taken all the files" in page.text and 'id="upload-form"' not in page.text
    late = send(web.browser(), path, "late.jpg", images.jpeg(seed=60))
    assert late.status == 410 and len(link_images(web)) == 2


def test_an_expired_or_revoked_link_refuses_plainly_and_stores_nothing(web: Web) -> None:
    path = make_link(web)
    with session_scope(web.live.db.factory) as session:
        session.execute(
            update(UploadLink).values(expires_at=web.live.db.clock() - timedelta(minutes=1))
        )
    agency = web.browser()
    page = agency.get(path)
    assert page.status == 200 and "This upload link has expired" in page.text
    assert 'id="upload-form"' not in page.text
    answer = send(agency, path, "late.jpg", images.jpeg(seed=1))
    assert answer.status == 410 and "expired" in answer.json()["error"]

    with session_scope(web.live.db.factory) as session:
        session.execute(
            update(UploadLink).values(expires_at=web.live.db.clock() + timedelta(days=1))
        )
    boss = web.sign_in(ADMIN)
    boss.get("/admin")
    turned_off = boss.post(f"/admin/upload-links/{the_link(web).id}/revoke")
    assert turned_off.status == 200 and ">revoked<" in turned_off.text
    assert "was turned off" in agency.get(path).text
    answer = send(agency, path, "late.jpg", images.jpeg(seed=2))
    assert answer.status == 410 and "turned off" in answer.json()["error"]
    assert link_images(web) == []


def test_unknown_and_malformed_tokens_are_a_plain_404(web: Web) -> None:
    agency = web.browser()
    assert agency.get("/u/" + "A" * 43).status == 404
    assert agency.get("/u/short").status == 404
    assert send(agency, "/u/" + "B" * 43, "a.jpg", images.jpeg(seed=3)).status == 404


def test_images_follow_the_links_conversation(web: Web) -> None:
    path = make_link(web, conversation=PRIVATE_CHANNEL)
    answer = send(web.browser(), path, "secret.jpg", images.jpeg(seed=9))
    assert answer.json()["state"] == "stored"
    [image] = link_images(web)
    assert image.channel_id == PRIVATE_CHANNEL and image.channel_private
    assert web.sign_in(POSTER).get(f"/images/{image.id}").status == 200  # in the channel
    assert web.sign_in(MEMBER).get(f"/images/{image.id}").status == 404  # not in it


def test_slack_hears_once_per_burst_and_add_details_opens_the_modal(web: Web) -> None:
    label = "Northwind <!channel> & Co"
    path = make_link(web, label=label)
    agency = web.browser()
    for n in range(2):
        assert send(agency, path, f"shot-{n}.jpg", images.jpeg(seed=70 + n)).status == 200
    ids = [i.id for i in link_images(web)]

    assert announce(web, later=timedelta(seconds=0)) == 0  # still uploading: wait
    assert announce(web) == 2
    assert announce(web, later=timedelta(minutes=30)) == 0  # never twice
    posts = [
        c for c in web.slack.calls_to("chat.postMessage") if "uploaded through" in c.params["text"]
    ]
    assert len(posts) == 1
    params: dict[str, Any] = posts[0].params
    assert params["channel"] == ADMIN
    text = str(params["blocks"])
    assert "2 images uploaded through *Northwind &lt;!channel&gt; &amp; Co*" in text
    assert "<!channel>" not in text and "<!channel>" not in params["text"]
    [button] = [e for b in params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == details_ids.ADD_DETAILS
    assert button["value"] == ",".join(map(str, ids))
    with session_scope(web.live.db.factory) as session:
        assert all(r.announced_at for r in session.scalars(select(UploadLinkImage)))

    _, view = web.live.click_to_open(
        details_ids.ADD_DETAILS, button["value"], user=ADMIN, channel=None
    )
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert {f"{details_ids.TITLE_BLOCK}:{i}" for i in ids} <= blocks


def test_the_notice_can_go_to_a_channel_the_app_is_in(web: Web) -> None:
    path = make_link(web, notify=PUBLIC_CHANNEL)
    assert send(web.browser(), path, "one.jpg", images.jpeg(seed=80)).status == 200
    assert announce(web) == 1
    [post] = [
        c for c in web.slack.calls_to("chat.postMessage") if "uploaded through" in c.params["text"]
    ]
    assert post.params["channel"] == PUBLIC_CHANNEL
    assert "1 image uploaded through" in post.params["text"]


def test_a_file_over_the_size_cap_is_refused_and_uses_no_slot(small_web: Web) -> None:  # noqa: F811
    path = make_link(small_web, max_files="1")
    noise = random.Random(3)
    answer = send(small_web.browser(), path, "huge.jpg", noise.randbytes(1024 * 1024 + 100_000))
    assert answer.status == 413, (answer.status, answer.text[:300])
    assert answer.json()["error"] == "the file is over 1 MB, the limit for the library"
    assert link_images(small_web) == [] and the_link(small_web).files_received == 0
    fine = send(small_web.browser(), path, "fine.jpg", images.jpeg(seed=90))
    assert fine.json()["state"] == "stored"


def test_over_https_the_agency_uploads_though_the_page_sends_no_referrer(
    routed_web: Web,
) -> None:
    """Flask-WTF's CSRF check insists on a Referer over https; the link's page sends none,
    and its token is what authorises the upload."""
    path = make_link(routed_web)
    agency = routed_web.browser()
    https = {"X-Forwarded-Proto": "https", "Referer": ""}
    assert agency.get(path, headers=https).status == 200
    sent = send(agency, path, "lisbon-9.jpg", images.jpeg(seed=39), headers=https)
    assert sent.status == 200 and sent.json()["state"] == "stored", sent.text


def test_a_file_name_with_control_characters_is_kept_cleaned_on_every_door(web: Web) -> None:
    """Postgres refuses a NUL in text: the page's upload and a link's both keep the file
    under its name without them, never a 500."""
    odd = "cover\x00\x07 shot.jpg"
    member = web.sign_in(MEMBER)
    member.get("/upload")
    page = member.upload([(odd, images.jpeg(seed=191))])
    assert page.status == 200 and page.json()["state"] == "stored", page.text
    assert page.json()["name"] == "cover shot.jpg"
    link = send(web.browser(), make_link(web), odd, images.jpeg(seed=192))
    assert link.status == 200 and link.json()["state"] == "stored", link.text
    assert link.json()["name"] == "cover shot.jpg"
    names = {i.file_name for i in web.live.stored()}
    assert {"cover shot.jpg"} <= names and not any("\x00" in n for n in names)
