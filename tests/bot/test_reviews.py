"""Client review links in the library alone (no Slack): who is named how, e-mail through a
local SMTP server, reminders, and what revoking a link does to the requests that name it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import approvals, decisions, reviews, scheduler
from bot.approvals import ApprovalError
from bot.mailer import SmtpMailer
from bot.reviews import Reviewer, parse_reviewers
from bot.services import Services
from tests import seed
from tests.bot.fakes import (
    MEMBER,
    POSTER,
    SHOOTS,
    TEAM,
    FakeClock,
    FakeFiles,
    RecordingNotifier,
    make_services,
    workspace,
)
from tests.fakes.smtp_server import FakeSmtpServer

CLARA = Reviewer("Clara", "clara@example.com")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def services(tmp_path: Path, notifier: RecordingNotifier, clock: FakeClock) -> Iterator[Services]:
    services = make_services(
        tmp_path, directory=workspace(), files=FakeFiles(), notifier=notifier, clock=clock
    )
    yield services
    services.shutdown()


def draft(services: Services, title: str = "Launch hero") -> int:
    return seed.add(services.factory, title, uploader=POSTER, channel=SHOOTS, status="draft")


def test_the_field_takes_both_forms_and_says_which_line_is_wrong() -> None:
    parsed = parse_reviewers(
        "Clara Silva <clara@example.com>\n\n bo@example.org, Bo  Berg \nCLARA@example.com"
    )
    assert parsed == [
        Reviewer("Clara Silva", "clara@example.com"),
        Reviewer("Bo Berg", "bo@example.org"),
    ]
    with pytest.raises(ApprovalError, match=r"Line 2: .*not-an-address") as refused:
        parse_reviewers("ok@example.com\nnot-an-address, Someone")
    assert refused.value.field == "reviewers"
    with pytest.raises(ApprovalError, match="at most 10"):
        parse_reviewers("\n".join(f"p{n}@example.com" for n in range(11)))


def test_clients_are_emailed_their_link_then_reminded_by_email_only(
    services: Services, notifier: RecordingNotifier, clock: FakeClock
) -> None:
    with FakeSmtpServer() as smtp:
        services.mailer = SmtpMailer(smtp.url, sender="Images <img@example.com>")
        asked = decisions.ask_for_approval(
            services,
            services.people.person(TEAM, POSTER),
            image_id=draft(services),
            approvers=[],
            reviewers=[CLARA],
        )
        [link] = asked.links
        assert link.emailed and asked.request.approvers == [link.approver_id]
        [told] = notifier.of("approval_requested")
        assert told.outside == {link.approver_id: "Clara"}
        [mail] = smtp.wait_for(1)
        assert mail.recipients == ["clara@example.com"]
        assert f"/review/{link.token}" in mail.body and "Launch hero" in mail.body
        clock.advance(hours=25)
        assert scheduler.remind_approvers(services) == 1
        reminder = smtp.wait_for(2)[1]
        assert reminder.message["Subject"].startswith("Reminder")
        assert link.token not in reminder.body  # only its hash is kept
    # Only a hash of the token is stored.
    page = reviews.review_page(services.factory, token=link.token, now=clock())
    assert page is not None and page.state == "active"
    assert reviews.review_page(services.factory, token=link.token[:-1] + "x", now=clock()) is None


def test_a_mail_server_that_is_down_leaves_the_link_to_be_handed_over(
    services: Services,
) -> None:
    services.mailer = SmtpMailer("smtp://u:p@127.0.0.1:1", sender="img@example.com", timeout=2)
    asked = decisions.ask_for_approval(
        services,
        services.people.person(TEAM, POSTER),
        image_id=draft(services),
        approvers=[MEMBER],
        reviewers=[CLARA],
    )
    assert [link.emailed for link in asked.links] == [False]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked.links[0].token)


def test_revoking_the_last_client_under_all_settles_it_on_the_approvals_already_given(
    services: Services, clock: FakeClock
) -> None:
    request, [link] = reviews.request_with_reviewers(
        services.factory,
        team_id=TEAM,
        image_id=draft(services),
        requested_by=POSTER,
        approvers=[MEMBER],
        reviewers=[CLARA],
        policy="all",
        note="",
        due_at=None,
        now=clock(),
    )
    voted = approvals.decide(
        services.factory,
        team_id=TEAM,
        request_id=request.id,
        user_id=MEMBER,
        decision="approved",
        reason=None,
        is_admin=False,
        now=clock(),
    )
    assert voted.request.state == "open"
    with pytest.raises(ApprovalError, match="Only the person who asked"):
        decisions.revoke_review_link(
            services, services.people.person(TEAM, MEMBER), link_id=link.link_id
        )
    revoked = decisions.revoke_review_link(
        services, services.people.person(TEAM, POSTER), link_id=link.link_id
    )
    [(after, settled)] = revoked.changed
    assert settled and after.state == "approved" and after.approvers == [MEMBER]
    with pytest.raises(ApprovalError, match="no longer works"):
        decisions.decide_as_reviewer(
            services,
            token=link.token,
            request_id=request.id,
            decision="approved",
            reason=None,
            name="Clara",
        )
