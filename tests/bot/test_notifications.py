"""What the library tells people on its own, with no Slack: the prompt after a post's images
are ingested (Ingestor.run with files from FakeFiles), the details reminders and approval
nudges of the scheduler, and the channel privacy it keeps true by asking the directory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from bot import approvals, decisions, editing, scheduler
from bot.approval_queue import claim_outcome
from bot.details import DetailsInput
from bot.finder import visible_image
from bot.prompts import PROMPT_LEASE, register_view
from bot.services import Services
from storage.db import session_scope
from storage.models import ApprovalRequest, Image, PostPrompt
from tests import images, seed
from tests.bot.fakes import (
    ADMIN,
    MEMBER,
    OTHER,
    POSTER,
    SECRET,
    SHOOTS,
    TEAM,
    FakeClock,
    FakeDirectory,
    FakeFiles,
    RecordingNotifier,
    file_url,
    homes_refreshed,
    make_services,
    post,
    watch,
    workspace,
)

ROOT = Path(__file__).resolve().parents[2]
TS = "1764000000.000100"


@pytest.fixture
def directory() -> FakeDirectory:
    return workspace()


@pytest.fixture
def files() -> FakeFiles:
    return FakeFiles()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def services(
    tmp_path: Path,
    directory: FakeDirectory,
    files: FakeFiles,
    notifier: RecordingNotifier,
    clock: FakeClock,
) -> Iterator[Services]:
    services = make_services(
        tmp_path, directory=directory, files=files, notifier=notifier, clock=clock
    )
    for channel in (SHOOTS, OTHER, SECRET):
        watch(services, channel)
    yield services
    services.shutdown()


@pytest.fixture
def quiet(
    tmp_path: Path, directory: FakeDirectory, files: FakeFiles, clock: FakeClock
) -> Iterator[Services]:
    """The library before any front door that can tell people is connected."""
    services = make_services(tmp_path, directory=directory, files=files, notifier=None, clock=clock)
    watch(services, SHOOTS)
    yield services
    services.shutdown()


def photo(n: int) -> bytes:
    """A small JPEG; a different picture for each `n`."""
    return images.jpeg(160, 120, seed=n)


def ingest(services: Services, job_ids: list[int]) -> list[str]:
    states = []
    for job_id in job_ids:
        outcome = services.ingestor.run(job_id)
        assert outcome is not None
        states.append(str(outcome.state))
    return states


# -- After an ingest ------------------------------------------------------------------------------


def test_the_poster_is_told_once_when_every_image_of_the_post_is_stored(
    services: Services, files: FakeFiles, notifier: RecordingNotifier
) -> None:
    jobs = post(
        services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1), "F2": photo(2)}, ts=TS
    )
    assert ingest(services, jobs[:1]) == ["stored"]
    assert notifier.said == []  # the other image is still on its way

    assert ingest(services, jobs[1:]) == ["stored"]
    (plan,) = notifier.of("ingest_settled")
    assert (plan.team_id, plan.channel_id, plan.message_ts, plan.user_id) == (
        TEAM,
        SHOOTS,
        TS,
        POSTER,
    )
    assert [n.slack_file_id for n in plan.needing_details] == ["F1", "F2"]
    assert plan.failed == []
    assert all(n.duplicate is None for n in plan.images)
    assert all(
        n.preview and (n.preview.image_url or "").startswith("https://library.example/media/")
        for n in plan.images
    )
    assert homes_refreshed(services, notifier) == {(TEAM, POSTER)}


@pytest.mark.parametrize(
    ("died", "wait"),
    [
        # The process that settles a post tells first, for PROMPT_GRACE...
        ("before claiming the telling", scheduler.PROMPT_GRACE),
        # ...and a claim runs out after PROMPT_LEASE.
        ("after claiming it, before stamping it told", PROMPT_LEASE),
    ],
)
def test_a_post_whose_teller_died_is_told_by_the_worker_once(
    died: str,
    wait: timedelta,
    services: Services,
    files: FakeFiles,
    notifier: RecordingNotifier,
    clock: FakeClock,
) -> None:
    jobs = post(services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1)}, ts=TS)
    assert ingest(services, jobs) == ["stored"]
    # As a process killed at that moment leaves the post:
    with session_scope(services.factory) as session:
        prompt = session.get_one(PostPrompt, (TEAM, SHOOTS, TS))
        assert prompt.told_at is not None and prompt.prompted_at is not None
        prompt.told_at = None
        if died.startswith("before"):
            prompt.prompted_at = None
    clock.advance(seconds=wait.total_seconds() - 1)
    assert scheduler.prompt_settled_posts(services) == 0  # its process may still be telling
    clock.advance(seconds=2)
    assert scheduler.prompt_settled_posts(services) == 1
    assert scheduler.prompt_settled_posts(services) == 0  # claimed, told and stamped
    clock.advance(minutes=5)
    assert scheduler.prompt_settled_posts(services) == 0
    # Once by the ingest itself, once by the worker for the telling this test undid.
    assert [p.message_ts for p in notifier.of("ingest_settled")] == [TS, TS]


def test_a_database_blip_while_stamping_a_telling_does_not_leave_it_to_be_told_again(
    services: Services, files: FakeFiles, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    """The database away for a moment (a restart) just after Slack took the prompt: the
    stamp is tried again, so the worker's look does not tell the poster a second time."""
    engine = services.factory.kw["bind"]
    failures = {"left": 1}

    def drop_the_stamp(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE post_prompts SET told_at") and failures["left"]:
            failures["left"] -= 1
            raise OperationalError(statement, None, Exception("server closed the connection"))

    event.listen(engine, "before_cursor_execute", drop_the_stamp)
    try:
        jobs = post(services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1)}, ts=TS)
        assert ingest(services, jobs) == ["stored"]
    finally:
        event.remove(engine, "before_cursor_execute", drop_the_stamp)
    assert failures["left"] == 0
    clock.advance(minutes=2)
    assert scheduler.prompt_settled_posts(services) == 0
    assert [p.message_ts for p in notifier.of("ingest_settled")] == [TS]


