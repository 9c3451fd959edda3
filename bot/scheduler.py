"""APScheduler jobs. Schedules live in code; state lives in our tables, and every job claims
its rows there, so one scheduler per process is safe however many processes run."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import delete

from bot import channels, idempotency, reviews, uploads
from bot.approvals import OUTSIDE, RequestView
from bot.ports import MailError
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
    DETAILS_REMINDER_HOURS. Returns how many images were reminded about. A reminder Slack
    refused is released, to be sent by the next round."""
    from bot.reminders import claim_details_reminders, release_details_reminder

    notifier = services.notifier
    if notifier is None:
        return 0  # nobody to send them: keep them unclaimed until Slack is connected
    now = services.clock()
    reminders = claim_details_reminders(
        services.factory, now=now, after=timedelta(hours=services.settings.details_reminder_hours)
    )
    reminded = 0
    for reminder in reminders:
        if notifier.details_reminder(reminder):
            reminded += len(reminder.image_ids)
        else:
            release_details_reminder(services.factory, reminder, claimed_at=now)
    return reminded


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
        remind_clients(services, nudge.request)
    return len(nudges)


def remind_clients(services: Services, request: RequestView) -> None:
    """Clients still to decide are reminded by e-mail when SMTP is configured (otherwise not
    at all: their link is with them). The token is not kept, so the e-mail points to the
    first one."""
    mailer, now = services.mailer, services.clock()
    waiting = [
        int(v.approver_id[len(OUTSIDE) :])
        for v in request.votes
        if v.decision is None and v.approver_id.startswith(OUTSIDE)
    ]
    if mailer is None or not waiting:
        return
    title = reviews.request_titles(services.factory, request)
    for link in reviews.links_of(services.factory, link_ids=waiting).values():
        if link.revoked_at is not None or link.expires_at <= now:
            continue
        body = (
            f"Hello {link.name},\n\nA reminder: your decision on {title} is still awaited. "
            "Open the review link from our first e-mail to approve or reject it. It works "
            f"until {link.expires_at.date().isoformat()}."
        )
        try:
            mailer.send(to=link.email, subject=f"Reminder: please review {title}", body=body)
        except MailError as exc:
            log.warning("reminder for review link %s not e-mailed: %s", link.id, exc)


def tell_outcomes(services: Services) -> int:
    """Tell requesters how their requests ended when the process that settled one died
    before telling (the cards are refreshed too). Returns how many were told."""
    from bot.approval_queue import untold_outcomes
    from bot.decisions import show_change

    if services.notifier is None:
        return 0  # keep them untold until Slack is connected
    views = untold_outcomes(services.factory, now=services.clock())
    for view in views:
        show_change(services, view, settled=True)
    return len(views)


PROMPT_GRACE = timedelta(seconds=30)  # the process that settled a post tells its poster first
PROMPT_WINDOW = timedelta(hours=1)  # older posts never told stay so (Slack was not connected)


def prompt_settled_posts(services: Services) -> int:
    """Prompt the posters of posts settled a while ago that nobody told: the process that
    settled the last image died (kill -9) between recording it and telling, or between
    claiming the telling and stamping it done (its claim ran out). Returns how many posts
    it looked at (each is claimed, so told once whoever else looks)."""
    from sqlalchemy import and_, case, func, or_, select

    from bot.prompts import PROMPT_LEASE
    from storage.models import Image, IngestJob, PostPrompt

    if services.notifier is None:
        return 0
    now = services.clock()
    # Only posts with a job settled within the window qualify: found through the jobs'
    # updated_at index, so each look reads the last hour's posts, not the whole library.
    recent = (
        select(Image.team_id, Image.channel_id, Image.message_ts)
        .where(
            Image.id.in_(
                select(IngestJob.image_id).where(IngestJob.updated_at > now - PROMPT_WINDOW)
            ),
            Image.message_ts.is_not(None),
        )
        .distinct()
        .subquery()
    )
    unsettled = func.sum(case((IngestJob.state.in_(("queued", "running")), 1), else_=0))
    query = (
        select(Image.team_id, Image.uploader_id, func.min(Image.id))
        .join(
            recent,
            and_(
                recent.c.team_id == Image.team_id,
                recent.c.channel_id == Image.channel_id,
                recent.c.message_ts == Image.message_ts,
            ),
        )
        .join(IngestJob, IngestJob.image_id == Image.id)
        .outerjoin(
            PostPrompt,
            and_(
                PostPrompt.team_id == Image.team_id,
                PostPrompt.channel_id == Image.channel_id,
                PostPrompt.message_ts == Image.message_ts,
            ),
        )
        .where(
            PostPrompt.told_at.is_(None),
            or_(PostPrompt.prompted_at.is_(None), PostPrompt.prompted_at < now - PROMPT_LEASE),
        )
        .group_by(Image.team_id, Image.channel_id, Image.message_ts, Image.uploader_id)
        .having(
            unsettled == 0,
            func.max(IngestJob.updated_at) <= now - PROMPT_GRACE,
        )
        .limit(200)
    )
    with session_scope(services.factory) as session:
        posts = session.execute(query).all()
    for team_id, uploader, image_id in posts:
        services.prompt_if_settled(team_id, uploader, image_id)
    return len(posts)


def recheck_channels(services: Services) -> int:
    """Ask the directory whether channels are private: never-checked ones first (unknown
    counts as private until then), then each one once a day, to catch a change whose message
    we missed."""
    if services.notifier is None:
        return 0  # no workspace connected to ask
    return channels.recheck(
        services.factory, ask=services.directory.is_private, now=services.clock()
    )


def announce_link_uploads(services: Services) -> int:
    """One notice per upload link whose uploads have paused, for the images stored since
    its last one. Returns how many images were announced."""
    from bot.link_notices import claim_link_notices, mark_announced

    notifier = services.notifier
    if notifier is None:
        return 0  # keep them unannounced until Slack is connected
    notices = claim_link_notices(services.factory, now=services.clock())
    for notice in notices:
        notifier.link_uploads(notice)
        mark_announced(services.factory, notice, now=services.clock())
    return sum(len(n.image_ids) for n in notices)


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
    "tell_outcomes": (tell_outcomes, {"seconds": 15}),
    "prompt_settled_posts": (prompt_settled_posts, {"seconds": 15}),
    "recheck_channels": (recheck_channels, {"minutes": 10}),
    "prune_processed_events": (prune_processed_events, {"hours": 1}),
    "prune_uploads": (uploads.prune, {"hours": 1}),
    "announce_link_uploads": (announce_link_uploads, {"seconds": 30}),
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
