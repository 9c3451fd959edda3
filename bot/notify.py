"""What people see when the library changes without them clicking anything: the reaction and
private prompt once a message's images are settled, the shortcut's modal filling in, the App
Home refreshing, the details reminder.

These run wherever the change happens (the web process after an ingest, or the worker after a
retry), so they live here and not in the Bolt listeners.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from sqlalchemy import select

from bot import blocks, ids
from bot.approvals import Nudge, RequestView, pending_for, record_card, requested_by
from bot.home import home_images
from bot.library import IngestOutcome
from bot.prompts import PromptPlan, claim_prompt, post_date, preview_for
from bot.reminders import DetailsReminder
from storage.db import session_scope
from storage.models import Category, Image, WatchedChannel

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

STORED_REACTION = "frame_with_picture"
FAILED_REACTION = "warning"


def on_ingest_settled(services: Services, outcome: IngestOutcome) -> None:
    """Called after every ingest attempt. Tells the poster once the whole message settled."""
    if outcome.state not in ("stored", "failed"):
        return
    team_id, uploader = outcome.team_id, outcome.uploader_id
    if not uploader:
        with session_scope(services.factory) as session:
            posted = session.get(Image, outcome.image_id)
            team_id, uploader = (posted.team_id, posted.uploader_id) if posted else ("", "")
        if not uploader:
            return
    # Outside any transaction: this may ask Slack who is in which channel.
    viewer = services.viewer(team_id, uploader)
    plan = claim_prompt(
        services.factory,
        image_id=outcome.image_id,
        media=services.media,
        duplicate_distance=services.settings.duplicate_max_distance,
        viewer=viewer,
        now=services.clock(),
    )
    if plan is None:
        return
    client = services.slack_client(plan.team_id)
    for reaction, wanted in ((STORED_REACTION, plan.stored), (FAILED_REACTION, plan.failed)):
        if wanted:
            _call(
                "reactions.add",
                lambda r=reaction: client.reactions_add(
                    channel=plan.channel_id, timestamp=plan.message_ts, name=r
                ),
                ignore=("already_reacted", "message_not_found", "not_in_channel"),
            )
    if plan.view_id:
        _call(
            "views.update",
            lambda: client.views_update(
                view_id=plan.view_id, view=details_or_reasons(services, plan)
            ),
            ignore=("not_found", "view_not_found"),
        )
    else:
        text, prompt = blocks.prompt_blocks(plan)
        _call(
            "chat.postEphemeral",
            lambda: client.chat_postEphemeral(
                channel=plan.channel_id, user=plan.user_id, text=text, blocks=prompt
            ),
            ignore=("user_not_in_channel", "channel_not_found", "not_in_channel"),
        )
    # Coalesced: a poster's burst of images refreshes their App Home once or twice, not once
    # per message (two queries and a views.publish each).
    services.refresh_home(plan.team_id, plan.user_id)


def details_or_reasons(services: Services, plan: PromptPlan) -> blocks.Block:
    """For the shortcut's modal: the details form, or why nothing could be kept."""
    images = plan.needing_details or plan.stored
    if not images:
        reasons = "\n".join(
            f"\u2022 {blocks.escape(n.file_name)}: {blocks.escape(n.reason or 'unknown')}"
            for n in plan.failed[:20]
        )
        return blocks.message_modal(
            "Image library", f"None of these files could be kept:\n{reasons}"
        )
    return details_modal_for(
        services,
        team_id=plan.team_id,
        image_ids=[n.image_id for n in images],
        response_url=None,
    )


def details_modal_for(
    services: Services, *, team_id: str, image_ids: list[int], response_url: str | None
) -> blocks.Block:
    """The details modal for these images, prefilled with what is known (their current
    details, the EXIF shoot date or else the day of the post, the category's approvers)."""
    image_ids = image_ids[: blocks.MAX_TITLES_IN_MODAL]  # one title input each
    with session_scope(services.factory) as session:
        images = list(
            session.scalars(
                select(Image)
                .where(Image.team_id == team_id, Image.id.in_(image_ids))
                .order_by(Image.id)
            )
        )
        first = images[0]
        category_id = first.category_id
        if category_id is None:
            watched = session.get(WatchedChannel, (team_id, first.channel_id))
            category_id = watched.category_id if watched else None
        category = session.get(Category, category_id) if category_id else None
        shoot = first.shoot_date.date() if first.shoot_date else post_date(first.message_ts)
        has_categories = (
            session.scalar(select(Category.id).where(Category.team_id == team_id).limit(1))
            is not None
        )
        prefill = blocks.DetailsPrefill(
            tags=list(first.tags),
            category=(category.id, category.name) if category else None,
            shoot_date=shoot,
            description=first.description,
            approvers=list(category.default_approvers) if category else [],
        )
        modal_images = [blocks.ModalImage(i.id, i.file_name, i.title) for i in images]
        previews = [preview_for(i, services.media) for i in images[:3]]
    metadata = {"images": [i.image_id for i in modal_images], "response_url": response_url}
    return blocks.details_modal(
        images=modal_images,
        has_categories=has_categories,
        prefill=prefill,
        metadata=metadata,
        previews=previews,
    )