def test_a_post_settled_over_an_hour_ago_and_never_told_is_left_alone(
    services: Services, files: FakeFiles, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    jobs = post(services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1)}, ts=TS)
    assert ingest(services, jobs) == ["stored"]
    with session_scope(services.factory) as session:  # its process died before telling
        prompt = session.get_one(PostPrompt, (TEAM, SHOOTS, TS))
        prompt.prompted_at = prompt.told_at = None
    clock.advance(minutes=61)  # and no worker ran meanwhile (Slack was not connected)
    assert scheduler.prompt_settled_posts(services) == 0
    assert [p.message_ts for p in notifier.of("ingest_settled")] == [TS]  # the ingest's own


def test_a_file_that_cannot_be_fetched_is_told_with_the_reason(
    services: Services, files: FakeFiles, notifier: RecordingNotifier
) -> None:
    reason = "the file was deleted from Slack before it could be saved"
    jobs = post(
        services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1), "F2": photo(2)}, ts=TS
    )
    files.fail(file_url("F2"), reason, retryable=False)
    assert ingest(services, jobs) == ["stored", "failed"]
    (plan,) = notifier.of("ingest_settled")
    assert [n.slack_file_id for n in plan.stored] == ["F1"]
    assert [(n.slack_file_id, n.reason) for n in plan.failed] == [("F2", reason)]


def test_a_retryable_failure_tells_nobody_until_the_retry_settles_it(
    services: Services, files: FakeFiles, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    (job,) = post(services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1)}, ts=TS)
    files.fail(file_url("F1"), "Slack answered 503 to the download; will retry", retryable=True)
    assert ingest(services, [job]) == ["queued"]
    assert notifier.said == []

    clock.advance(minutes=2)  # past the backoff
    assert ingest(services, [job]) == ["stored"]
    (plan,) = notifier.of("ingest_settled")
    assert [n.slack_file_id for n in plan.stored] == ["F1"]
    assert files.fetched == [file_url("F1")] * 2


