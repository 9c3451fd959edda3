"""Saving an image's details, the use case every front door calls (`save`): who may change
them, whom they may ask to approve, then the save and who is told."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.approvals import ApprovalError, get_request, request_view
from bot.approvers import check_approvers
from bot.cancellation import cancel_for_image
from bot.decisions import email_link, show_change
from bot.details import DetailsError, DetailsInput, SavedDetails, can_edit, save_details, validate
from bot.discards import discard_image, keep_duplicate
from bot.people import People, Person
from bot.reviews import request_titles
from bot.services import Services
from storage.db import session_scope
from storage.models import AuditEvent, Image, ImageStatus

GONE = "These images are no longer in the library."
NOT_YOURS = "Only the person who posted these images, or an admin, can change their details."


def edit_refusal(
    factory: sessionmaker[Session],
    people: People,
    *,
    team_id: str,
    user_id: str,
    image_ids: list[int],
) -> str | None:
    """Why `user_id` may not edit these images, or None when they may."""
    with session_scope(factory) as session:
        images = list(
            session.scalars(select(Image).where(Image.team_id == team_id, Image.id.in_(image_ids)))
        )
    if not images or len(images) != len(image_ids):
        return GONE
    if all(i.uploader_id == user_id for i in images):
        return None
    is_admin = people.is_admin(team_id, user_id)
    if all(can_edit(i, user_id=user_id, is_admin=is_admin) for i in images):
        return None
    return NOT_YOURS


def check_details_approvers(
    factory: sessionmaker[Session],
    people: People,
    *,
    team_id: str,
    user_id: str,
    approvers: list[str],
    image_ids: list[int],
) -> None:
    """The approvers named in the details form, checked for every image (DetailsError)."""
    with session_scope(factory) as session:
        images = list(
            session.scalars(select(Image).where(Image.team_id == team_id, Image.id.in_(image_ids)))
        )
    try:
        for image in images:
            check_approvers(
                people, team_id=team_id, requester=user_id, approvers=approvers, image=image
            )
    except ApprovalError as exc:
        raise DetailsError({"approvers": str(exc)}) from None


def save(
    services: Services,
    actor: Person,
    details: DetailsInput,
    *,
    on_saved: Callable[[SavedDetails], None] | None = None,
) -> SavedDetails:
    """Save the details `actor` gave for the images in `details.titles`: they must be the
    poster or an admin, the details must be valid and the approvers able to decide. Then
    each approver named is asked, and the App Home of the actor and of every poster shows
    the change. DetailsError (by field) otherwise. `on_saved` gets the result once it is
    saved, before anyone is told (a door answering its request first)."""
    image_ids = list(details.titles)
    problem = edit_refusal(
        services.factory,
        services.people,
        team_id=actor.team_id,
        user_id=actor.user_id,
        image_ids=image_ids,
    )
    if problem:
        raise DetailsError({"title": problem})
    details = validate(details, today=services.clock().date())
    if details.approvers:
        check_details_approvers(
            services.factory,
            services.people,
            team_id=actor.team_id,
            user_id=actor.user_id,
            approvers=list(details.approvers),
            image_ids=image_ids,
        )
    saved = save_details(
        services.factory,
        team_id=actor.team_id,
        actor_id=actor.user_id,
        details=details,
        now=services.clock(),
    )
    if on_saved is not None:
        on_saved(saved)
    notifier = services.notifier
    if notifier is not None:
        for request_id in saved.approval_request_ids:
            request = get_request(services.factory, team_id=actor.team_id, request_id=request_id)
            if request is not None:
                notifier.approval_requested(request)
    for person in {actor.user_id, *posters_of(services.factory, actor.team_id, image_ids)}:
        services.refresh_home(actor.team_id, person)
    if saved.review_links:
        # One link covers every request made: the e-mail names them all at once.
        count = len(saved.approval_request_ids)
        first = get_request(
            services.factory, team_id=actor.team_id, request_id=saved.approval_request_ids[0]
        )
        what = f"{count} images"
        if count == 1 and first is not None:
            what = request_titles(services.factory, first)
        links = [email_link(services, actor, link, what=what) for link in saved.review_links]
        saved = replace(saved, review_links=links)
    return saved


def posters_of(factory: sessionmaker[Session], team_id: str, image_ids: list[int]) -> set[str]:
    with session_scope(factory) as session:
        return set(
            session.scalars(
                select(Image.uploader_id).where(Image.team_id == team_id, Image.id.in_(image_ids))
            )
        )


def settle_duplicate(
    services: Services, actor: Person, *, image_id: int, keep: bool
) -> Image | None:
    """The poster's answer about a near-duplicate (the caller checked they may edit it):
    keep it, or discard it from the library, which cancels its open request (the cards say
    so). The image as it was, or None when it was gone already."""
    now = services.clock()
    if keep:
        image = keep_duplicate(
            services.factory,
            team_id=actor.team_id,
            image_id=image_id,
            actor_id=actor.user_id,
            now=now,
        )
    else:
        image, cancelled = discard_image(
            services.factory,
            team_id=actor.team_id,
            image_id=image_id,
            actor_id=actor.user_id,
            media=services.media,
            now=now,
        )
        if cancelled is not None:
            show_change(services, cancelled, settled=True)
    if image is not None:
        for person in {actor.user_id, image.uploader_id}:
            services.refresh_home(actor.team_id, person)
    return image


def archive(services: Services, actor: Person, *, image_id: int) -> None:
    """Take an image out of the library's default view (search finds it with
    `status:archived`): only its poster or an admin. Its open request is cancelled and the
    approvers' cards say so. DetailsError otherwise."""
    problem = edit_refusal(
        services.factory,
        services.people,
        team_id=actor.team_id,
        user_id=actor.user_id,
        image_ids=[image_id],
    )
    if problem:
        raise DetailsError({"title": problem})
    now = services.clock()
    with session_scope(services.factory) as session:
        image = session.get(Image, image_id)
        if image is None or image.status == ImageStatus.ARCHIVED:
            return
        cancelled = cancel_for_image(session, image=image, actor_id=actor.user_id, now=now)
        cancelled_view = request_view(session, cancelled) if cancelled is not None else None
        image.status, image.updated_at = ImageStatus.ARCHIVED.value, now
        session.add(
            AuditEvent(
                team_id=image.team_id,
                image_id=image.id,
                actor_id=actor.user_id,
                action="archived",
                detail={},
                created_at=now,
            )
        )
        poster = image.uploader_id
    if cancelled_view is not None:
        show_change(services, cancelled_view, settled=True)
    for person in {actor.user_id, poster}:
        services.refresh_home(actor.team_id, person)