def publish_home(services: Services, *, team_id: str, user_id: str) -> None:
    missing, recent = home_images(
        services.factory, team_id=team_id, user_id=user_id, media=services.media
    )
    waiting = pending_for(services.factory, team_id=team_id, user_id=user_id)
    mine = requested_by(services.factory, team_id=team_id, user_id=user_id)
    titles = _titles(services, team_id, [r.image_id for r in [*waiting, *mine]])
    view = blocks.home_view(
        missing=missing,
        recent=recent,
        waiting=[blocks.HomeRequest(r, titles.get(r.image_id, "")) for r in waiting],
        requests=[blocks.HomeRequest(r, titles.get(r.image_id, "")) for r in mine],
    )
    client = services.slack_client(team_id)
    _call("views.publish", lambda: client.views_publish(user_id=user_id, view=view))


def _titles(services: Services, team_id: str, image_ids: list[int]) -> dict[int, str]:
    if not image_ids:
        return {}
    with session_scope(services.factory) as session:
        return dict(
            session.execute(
                select(Image.id, Image.title).where(
                    Image.team_id == team_id, Image.id.in_(image_ids)
                )
            ).all()
        )


def send_details_reminder(services: Services, reminder: DetailsReminder) -> None:
    count = len(reminder.image_ids)
    noun = "image is" if count == 1 else f"{count} images are"
    titles = ", ".join(f"*{blocks.escape(t or 'untitled')}*" for t in reminder.titles[:10])
    body = [
        blocks.section(
            f":wave: Your {noun} in the library but still without details: {titles}. "
            "Tags and a category make them findable."
        ),
        {
            "type": "actions",
            "elements": [
                blocks.button(
                    "Add details",
                    ids.ADD_DETAILS,
                    ",".join(str(i) for i in reminder.image_ids[: blocks.MAX_TITLES_IN_MODAL]),
                    style="primary",
                )
            ],
        },
    ]
    client = services.slack_client(reminder.team_id)
    _call(
        "chat.postMessage",
        lambda: client.chat_postMessage(
            channel=reminder.user_id, text=f"Your {noun} still without details", blocks=body
        ),
    )


def _call(name: str, send, *, ignore: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
    """Send one Slack call; a failure is logged with its error code, never raised."""
    try:
        send()
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error not in ignore:
            log.warning("%s failed: %s %s", name, error, exc.response.get("errors") or "")
    except Exception:
        log.exception("%s failed", name)


# -- approvals ---------------------------------------------------------------------------


def card_image(services: Services, *, team_id: str, image_id: int) -> blocks.CardImage | None:
    with session_scope(services.factory) as session:
        image = session.scalar(select(Image).where(Image.team_id == team_id, Image.id == image_id))
        if image is None:
            return None
        category = session.get(Category, image.category_id) if image.category_id else None
        original = (
            services.media.original_url(image.storage_key) if image.storage_key else None
        ) or image.permalink
        return blocks.CardImage(
            title=image.title,
            tags=list(image.tags),
            category=category.name if category else None,
            shoot_date=image.sort_at.date().isoformat(),
            preview=preview_for(image, services.media),
            original_url=original,
        )


def _thread_of(services: Services, request: RequestView) -> tuple[str, str] | None:
    with session_scope(services.factory) as session:
        image = session.get(Image, request.image_id)
        if image is None or not image.message_ts:
            return None
        return image.channel_id, image.thread_ts or image.message_ts


def send_request(services: Services, request: RequestView) -> None:
    """DM each approver a card, confirm privately to the requester, and say it once in the
    thread of the original post."""
    image = card_image(services, team_id=request.team_id, image_id=request.image_id)
    if image is None:
        return
    client = services.slack_client(request.team_id)
    text, card = blocks.approval_card(request, image)
    for approver in request.approvers:
        sent = post_card(client, channel=approver, text=text, body=card)
        if sent is None:
            continue
        record_card(
            services.factory,
            request_id=request.id,
            approver_id=approver,
            channel=str(sent["channel"]),
            ts=str(sent["ts"]),
        )
    people = ", ".join(f"<@{a}>" for a in request.approvers)
    _call(
        "chat.postMessage",
        lambda: client.chat_postMessage(
            channel=request.requested_by,
            text=f"Sent *{blocks.escape(image.title or 'your image')}* for approval to {people}.",
        ),
    )
    thread = _thread_of(services, request)
    if thread:
        _call(
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=thread[0], thread_ts=thread[1], text=f"Sent for approval to {people}."
            ),
            ignore=("not_in_channel", "channel_not_found"),
        )
    for user in {request.requested_by, *request.approvers}:
        services.refresh_home(request.team_id, user)


