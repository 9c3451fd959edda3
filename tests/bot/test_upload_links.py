"""Upload links in the library, without Slack: who may make them, what they refuse, the
slot a refused file gives back, and the notice job (one per link and burst, after a pause,
never lost to a crash between claim and send, never sent twice)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot import admin, scheduler
from bot.link_notices import LEASE, LinkNotice, claim_link_notices, mark_announced
from bot.ports import FileSource
from bot.services import Services
from bot.upload_links import LinkClosed, LinkError, LinkView, create_link, receive_through
from bot.uploads import UploadedFiles, UploadResult
from tests import images
from tests.bot.fakes import (
    ADMIN,
    MEMBER,
    SECRET,
    SHOOTS,
    TEAM,
    FakeClock,
    FakeFiles,
    RecordingNotifier,
)


@pytest.fixture
def files(tmp_path: Path) -> FileSource:
    """Web uploads read from the library's uploads folder, as wired in production."""
    return UploadedFiles(FakeFiles(), tmp_path / "uploads")


def clock(services: Services) -> FakeClock:
    assert isinstance(services.clock, FakeClock)
    return services.clock


def new_link(services: Services, **kw: object) -> LinkView:
    admin.add_category(
        services.factory, team_id=TEAM, name="Campaigns", actor_id=ADMIN, now=services.clock()
    )
    [category] = admin.list_categories(services.factory, team_id=TEAM)
    boss = services.people.person(TEAM, ADMIN)
    made = create_link(services, boss, label="Northwind", category_id=category.id, **kw)  # type: ignore[arg-type]
    return made.link


def send(services: Services, link: LinkView, data: bytes, name: str = "a.jpg") -> UploadResult:
    staged = services.settings.media_dir.parent / f"staged-{time.monotonic_ns()}"
    staged.write_bytes(data)
    return receive_through(services, link, path=staged, name=name, content_type="image/jpeg")


def test_only_admins_make_links_with_sane_limits(services: Services) -> None:
    member = services.people.person(TEAM, MEMBER)
    with pytest.raises(LinkError, match="Only admins"):
        create_link(services, member, label="x", category_id=1, conversation="workspace")
    with pytest.raises(LinkError, match="1 to 90 days"):
        new_link(services, conversation="workspace", days=91)
    boss = services.people.person(TEAM, ADMIN)
    with pytest.raises(LinkError, match="category"):
        create_link(services, boss, label="x", category_id=None, conversation="workspace")
    with pytest.raises(LinkError, match="conversation you are in"):
        create_link(services, boss, label="x", category_id=1, conversation=SECRET)
    with pytest.raises(LinkError, match="a channel you are in"):
        create_link(services, boss, label="x", category_id=1, conversation="", notify=SECRET)
    link = create_link(services, boss, label="x", category_id=1, conversation=SHOOTS).link
    assert link.notify_channel == ADMIN and link.expires_at == services.clock() + timedelta(days=7)


def test_a_refused_file_gives_its_slot_back_and_a_full_link_refuses(services: Services) -> None:
    link = new_link(services, conversation="workspace", max_files=1)
    refused = send(services, link, b"%PDF-1.4 nope", "brief.pdf")
    assert (
        refused.state == "failed" and refused.reason == "this file is a PDF, only images are kept"
    )
    assert send(services, link, images.jpeg(seed=5)).state == "stored"
    with pytest.raises(LinkClosed, match="taken all the files"):
        send(services, link, images.jpeg(seed=6))
    clock(services).advance(days=8)
    with pytest.raises(LinkClosed, match="expired"):
        send(services, link, images.jpeg(seed=7))


def test_one_notice_per_link_after_the_burst_and_a_crash_loses_none(
    services: Services, notifier: RecordingNotifier
) -> None:
    link = new_link(services, conversation="workspace")
    for seed in (1, 2, 3):
        send(services, link, images.jpeg(seed=seed))
    assert scheduler.announce_link_uploads(services) == 0  # still uploading
    clock(services).advance(seconds=61)

    # A worker claims the notice, then dies before sending it.
    [lost] = claim_link_notices(services.factory, now=services.clock())
    assert len(lost.image_ids) == 3
    assert scheduler.announce_link_uploads(services) == 0  # claimed: nobody else sends it
    clock(services).advance(seconds=LEASE.total_seconds() + 1)
    assert scheduler.announce_link_uploads(services) == 3  # the claim ran out: sent now
    [notice] = notifier.of("link_uploads")
    assert isinstance(notice, LinkNotice)
    assert notice.label == "Northwind" and notice.channel == ADMIN
    assert notice.image_ids == lost.image_ids and notice.category == "Campaigns"
    clock(services).advance(hours=1)
    assert scheduler.announce_link_uploads(services) == 0  # never twice
    mark_announced(services.factory, lost, now=services.clock())  # a late confirmation: harmless
    assert claim_link_notices(services.factory, now=services.clock()) == []