def test_the_same_photo_posted_again_is_named_as_a_duplicate_only_to_who_may_see_it(
    services: Services, files: FakeFiles, notifier: RecordingNotifier
) -> None:
    same = photo(7)
    first = post(
        services, files, user=MEMBER, channel=SECRET, images={"F1": same}, ts=TS, private=True
    )
    ingest(services, first)
    # The admin is not in the private conversation: its copy is not named to them.
    ingest(
        services, post(services, files, user=ADMIN, channel=SHOOTS, images={"F2": same}, ts="2.0")
    )
    # The poster is in it.
    ingest(
        services, post(services, files, user=POSTER, channel=SHOOTS, images={"F3": same}, ts="3.0")
    )

    plans = {plan.user_id: plan for plan in notifier.of("ingest_settled")}
    assert plans[ADMIN].images[0].duplicate is None
    duplicate = plans[POSTER].images[0].duplicate
    assert duplicate is not None
    assert (duplicate.uploader_id, duplicate.exact) == (MEMBER, True)
    with session_scope(services.factory) as session:
        assert duplicate.image_id == session.scalar(
            select(Image.id).where(Image.slack_file_id == "F1")
        )


def admin_adds_posters_photo_by_shortcut(
    services: Services, files: FakeFiles, *, same_as_secret: bool
) -> None:
    """The member posted a photo in the private conversation (the poster is in it, the admin
    is not); the poster posts it again in #shoots, and the admin adds that message to the
    library with the shortcut, whose "saving..." modal waits for the images."""
    photo_bytes = photo(7)
    if same_as_secret:
        ingest(
            services,
            post(
                services,
                files,
                user=MEMBER,
                channel=SECRET,
                images={"F1": photo_bytes},
                ts="1.0",
                private=True,
            ),
        )
    jobs = post(services, files, user=POSTER, channel=SHOOTS, images={"F2": photo_bytes}, ts=TS)
    register_view(
        services.factory,
        team_id=TEAM,
        channel_id=SHOOTS,
        message_ts=TS,
        user_id=ADMIN,
        view_id="V0SAVING",
        now=services.clock(),
    )
    ingest(services, jobs)


def test_a_duplicate_is_not_named_to_an_admin_who_may_not_see_it_after_their_shortcut(
    services: Services, files: FakeFiles, notifier: RecordingNotifier
) -> None:
    admin_adds_posters_photo_by_shortcut(services, files, same_as_secret=True)
    (plan,) = [p for p in notifier.of("ingest_settled") if p.message_ts == TS]
    assert (plan.user_id, plan.view_id) == (ADMIN, "V0SAVING")
    assert plan.images[0].duplicate is None


def test_the_posters_home_shows_images_an_admin_added_by_shortcut(
    services: Services, files: FakeFiles, notifier: RecordingNotifier
) -> None:
    admin_adds_posters_photo_by_shortcut(services, files, same_as_secret=False)
    assert [p.user_id for p in notifier.of("ingest_settled")] == [ADMIN]
    assert (TEAM, POSTER) in homes_refreshed(services, notifier)


# -- Details reminders ----------------------------------------------------------------------------


def test_posters_are_reminded_once_about_images_still_without_details(
    services: Services, files: FakeFiles, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    mine = post(
        services, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1), "F2": photo(2)}, ts=TS
    )
    theirs = post(services, files, user=MEMBER, channel=OTHER, images={"F3": photo(3)}, ts="2.0")
    ingest(services, mine + theirs)
    with session_scope(services.factory) as session:
        ids = dict(session.execute(select(Image.slack_file_id, Image.id)).all())
    editing.save(
        services,
        services.people.person(TEAM, POSTER),
        DetailsInput(titles={ids["F2"]: "Launch hero"}),
    )

    clock.advance(hours=3, minutes=59)
    assert scheduler.remind_about_details(services) == 0
    clock.advance(minutes=2)
    assert scheduler.remind_about_details(services) == 2
    reminders = notifier.of("details_reminder")
    assert [(r.user_id, r.image_ids, r.titles) for r in reminders] == [
        (MEMBER, [ids["F3"]], ["f3"]),
        (POSTER, [ids["F1"]], ["f1"]),  # F2 has its details
    ]
    clock.advance(hours=24)
    assert scheduler.remind_about_details(services) == 0
    assert len(notifier.of("details_reminder")) == 2


