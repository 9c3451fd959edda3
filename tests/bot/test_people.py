"""Who someone is to the library and what they may see, edit and share (bot.people, and the
rules built on it), from a workspace described as data: members, guests, admins, private
conversations, and a directory that sometimes will not say."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.editing import NOT_YOURS, edit_refusal
from bot.finder import ShareRefused, check_share, visible_image
from bot.people import People
from bot.services import Services
from storage.models import Image
from tests import seed
from tests.bot.fakes import (
    ADMIN,
    GUEST,
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
    make_services,
    workspace,
)

OPS = "UOPS"  # a member of the workspace named in SLACK_ADMIN_IDS


@pytest.fixture
def directory() -> FakeDirectory:
    directory = workspace()
    directory.add_person(OPS, "Oli Ops")
    return directory


@pytest.fixture
def services(tmp_path: Path, directory: FakeDirectory) -> Iterator[Services]:
    services = make_services(
        tmp_path,
        directory=directory,
        files=FakeFiles(),
        notifier=RecordingNotifier(),
        clock=FakeClock(),
        admins=(OPS,),
    )
    yield services
    services.shutdown()


@pytest.fixture
def images(services: Services) -> dict[str, int]:
    """One image from each conversation, by conversation."""
    return {
        channel: seed.add(
            services.factory, f"From {channel}", channel=channel, private=channel == SECRET
        )
        for channel in (SHOOTS, OTHER, SECRET)
    }


def sees(services: Services, user: str, images: dict[str, int]) -> set[str]:
    """The conversations whose image `user` may see."""
    viewer = services.people.person(TEAM, user).viewer
    return {
        channel
        for channel, image_id in images.items()
        if visible_image(services.factory, image_id=image_id, viewer=viewer) is not None
    }


def image(services: Services, images: dict[str, int], channel: str) -> Image:
    found = visible_image(
        services.factory,
        image_id=images[channel],
        viewer=services.people.person(TEAM, POSTER if channel == SECRET else ADMIN).viewer,
    )
    assert found is not None
    return found


# -- Roles ----------------------------------------------------------------------------------------


def test_roles_come_from_the_directory_and_the_configured_admins(services: Services) -> None:
    people = {user: services.people.person(TEAM, user) for user in (ADMIN, OPS, POSTER, GUEST)}
    people["UNOBODY"] = services.people.person(TEAM, "UNOBODY")
    assert {user: (p.role, p.is_admin) for user, p in people.items()} == {
        ADMIN: ("admin", True),
        OPS: ("admin", True),  # SLACK_ADMIN_IDS, whatever the directory says
        POSTER: ("member", False),
        GUEST: ("guest", False),
        "UNOBODY": ("guest", False),  # the directory does not know them: no rights
    }
    assert all((p.team_id, p.user_id) == (TEAM, user) for user, p in people.items())


def test_an_admin_the_directory_will_not_describe_is_not_an_admin(
    services: Services, directory: FakeDirectory, images: dict[str, int]
) -> None:
    directory.silence("person", ADMIN)
    person = services.people.person(TEAM, ADMIN)
    assert (person.role, person.is_admin) == ("guest", False)
    refusal = edit_refusal(
        services.factory,
        services.people,
        team_id=TEAM,
        user_id=ADMIN,
        image_ids=[images[SHOOTS]],
    )
    assert refusal == NOT_YOURS


# -- Seeing ---------------------------------------------------------------------------------------


def test_who_sees_images_from_which_conversation(
    services: Services, images: dict[str, int]
) -> None:
    assert {user: sees(services, user, images) for user in (MEMBER, POSTER, ADMIN, GUEST)} == {
        MEMBER: {SHOOTS, OTHER, SECRET},  # in every one of them
        POSTER: {SHOOTS, OTHER, SECRET},  # a public channel they are not in counts too
        ADMIN: {SHOOTS, OTHER},  # being an admin opens no private conversation
        GUEST: {SHOOTS},  # guests: their own channels only, public or not
    }
    assert sees(services, "UNOBODY", images) == set()


def test_when_the_directory_will_not_list_someones_conversations_they_see_less(
    services: Services, directory: FakeDirectory, images: dict[str, int]
) -> None:
    directory.silence("conversations_of", POSTER)
    directory.silence("conversations_of", GUEST)
    assert sees(services, POSTER, images) == {SHOOTS, OTHER}  # public ones only
    assert sees(services, GUEST, images) == set()


# -- Editing --------------------------------------------------------------------------------------


def test_only_the_poster_or_an_admin_may_edit(services: Services) -> None:
    image_id = seed.add(services.factory, "Posted by Pat", uploader=POSTER, channel=SHOOTS)
    assert {
        user: edit_refusal(
            services.factory, services.people, team_id=TEAM, user_id=user, image_ids=[image_id]
        )
        for user in (POSTER, ADMIN, OPS, MEMBER, GUEST)
    } == {POSTER: None, ADMIN: None, OPS: None, MEMBER: NOT_YOURS, GUEST: NOT_YOURS}


# -- Sharing --------------------------------------------------------------------------------------


def share_refusal(
    services: Services,
    images: dict[str, int],
    *,
    source: str,
    sharer: str,
    target: str,
    external: bool = False,
) -> str | None:
    """Why `sharer` may not share the image from `source` into `target` (None: they may)."""
    try:
        check_share(
            image(services, images, source),
            user_id=sharer,
            target_channel=target,
            target_shared_externally=external,
            people=services.people,
        )
    except ShareRefused as exc:
        return str(exc)
    return None


def test_an_image_is_shared_only_where_everyone_may_see_it(
    services: Services, images: dict[str, int]
) -> None:
    # Into #other (the admin and the member, both in #shoots): everyone there may see it.
    assert share_refusal(services, images, source=SHOOTS, sharer=MEMBER, target=OTHER) is None
    assert share_refusal(services, images, source=SHOOTS, sharer=MEMBER, target="C0UNKNOWN") == (
        "I can't post in this conversation. Invite me first: /invite @Image Library"
    )
    assert share_refusal(services, images, source=SHOOTS, sharer=POSTER, target=OTHER) == (
        "You can only share into a channel you are in."
    )
    # #shoots has the admin and the guest, who are not in the private conversation.
    assert "would show it to 2 people who are not in it" in str(
        share_refusal(services, images, source=SECRET, sharer=MEMBER, target=SHOOTS)
    )
    # The guest is in #shoots but not in #other.
    assert "This channel has 1 guest(s)" in str(
        share_refusal(services, images, source=OTHER, sharer=MEMBER, target=SHOOTS)
    )
    assert "shared with another organisation" in str(
        share_refusal(services, images, source=SHOOTS, sharer=MEMBER, target=OTHER, external=True)
    )


def test_when_the_guest_list_cannot_be_had_an_image_is_not_shared_where_a_guest_is(
    services: Services, directory: FakeDirectory, images: dict[str, int]
) -> None:
    directory.silence("guests", TEAM)
    # The guest is in #shoots but not in #other.
    assert share_refusal(services, images, source=OTHER, sharer=MEMBER, target=SHOOTS) is not None


# -- The cache ------------------------------------------------------------------------------------


def test_a_burst_of_clicks_costs_one_directory_lookup(
    services: Services, directory: FakeDirectory, images: dict[str, int]
) -> None:
    for _ in range(50):
        person = services.people.person(TEAM, MEMBER)
        services.people.members(TEAM, SECRET)
    assert person.viewer.channels == {SECRET}
    assert directory.asked("person", MEMBER) == 1
    assert directory.asked("conversations_of", MEMBER) == 1
    assert directory.asked("members", SECRET) == 1


def test_a_burst_of_clicks_at_once_costs_one_directory_lookup(
    services: Services, directory: FakeDirectory
) -> None:
    # Slack runs listeners on a thread pool, and ingest on several threads: a burst of
    # clicks or posts arrives at once, not one after the other.
    directory.delay = 0.05
    start = threading.Barrier(8)

    def click() -> None:
        start.wait()
        services.people.facts(TEAM, MEMBER)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert directory.asked("person", MEMBER) == 1


def test_the_directory_is_asked_again_once_its_answer_is_old(
    services: Services, directory: FakeDirectory, images: dict[str, int]
) -> None:
    # A second, not 50 ms: on a busy host 50 ms passed between two lines and the answer
    # was old before it could be seen cached.
    people = People(directory, services.factory, facts_ttl=1.0, membership_ttl=1.0)
    assert SECRET not in people.viewer(TEAM, ADMIN).channels
    directory.conversations[SECRET].members.add(ADMIN)
    assert SECRET not in people.viewer(TEAM, ADMIN).channels  # still the cached answer
    time.sleep(1.05)
    assert SECRET in people.viewer(TEAM, ADMIN).channels


def test_an_answer_the_directory_would_not_give_is_not_kept_past_the_outage(
    services: Services, directory: FakeDirectory
) -> None:
    # Slack answering 429 or 503 for a while: an approver must not stay "no longer in the
    # workspace", nor a token's owner "deactivated", for the five minutes a real answer is
    # kept (the chaos soak saw both, minutes after a Slack storm).
    people = People(directory, services.factory, unsure_ttl=0.05)
    directory.silence("person", MEMBER)
    directory.silence("conversations_of", MEMBER)
    assert people.facts(TEAM, MEMBER).deleted
    assert people.conversations_of(TEAM, MEMBER) == frozenset()
    directory.answer_again("person", MEMBER)
    directory.answer_again("conversations_of", MEMBER)
    time.sleep(0.06)
    assert not people.facts(TEAM, MEMBER).deleted
    assert SECRET in people.conversations_of(TEAM, MEMBER)
    assert people.facts(TEAM, MEMBER) is people.facts(TEAM, MEMBER)  # a real answer is kept


def test_a_person_slack_described_a_moment_ago_stays_known_while_slack_cannot_be_asked(
    services: Services, directory: FakeDirectory
) -> None:
    # The chaos soak: right after a Slack storm, API tokens were refused as "deactivated"
    # because the directory's "could not say" replaced the person's real, recent answer.
    people = People(directory, services.factory, facts_ttl=0.05, unsure_ttl=0.05)
    known = people.facts(TEAM, MEMBER)
    assert not known.deleted
    directory.silence("person", MEMBER)
    time.sleep(0.06)  # the real answer has expired; Slack cannot be asked now
    assert people.facts(TEAM, MEMBER) == known
    assert directory.asked("person", MEMBER) == 2  # it was asked, and will be again soon
    # Someone Slack never described is still nobody while it cannot say.
    directory.silence("person", GUEST)
    assert people.facts(TEAM, GUEST).deleted
