"""APScheduler jobs. Schedules live in code; state lives in our tables, and every job claims
its rows there, so one scheduler per process is safe however many processes run."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import delete

from bot import channels, idempotency, uploads
from bot.services import Services
from storage.db import session_scope
from storage.models import ProcessedEvent

log = logging.getLogger(__name__)

EVENT_MEMORY = timedelta(days=3)  # Slack retries within minutes; three days is plenty


def sweep_ingest(services: Services) -> int:
    """Run due jobs (retries, jobs abandoned by a dead process, jobs the web process left
    queued) until none is due. Returns how many ran. `worker --once` only: a running worker
    polls for due jobs continuously (bot.ingest_runner)."""
    return len(services.ingestor.sweep(limit=10_000))


def remind_about_details(services: Services) -> int:
    """DM posters, once, about their images still without details after
    DETAILS_REMINDER_HOURS. Returns how many images were reminded about."""
    from bot.reminders import claim_details_reminders

    notifier = services.notifier
    if notifier is None:
        return 0  # nobody to send them: keep them unclaimed until Slack is connected
    reminders = claim_details_reminders(
        services.factory,
        now=services.clock(),
        after=timedelta(hours=services.settings.details_reminder_hours),
    )
    for reminder in reminders:
        notifier.details_reminder(reminder)
    return sum(len(r.image_ids) for r in reminders)


def remind_approvers(services: Services) -> int:
    """Remind approvers of requests open longer than APPROVAL_REMINDER_HOURS (once per
    interval) and tell the admins after APPROVAL_ESCALATE_HOURS (once)."""
    from bot.approval_queue import claim_reminders

    notifier = services.notifier
    if notifier is None:
        return 0
    nudges = claim_reminders(
        services.factory,
        now=services.clock(),
        remind_after=timedelta(hours=services.settings.approval_reminder_hours),
        escalate_after=timedelta(hours=services.settings.approval_escalate_hours),
    )
    for nudge in nudges:
        notifier.approval_nudge(nudge)
    return len(nudges)


def recheck_channels(services: Services) -> int:
    """Ask the directory whether channels are private: never-checked ones first (unknown
    counts as private until then), then each one once a day, to catch a change whose message
    we missed."""
    if services.notifier is None:
        return 0  # no workspace connected to ask
    return channels.recheck(
        services.factory, ask=services.directory.is_private, now=services.clock()
    )


def prune_processed_events(services: Services) -> int:
    with session_scope(services.factory) as session:
        result = session.execute(
            delete(ProcessedEvent).where(
                ProcessedEvent.created_at < services.clock() - EVENT_MEMORY
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


JOBS = {
    "sweep_ingest": (sweep_ingest, {}),  # not scheduled: ingest threads poll (see below)
    "remind_about_details": (remind_about_details, {"minutes": 5}),
    "remind_approvers": (remind_approvers, {"minutes": 5}),
    "recheck_channels": (recheck_channels, {"minutes": 10}),
    "prune_processed_events": (prune_processed_events, {"hours": 1}),
    "prune_uploads": (uploads.prune, {"hours": 1}),
    "prune_idempotency_keys": (idempotency.prune, {"hours": 1}),
}


def run_all_once(services: Services) -> dict[str, int]:
    """Run every job once, now (`python -m bot worker --once`, and the tests)."""
    return {name: job(services) for name, (job, _) in JOBS.items()}


def build_scheduler(services: Services, *, blocking: bool) -> BaseScheduler:
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    # Ingest is not an interval job: idle ingest threads claim due jobs every second or so,
    # so what the web process leaves queued when busy starts within a second, not 30.
    services.start_ingest_polling()
    for name, (job, interval) in JOBS.items():
        if not interval:
            continue
        scheduler.add_job(
            _guarded(name, job),
            "interval",
            id=name,
            args=[services],
            coalesce=True,
            max_instances=1,
            **interval,
        )
    return scheduler


def _guarded(name, job):  # type: ignore[no-untyped-def]
    def run(services: Services) -> None:
        try:
            job(services)
        except Exception:
            log.exception("scheduled job %s failed; it runs again at the next interval", name)

    run.__name__ = run.__qualname__ = name
    return run