# -- Approval nudges ------------------------------------------------------------------------------


def test_approvers_are_nudged_each_day_and_the_admins_after_three(
    services: Services, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    poster = services.people.person(TEAM, POSTER)
    waiting = decisions.ask_for_approval(
        services,
        poster,
        image_id=seed.add(services.factory, "Waiting", uploader=POSTER, status="draft"),
        approvers=[MEMBER],
    ).request
    decided = decisions.ask_for_approval(
        services,
        poster,
        image_id=seed.add(services.factory, "Decided", uploader=POSTER, status="draft"),
        approvers=[ADMIN],
    ).request
    decisions.decide(
        services,
        services.people.person(TEAM, ADMIN),
        request_id=decided.id,
        decision="approved",
        reason=None,
    )

    def nudges_after(hours: float) -> list[tuple[int, str, bool]]:
        clock.advance(hours=hours)
        before = len(notifier.of("approval_nudge"))
        scheduler.remind_approvers(services)
        return [
            (n.request.id, n.request.state, n.escalate)
            for n in notifier.of("approval_nudge")[before:]
        ]

    assert nudges_after(23) == []
    assert nudges_after(2) == [(waiting.id, "open", False)]  # day 1
    assert nudges_after(1) == []  # once per interval
    assert nudges_after(24) == [(waiting.id, "open", False)]  # day 2
    assert nudges_after(24) == [(waiting.id, "open", True)]  # day 3: the admins too
    assert nudges_after(24) == [(waiting.id, "open", False)]  # escalated once only


def test_the_requester_is_told_the_outcome_once_even_if_the_deciding_process_died(
    services: Services, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    """Settled, then killed before telling anyone: the worker tells it, once; a double click
    (two processes deciding at once) tells it once too."""
    poster, approver = services.people.person(TEAM, POSTER), services.people.person(TEAM, MEMBER)
    requests = [
        decisions.ask_for_approval(
            services,
            poster,
            image_id=seed.add(services.factory, title, uploader=POSTER, status="draft"),
            approvers=[MEMBER],
        ).request
        for title in ("Killed", "Clicked twice")
    ]
    # The first is settled by a process that dies right after its commit: no one is told.
    approvals.decide(
        services.factory,
        team_id=TEAM,
        request_id=requests[0].id,
        user_id=MEMBER,
        decision="approved",
        reason=None,
        is_admin=False,
        now=clock(),
    )
    for _ in range(2):
        decisions.decide(
            services, approver, request_id=requests[1].id, decision="approved", reason=None
        )

    def told() -> list[tuple[int, str, bool]]:
        return [
            (t.what.id, t.what.state, t.told_maybe)
            for t in notifier.told
            if t.kind == "approval_changed" and t.settled
        ]

    assert told() == [(requests[1].id, "approved", False)]
    assert scheduler.tell_outcomes(services) == 0  # the settling process may still be telling
    clock.advance(seconds=11)
    assert scheduler.tell_outcomes(services) == 1
    assert scheduler.tell_outcomes(services) == 0
    assert told()[1:] == [(requests[0].id, "approved", False)]  # nobody had begun telling it
    # A teller that claimed it and died (perhaps after telling): told again, warned.
    with session_scope(services.factory) as session:
        session.get_one(ApprovalRequest, requests[0].id).outcome_told_at = None
    assert claim_outcome(services.factory, requests[0].id, now=clock()) is not None
    clock.advance(seconds=31)
    assert scheduler.tell_outcomes(services) == 1
    assert told()[2:] == [(requests[0].id, "approved", True)]


def test_with_no_notifier_prompts_reminders_and_nudges_wait_unclaimed(
    quiet: Services, files: FakeFiles, clock: FakeClock
) -> None:
    jobs = post(quiet, files, user=POSTER, channel=SHOOTS, images={"F1": photo(1)}, ts=TS)
    assert ingest(quiet, jobs) == ["stored"]
    with session_scope(quiet.factory) as session:  # the prompt was not claimed, nor lost
        assert session.scalars(select(PostPrompt.prompted_at)).all() == []
    request = decisions.ask_for_approval(
        quiet,
        quiet.people.person(TEAM, POSTER),
        image_id=seed.add(quiet.factory, "Waiting", uploader=POSTER, status="draft"),
        approvers=[MEMBER],
    ).request
    clock.advance(hours=25)
    assert scheduler.remind_about_details(quiet) == 0
    assert scheduler.remind_approvers(quiet) == 0

    # Slack is connected: what fell due meanwhile is sent now.
    quiet.notifier = notifier = RecordingNotifier()
    assert scheduler.remind_about_details(quiet) == 1
    assert scheduler.remind_approvers(quiet) == 1
    assert [r.user_id for r in notifier.of("details_reminder")] == [POSTER]
    assert [n.request.id for n in notifier.of("approval_nudge")] == [request.id]


# -- Channel privacy ------------------------------------------------------------------------------


def visible_to(services: Services, user: str, file_id: str) -> bool:
    with session_scope(services.factory) as session:
        image_id = session.scalar(select(Image.id).where(Image.slack_file_id == file_id))
    assert image_id is not None
    viewer = services.people.person(TEAM, user).viewer
    return visible_image(services.factory, image_id=image_id, viewer=viewer) is not None


def test_a_channel_made_private_is_caught_by_the_daily_recheck(
    services: Services,
    directory: FakeDirectory,
    files: FakeFiles,
    clock: FakeClock,
) -> None:
    post(services, files, user=ADMIN, channel=OTHER, images={"F1": photo(1)}, ts=TS)
    assert visible_to(services, POSTER, "F1")  # public: every member sees it

    directory.conversations[OTHER].private = True  # its message was missed
    assert scheduler.recheck_channels(services) == 0  # checked when posted
    clock.advance(days=1, minutes=1)
    assert scheduler.recheck_channels(services) == 1
    assert directory.asked("is_private", OTHER) == 1
    assert not visible_to(services, POSTER, "F1")
    assert visible_to(services, MEMBER, "F1")  # in the conversation


def test_a_channel_the_directory_will_not_describe_stays_as_it_was_until_tomorrow(
    services: Services,
    directory: FakeDirectory,
    files: FakeFiles,
    clock: FakeClock,
) -> None:
    post(services, files, user=ADMIN, channel=OTHER, images={"F1": photo(1)}, ts=TS)
    directory.silence("is_private", OTHER)
    clock.advance(days=1, minutes=1)
    assert scheduler.recheck_channels(services) == 1
    assert visible_to(services, POSTER, "F1")
    assert scheduler.recheck_channels(services) == 0  # asked: again tomorrow
    assert directory.asked("is_private", OTHER) == 1


def test_with_no_notifier_no_channel_is_rechecked(
    quiet: Services, directory: FakeDirectory, files: FakeFiles, clock: FakeClock
) -> None:
    post(quiet, files, user=ADMIN, channel=SHOOTS, images={"F1": photo(1)}, ts=TS)
    clock.advance(days=2)
    assert scheduler.recheck_channels(quiet) == 0
    assert directory.asked("is_private") == 0


# -- No Slack -------------------------------------------------------------------------------------


def test_this_tier_and_the_use_cases_it_drives_import_nothing_of_slack() -> None:
    modules = [
        "tests.bot.fakes",
        "tests.bot.test_decisions",
        "tests.bot.test_editing",
        "tests.bot.test_people",
        "tests.bot.test_notifications",
    ]
    code = (
        "import sys\n"
        "for blocked in ('slack_sdk', 'slack_bolt', 'handlers'):\n"
        "    sys.modules[blocked] = None  # importing it now raises ImportError\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
