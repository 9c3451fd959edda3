"""Saving an image's details and settling a near-duplicate (bot.editing), with no Slack: who
may, the refusals by field, and who is told (approvers asked, App Homes refreshed)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot import decisions, editing
from bot.details import DetailsError, DetailsInput, SavedDetails
from bot.services import Services
from storage.db import session_scope
from storage.models import AuditEvent, Image
from tests import seed
from tests.bot.fakes import (
    ADMIN,
    MEMBER,
    POSTER,
    SECRET,
    SHOOTS,
    TEAM,
    RecordingNotifier,
    homes_refreshed,
)


def draft(
    services: Services, title: str = "IMG 0001", *, uploader: str = POSTER, channel: str = SHOOTS
) -> int:
    return seed.add(
        services.factory,
        title,
        uploader=uploader,
        channel=channel,
        private=channel == SECRET,
        status="draft",
    )


def save(services: Services, user: str, titles: dict[int, str], **details: object) -> SavedDetails:
    return editing.save(
        services,
        services.people.person(TEAM, user),
        DetailsInput(titles=titles, **details),  # type: ignore[arg-type]
    )


def title_of(services: Services, image_id: int) -> str | None:
    with session_scope(services.factory) as session:
        return session.scalar(select(Image.title).where(Image.id == image_id))


# -- Saving -------------------------------------------------------------------------------------


def test_the_poster_saves_details_and_their_home_shows_them(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    saved = save(
        services,
        POSTER,
        {image_id: "  Launch   hero "},
        tags=["Launch", "launch", "hero"],
        shoot_date=date(2026, 11, 3),
    )
    assert saved.image_ids == [image_id]
    assert saved.tags == ["Launch", "hero"]
    assert title_of(services, image_id) == "Launch hero"
    assert notifier.of("approval_requested") == []
    assert homes_refreshed(services, notifier) == {(TEAM, POSTER)}


def test_an_admin_editing_someones_images_refreshes_both_homes(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    save(services, ADMIN, {image_id: "Fixed by the admin"})
    assert title_of(services, image_id) == "Fixed by the admin"
    assert homes_refreshed(services, notifier) == {(TEAM, ADMIN), (TEAM, POSTER)}


def test_someone_elses_images_are_refused_on_the_title_field(
    services: Services, notifier: RecordingNotifier
) -> None:
    theirs = draft(services, "Theirs")
    mine = draft(services, "Mine", uploader=MEMBER)
    for titles in ({theirs: "Mine now"}, {mine: "Still mine", theirs: "Mine now"}):
        with pytest.raises(DetailsError) as refused:
            save(services, MEMBER, titles)
        assert refused.value.fields == {"title": editing.NOT_YOURS}
    assert (title_of(services, theirs), title_of(services, mine)) == ("Theirs", "Mine")
    assert homes_refreshed(services, notifier) == set()


def test_images_no_longer_in_the_library_are_gone(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    with pytest.raises(DetailsError) as refused:
        save(services, POSTER, {image_id: "One", image_id + 100: "Deleted meanwhile"})
    assert refused.value.fields == {"title": editing.GONE}
    assert title_of(services, image_id) == "IMG 0001"
    assert notifier.told == []


def test_what_cannot_be_saved_is_named_field_by_field(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    with pytest.raises(DetailsError) as refused:
        save(
            services,
            POSTER,
            {image_id: "   "},
            tags=[f"tag{n}" for n in range(21)],
            shoot_date=services.clock().date() + timedelta(days=3),
        )
    assert refused.value.fields.keys() == {f"title:{image_id}", "tags", "shoot_date"}
    assert refused.value.fields[f"title:{image_id}"] == "Give the image a title."
    assert "at most 20 tags; you gave 21" in refused.value.fields["tags"]
    assert "is in the future" in refused.value.fields["shoot_date"]
    assert title_of(services, image_id) == "IMG 0001"
    assert notifier.told == []


def test_naming_approvers_sends_the_draft_for_approval_after_on_saved(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    seen: list[list[str]] = []
    saved = editing.save(
        services,
        services.people.person(TEAM, POSTER),
        DetailsInput(titles={image_id: "Launch hero"}, approvers=[MEMBER, MEMBER, ADMIN]),
        on_saved=lambda _: seen.append(notifier.kinds),
    )
    assert seen == [[]]
    (request,) = notifier.of("approval_requested")
    assert [request.id] == saved.approval_request_ids
    assert (request.state, request.requested_by, request.image_id) == ("open", POSTER, image_id)
    assert request.approvers == [MEMBER, ADMIN]


def test_an_approver_who_cannot_see_a_private_image_is_refused_before_anything_is_saved(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services, channel=SECRET)
    with pytest.raises(DetailsError) as refused:
        save(services, POSTER, {image_id: "Secret launch"}, approvers=[ADMIN])
    assert refused.value.fields == {
        "approvers": "Ana Admin cannot see this image (it comes from a channel they are not in)."
    }
    assert title_of(services, image_id) == "IMG 0001"
    assert notifier.told == []


def test_editing_an_image_already_sent_for_approval_does_not_ask_again(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    decisions.ask_for_approval(
        services, services.people.person(TEAM, POSTER), image_id=image_id, approvers=[MEMBER]
    )
    saved = save(services, POSTER, {image_id: "Renamed"}, approvers=[ADMIN])
    assert saved.approval_request_ids == []
    assert notifier.said == ["approval_requested"]  # the first ask only
    assert notifier.of("approval_requested")[0].approvers == [MEMBER]


# -- Duplicates -----------------------------------------------------------------------------------


def test_discarding_a_duplicate_cancels_its_request_and_the_cards_say_so(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    request = decisions.ask_for_approval(
        services, services.people.person(TEAM, POSTER), image_id=image_id, approvers=[MEMBER]
    ).request
    discarded = editing.settle_duplicate(
        services, services.people.person(TEAM, ADMIN), image_id=image_id, keep=False
    )
    assert discarded is not None and discarded.id == image_id
    assert title_of(services, image_id) is None
    (told,) = [t for t in notifier.told if t.kind == "approval_changed"]
    assert told.settled is True
    assert (told.what.id, told.what.state) == (request.id, "cancelled")
    assert homes_refreshed(services, notifier) == {(TEAM, ADMIN), (TEAM, POSTER)}
    # Who discarded what stays in the audit trail, after the image is gone.
    (trail,) = audit_trail(services, "image_discarded")
    assert (trail.actor_id, trail.image_id, trail.detail["image_id"]) == (ADMIN, None, image_id)


def test_keeping_a_duplicate_tells_no_approver_and_refreshes_the_home(
    services: Services, notifier: RecordingNotifier
) -> None:
    image_id = draft(services)
    kept = editing.settle_duplicate(
        services, services.people.person(TEAM, POSTER), image_id=image_id, keep=True
    )
    assert kept is not None and kept.duplicate_of_id is None
    assert title_of(services, image_id) == "IMG 0001"
    assert notifier.said == []
    assert homes_refreshed(services, notifier) == {(TEAM, POSTER)}
    (trail,) = audit_trail(services, "duplicate_kept")
    assert (trail.actor_id, trail.image_id) == (POSTER, image_id)


def audit_trail(services: Services, action: str) -> list[AuditEvent]:
    with session_scope(services.factory) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_settling_a_duplicate_already_gone_tells_nobody(
    services: Services, notifier: RecordingNotifier
) -> None:
    poster = services.people.person(TEAM, POSTER)
    assert editing.settle_duplicate(services, poster, image_id=404, keep=True) is None
    assert editing.settle_duplicate(services, poster, image_id=404, keep=False) is None
    assert homes_refreshed(services, notifier) == set()
    assert notifier.told == []
