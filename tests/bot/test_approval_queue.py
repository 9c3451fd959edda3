"""Approval reminders choose what is due in SQL: recently reminded requests never crowd out
the ones that are due, however many are open."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot import approval_queue, approvals
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import ApprovalRequest
from tests import seed

REMIND, ESCALATE = timedelta(hours=24), timedelta(hours=72)


def test_250_recently_reminded_requests_do_not_starve_the_due_ones(database_url: str) -> None:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    created = seed.START
    ids = []
    for n in range(250):
        image_id = seed.add(factory, f"img{n}", status="draft", when=created)
        ids.append(
            approvals.request_approval(
                factory,
                team_id=seed.TEAM,
                image_id=image_id,
                requested_by="UANA",
                approvers=["UBEN"],
                policy="any",
                now=created,
            ).id
        )
    now = created + timedelta(hours=30)
    # The 210 oldest were reminded an hour ago; the 40 newest never were.
    with session_scope(factory) as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id.in_(ids[:210]))
            .values(last_reminded_at=now - timedelta(hours=1))
        )
    nudges = approval_queue.claim_reminders(
        factory, now=now, remind_after=REMIND, escalate_after=ESCALATE
    )
    assert sorted(n.request.id for n in nudges) == sorted(ids[210:])
    assert not any(n.escalate for n in nudges)
    # Days later every one of them is due an escalation, the 250th included.
    later = created + timedelta(hours=73)
    with session_scope(factory) as session:
        session.execute(update(ApprovalRequest).values(last_reminded_at=later))
    escalated = approval_queue.claim_reminders(
        factory, now=later, remind_after=REMIND, escalate_after=ESCALATE
    )
    assert len(escalated) == 200  # one batch per run ...
    rest = approval_queue.claim_reminders(
        factory, now=later, remind_after=REMIND, escalate_after=ESCALATE
    )
    assert len(rest) == 50 and all(n.escalate for n in rest)  # ... and the next run the rest
    engine.dispose()