def post_card(
    client: WebClient, *, channel: str, text: str, body: list[blocks.Block]
) -> SlackResponse | None:
    """Post a card (the client resends it without its picture when Slack cannot load it);
    None when Slack refused it all the same."""
    try:
        return client.chat_postMessage(channel=channel, text=text, blocks=body)
    except SlackApiError as exc:
        log.warning("message to %s failed: %s", channel, exc.response.get("error"))
        return None


def show_outcome(services: Services, request: RequestView, *, settled: bool) -> None:
    """Make every card tell the truth; when the request just settled, tell the requester in
    the original thread."""
    image = card_image(services, team_id=request.team_id, image_id=request.image_id)
    if image is None:  # removed from the library: the cards still say what happened
        image = blocks.CardImage("(removed from the library)", [], None, None, None, None)
    client = services.slack_client(request.team_id)
    text, card = blocks.approval_card(request, image)
    for vote in request.votes:
        if vote.card_channel and vote.card_ts:
            _call(
                "chat.update",
                lambda v=vote: client.chat_update(
                    channel=v.card_channel, ts=v.card_ts, text=text, blocks=card
                ),
                ignore=("message_not_found", "channel_not_found"),
            )
    if settled:
        thread = _thread_of(services, request)
        line = f"<@{request.requested_by}> {blocks.approval_status(request)}"
        if thread:
            _call(
                "chat.postMessage",
                lambda: client.chat_postMessage(channel=thread[0], thread_ts=thread[1], text=line),
                ignore=("not_in_channel", "channel_not_found"),
            )
        else:
            _call(
                "chat.postMessage",
                lambda: client.chat_postMessage(channel=request.requested_by, text=line),
            )
    for user in {request.requested_by, *request.approvers}:
        services.refresh_home(request.team_id, user)


def send_nudge(services: Services, nudge: Nudge) -> None:
    """A reminder to the approvers still to decide; an escalation to the admins."""
    request = nudge.request
    client = services.slack_client(request.team_id)
    image = card_image(services, team_id=request.team_id, image_id=request.image_id)
    title = blocks.escape(image.title if image else "an image")
    waiting = [v.approver_id for v in request.votes if v.decision is None]
    for approver in waiting:
        _call(
            "chat.postMessage",
            lambda a=approver: client.chat_postMessage(
                channel=a,
                text=f":bell: Reminder: <@{request.requested_by}> is waiting for your decision "
                f"on *{title}* (the card with the buttons is above).",
            ),
        )
    # Under `all`, an approver who has left can never decide: the admins must.
    gone = [a for a in waiting if services.admins.user(request.team_id, a).deleted]
    stuck = request.policy == "all" and bool(gone)
    if (nudge.escalate or stuck) and image is not None:
        who = ", ".join(f"<@{a}>" for a in waiting) or "nobody"
        if stuck:
            why = (
                f"{', '.join(f'<@{a}>' for a in gone)} left the workspace, and every approver "
                "must approve"
            )
        else:
            why = (
                f"it has waited over {services.settings.approval_escalate_hours:g} hours; "
                f"still waiting for {who}"
            )
        text = (
            f":rotating_light: The approval of *{title}* requested by "
            f"<@{request.requested_by}> needs an admin: {why}. You can decide here."
        )
        _, card = blocks.approval_card(request, image)
        for admin_id in sorted(services.settings.slack_admin_ids):
            post_card(client, channel=admin_id, text=text, body=[blocks.section(text), *card])
