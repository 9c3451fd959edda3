"""The once-only reminder to add details, driven by the worker's job and an injected clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.details import DetailsInput, save_details
from bot.domain import Post
from bot.library import record_posted_files
from bot.scheduler import remind_about_details
from bot.services import Services
from handlers.slack.approvals import ids as approvals_ids
from handlers.slack.details import ids as details_ids
from handlers.slack.files import posted_file_from_slack
from tests import images
from tests.conftest import ADMIN, POSTER, PUBLIC_CHANNEL, TEAM, FakeClock, app_env, make_services
from tests.fakes.slack_api import SlackEmulator


def worker(
    url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock, *, watch: bool = False
) -> Services:
    env = app_env(database_url=url, slack=slack, media_dir=tmp_path / "media")
    return make_services(env, clock=clock, watch=watch)


def stored_image(services: Services, slack: SlackEmulator, file_id: str, user: str = POSTER) -> int:
    slack_file = slack.add_file(
        file_id,
        name=f"{file_id}.jpg",
        content=images.jpeg(seed=len(file_id)),
        mimetype="image/jpeg",
        filetype="jpg",
        user=user,
    )
    (job_id,) = record_posted_files(
        services.factory,
        post=Post(
            team_id=TEAM,
            channel_id=PUBLIC_CHANNEL,
            user_id=user,
            message_ts=f"17000000{len(slack.calls)}.0001",
        ),
        files=[posted_file_from_slack(slack_file)],
        event_id=None,
        now=services.clock(),
    )
    outcome = services.ingestor.run(job_id)
    assert outcome is not None
    return outcome.image_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def services(
    database_url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock
) -> Iterator[Services]:
    services = worker(database_url, slack, tmp_path, clock, watch=True)
    yield services
    services.shutdown()


def reminder_dms(slack: SlackEmulator) -> list[dict]:  # type: ignore[type-arg]
    return [c.params for c in slack.calls_to("chat.postMessage") if c.params["channel"] == POSTER]


def test_reminder_is_sent_once_after_the_configured_hours(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    image_id = stored_image(services, slack, "F0NODETAILS")
    clock.advance(hours=3)
    assert remind_about_details(services) == 0
    clock.advance(hours=1, minutes=1)
    assert remind_about_details(services) == 1
    (dm,) = reminder_dms(slack)
    (button,) = [e for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (button["action_id"], button["value"]) == (details_ids.ADD_DETAILS, str(image_id))
    clock.advance(hours=24)
    assert remind_about_details(services) == 0
    assert len(reminder_dms(slack)) == 1


def test_a_reminder_slack_refused_is_sent_at_the_next_round_once(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    image_id = stored_image(services, slack, "F0REFUSED")
    clock.advance(hours=4, minutes=1)
    slack.inject("chat.postMessage", "server_error", status=503)
    assert remind_about_details(services) == 0  # Slack answered 503: nothing was posted
    clock.advance(minutes=5)
    assert remind_about_details(services) == 1
    clock.advance(hours=24)
    assert remind_about_details(services) == 0
    sent = [c for c in slack.calls_to("chat.postMessage") if c.status == 200]
    (dm,) = [c.params for c in sent if c.params["channel"] == POSTER]
    (button,) = [e for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["value"] == str(image_id)


def test_images_with_details_are_not_reminded_about(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    image_id = stored_image(services, slack, "F0DONE")
    save_details(
        services.factory,
        team_id=TEAM,
        actor_id=POSTER,
        details=DetailsInput(titles={image_id: "Done"}),
        now=clock(),
    )
    clock.advance(hours=5)
    assert remind_about_details(services) == 0
    assert reminder_dms(slack) == []


def test_two_workers_at_once_remind_each_image_once(
    empty_postgres_url: str, slack: SlackEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    first = worker(empty_postgres_url, slack, tmp_path, clock, watch=True)
    second = worker(empty_postgres_url, slack, tmp_path, clock)
    posters = [f"UPOSTER{n}" for n in range(6)]
    for n, user in enumerate(posters):
        slack.add_user(user, f"p{n}")
        stored_image(first, slack, f"F0W{n:02d}", user=user)
    clock.advance(hours=5)
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run(services: Services) -> None:
        barrier.wait()
        counts.append(remind_about_details(services))

    threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(counts) == 6
    dms = [c.params["channel"] for c in slack.calls_to("chat.postMessage")]
    assert sorted(dms) == sorted(posters)
    first.shutdown()
    second.shutdown()


def test_escalation_gives_admins_a_card_they_can_decide_from(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    from bot.approvals import request_approval
    from bot.scheduler import remind_approvers

    image_id = stored_image(services, slack, "F0LATE")
    request_approval(
        services.factory,
        team_id=TEAM,
        image_id=image_id,
        requested_by=POSTER,
        approvers=["UMEMBER"],
        policy="any",
        now=clock(),
    )
    clock.advance(hours=25)
    assert remind_approvers(services) == 1
    reminders = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "UMEMBER"]
    assert "Reminder" in reminders[-1].params["text"]
    assert not [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == ADMIN]
    clock.advance(hours=48)
    assert remind_approvers(services) == 1
    (escalation,) = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == ADMIN]
    actions = [
        e["action_id"]
        for b in escalation.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert approvals_ids.APPROVE in actions
    assert approvals_ids.REJECT in actions
    clock.advance(hours=1)
    assert remind_approvers(services) == 0  # at most once per interval, escalated once


def test_an_approver_who_left_makes_an_all_request_go_to_the_admins(
    services: Services, slack: SlackEmulator, clock: FakeClock
) -> None:
    from bot.approvals import request_approval
    from bot.scheduler import remind_approvers

    slack.add_user("ULEFT", "lea", deleted=True)
    image_id = stored_image(services, slack, "F0STUCK")
    request_approval(
        services.factory,
        team_id=TEAM,
        image_id=image_id,
        requested_by=POSTER,
        approvers=["UMEMBER", "ULEFT"],
        policy="all",
        now=clock(),
    )
    clock.advance(hours=25)
    assert remind_approvers(services) == 1
    (to_admin,) = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == ADMIN]
    assert "<@ULEFT> left the workspace" in to_admin.params["text"]
