"""Search on both databases: every filter, paging, typo-tolerant tags, and visibility rules
that would leak an image if the filter were removed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from bot.admin import list_categories
from bot.details import suggest_tags
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Image
from storage.search import COUNT_CAP, Cursor, Viewer, closest_tags, parse, search_images
from tests.seed import START, add

TEAM = "T0TEAM1"
OTHER_TEAM = "T0OTHER"
PUBLIC, PRIVATE, GUESTS = "C0PUBLIC", "G0PRIVATE", "C0GUESTS"
MEMBER = Viewer(TEAM, is_guest=False, channels=frozenset())
INSIDER = Viewer(TEAM, is_guest=False, channels=frozenset({PRIVATE}))
GUEST = Viewer(TEAM, is_guest=True, channels=frozenset({GUESTS}))


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def titles(factory: sessionmaker[Session], text: str, viewer: Viewer = MEMBER) -> list[str]:
    with session_scope(factory) as session:
        page = search_images(session, parse(text), viewer=viewer, limit=50)
        return [i.title for i in page.images]


@pytest.fixture
def library(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    add(
        factory,
        "CMO keynote",
        tags=("CMO", "keynote"),
        category="Marketing",
        when=START + timedelta(days=2),
        description="Opening talk at the summit",
    )
    add(
        factory,
        "CMO portrait",
        tags=("CMO", "portrait"),
        category="Marketing",
        when=START + timedelta(days=1),
    )
    add(
        factory,
        "Launch party",
        tags=("launch",),
        category="Events",
        uploader="UBEN",
        uploader_name="Ben Photographer",
        when=START - timedelta(days=40),
        description="The launch party in the new office",
    )
    add(factory, "Old logo", tags=("logo",), status="rejected", when=START - timedelta(days=400))
    add(factory, "Draft banner", tags=("banner",), status="draft", when=START)
    add(
        factory,
        "Secret product",
        tags=("CMO",),
        channel=PRIVATE,
        private=True,
        when=START + timedelta(days=3),
    )
    add(factory, "Guest corner", tags=("guest",), channel=GUESTS, when=START)
    add(factory, "Other team CMO", tags=("CMO",), team=OTHER_TEAM, when=START + timedelta(days=5))
    return factory


def test_free_words_match_title_tags_description_category_and_uploader(
    library: sessionmaker[Session],
) -> None:
    assert titles(library, "keynote") == ["CMO keynote"]
    assert titles(library, "summit") == ["CMO keynote"]  # description
    assert titles(library, "Ben") == ["Launch party"]  # uploader's name
    assert titles(library, "events") == ["Launch party"]  # category
    assert titles(library, "key") == ["CMO keynote"]  # prefix
    assert titles(library, "CMO portrait") == ["CMO portrait"]  # every word must match


def test_phrases_and_exclusions(library: sessionmaker[Session]) -> None:
    assert titles(library, '"launch party"') == ["Launch party"]
    assert titles(library, '"office launch"') == []
    assert titles(library, "CMO -portrait") == ["CMO keynote"]


def test_tag_category_by_in_and_dates(library: sessionmaker[Session]) -> None:
    assert titles(library, "tag:cmo") == ["CMO keynote", "CMO portrait"]
    assert titles(library, "tag:launch tag:portrait") == ["CMO portrait", "Launch party"]
    assert titles(library, "category:marketing") == ["CMO keynote", "CMO portrait"]
    assert titles(library, "#Events") == ["Launch party"]
    assert titles(library, "by:<@UBEN|ben>") == ["Launch party"]
    assert titles(library, f"in:<#{GUESTS}|guests>") == ["Guest corner"]
    assert titles(library, "date:2026-11-03") == ["CMO keynote"]
    assert titles(library, "date:2026-09") == ["Launch party"]
    assert titles(library, "after:2026-11-01 before:2026-11-03") == ["CMO portrait"]


def test_status_defaults_hide_rejected_and_archived(library: sessionmaker[Session]) -> None:
    assert "Old logo" not in titles(library, "logo")
    assert titles(library, "status:rejected") == ["Old logo"]
    assert titles(library, "banner") == ["Draft banner"]
    assert titles(library, "status:approved banner") == []


def test_misspelled_tag_is_corrected(library: sessionmaker[Session]) -> None:
    with session_scope(library) as session:
        page = search_images(session, parse("tag:keynot"), viewer=MEMBER)
        assert [i.title for i in page.images] == ["CMO keynote"]
        assert page.used_tags == {"keynot": "keynote"}
        assert closest_tags(session, viewer=MEMBER, typed="portrit") == ["portrait"]


def test_tag_filter_is_exact_for_every_kind_of_tag(factory: sessionmaker[Session]) -> None:
    # SQLite narrows tag filters with its FTS5 index (ASCII tags with a word in them) and
    # checks the tags exactly; these would slip through one of the two if either were wrong.
    for tag in (
        "new-york",
        "new",
        "Café",
        "Straße",
        "\U0001f4f8",
        "<!channel>",
        "a b c d e f g h i",
    ):
        add(factory, f"Tagged {tag}", tags=(tag,))

    def exact(text: str) -> list[str]:  # no typo correction: the filter alone
        with session_scope(factory) as session:
            page = search_images(session, parse(text), viewer=MEMBER, correct_tags=False)
            return [i.title for i in page.images]

    assert exact("tag:new-york") == ["Tagged new-york"]
    assert exact("tag:NEW") == ["Tagged new"]
    assert exact("tag:york") == []
    assert exact("tag:café") == ["Tagged Café"]
    assert exact("tag:STRASSE") == ["Tagged Straße"]
    assert exact("tag:\U0001f4f8") == ["Tagged \U0001f4f8"]
    assert exact("tag:<!channel>") == ["Tagged <!channel>"]
    assert exact('tag:"a b c d e f g h i"') == ["Tagged a b c d e f g h i"]
    assert exact('tag:"a b c d e f g h"') == []


def test_tag_filter_finds_every_match_however_it_is_planned(
    factory: sessionmaker[Session],
) -> None:
    # Tags used on few visible images are sorted after finding them all; a tag on no
    # visible image at all answers without searching. Both must page exactly as the walk.
    for n in range(7):
        add(factory, f"Seen {n}", tags=("mostly-hidden",), when=START + timedelta(hours=n))
    for n in range(3):
        add(factory, f"Hidden {n}", tags=("mostly-hidden",), channel=PRIVATE, private=True)
    with session_scope(factory) as session:
        first = search_images(session, parse("tag:mostly-hidden"), viewer=MEMBER, limit=5)
        assert [i.title for i in first.images] == [f"Seen {n}" for n in (6, 5, 4, 3, 2)]
        assert (first.total, first.has_older) == (7, True)
        last = first.images[-1]
        rest = search_images(
            session,
            parse("tag:mostly-hidden"),
            viewer=MEMBER,
            limit=5,
            cursor=Cursor(last.sort_at, last.id),
        )
        assert [i.title for i in rest.images] == ["Seen 1", "Seen 0"]
        assert (rest.total, rest.has_newer, rest.has_older) == (7, True, False)
        assert search_images(session, parse("tag:mostly-hidden"), viewer=INSIDER).total == 10
        assert search_images(session, parse("tag:mostly-hidden"), viewer=GUEST).total == 0


def test_sql_metacharacters_are_only_text(library: sessionmaker[Session]) -> None:
    for text in ["'; DROP TABLE images; --", "100%", "a_b", 'x" OR 1=1 --', "NEAR(a b)"]:
        assert titles(library, text) == []
    everything = titles(library, "")
    assert len(everything) == 5  # not the rejected, private or other team's images
    # Punctuation alone is no word: it narrows nothing (and breaks nothing).
    for text in ["*", "\\", "^", '"', "(", "-"]:
        assert titles(library, text) == everything


# -- visibility: each of these would leak if the filter were removed --------------------------


def test_private_channel_images_only_for_its_members(library: sessionmaker[Session]) -> None:
    assert "Secret product" not in titles(library, "tag:CMO", MEMBER)
    assert "Secret product" in titles(library, "tag:CMO", INSIDER)


def test_guests_see_only_their_channels(library: sessionmaker[Session]) -> None:
    assert titles(library, "", GUEST) == ["Guest corner"]
    assert titles(library, "tag:CMO", GUEST) == []


def test_other_teams_never_appear(library: sessionmaker[Session]) -> None:
    assert "Other team CMO" not in titles(library, "CMO", INSIDER)
    other = Viewer(OTHER_TEAM, is_guest=False, channels=frozenset())
    assert titles(library, "CMO", other) == ["Other team CMO"]


def test_images_not_stored_yet_are_not_found(library: sessionmaker[Session]) -> None:
    image_id = add(library, "Still uploading", tags=("pending-upload",))
    with session_scope(library) as session:
        session.execute(update(Image).where(Image.id == image_id).values(storage_key=None))
    assert titles(library, "uploading") == []


def test_tag_names_are_offered_only_from_images_the_viewer_may_see(
    library: sessionmaker[Session],
) -> None:
    secret = add(
        library, "Falcon mock-up", tags=("Project Falcon", "falcon"), channel=PRIVATE, private=True
    )
    with session_scope(library) as session:
        assert suggest_tags(session, viewer=MEMBER, typed="proj") == []
        assert suggest_tags(session, viewer=GUEST, typed="proj") == []
        assert suggest_tags(session, viewer=INSIDER, typed="proj") == ["Project Falcon"]
        assert "Project Falcon" not in suggest_tags(session, viewer=MEMBER, typed="falcom")
        assert closest_tags(session, viewer=MEMBER, typed="falcn") == []
        assert closest_tags(session, viewer=INSIDER, typed="falcn") == ["falcon"]
        # Guests see only their channels' tags, not even the public ones.
        assert suggest_tags(session, viewer=GUEST, typed="") == ["guest"]
        assert suggest_tags(session, viewer=GUEST, typed="cm") == []
        # A typo is not corrected to a tag the viewer cannot see, and an exact private tag
        # behaves like an unknown one (no "no such tag" difference to learn from).
        page = search_images(session, parse("tag:falcn"), viewer=MEMBER)
        assert (page.used_tags, page.images) == ({}, [])
        page = search_images(session, parse("tag:falcn"), viewer=INSIDER)
        assert page.used_tags == {"falcn": "falcon"}
        assert [i.title for i in page.images] == ["Falcon mock-up"]
    # The counts follow every write of the images (database triggers), not only the app's.
    with session_scope(library) as session:
        session.execute(update(Image).where(Image.id == secret).values(channel_private=False))
    with session_scope(library) as session:
        assert suggest_tags(session, viewer=MEMBER, typed="proj") == ["Project Falcon"]
        session.execute(
            update(Image).where(Image.id == secret).values(channel_private=True, tag_keys=[])
        )
    with session_scope(library) as session:
        assert suggest_tags(session, viewer=INSIDER, typed="proj") == []
        session.execute(update(Image).where(Image.id == secret).values(tag_keys=["project falcon"]))
    with session_scope(library) as session:
        assert suggest_tags(session, viewer=INSIDER, typed="proj") == ["Project Falcon"]
        session.execute(delete(Image).where(Image.id == secret))
    with session_scope(library) as session:
        assert suggest_tags(session, viewer=INSIDER, typed="proj") == []


def test_category_counts_are_of_images_the_viewer_may_see(
    library: sessionmaker[Session],
) -> None:
    add(library, "Secret plan", category="Marketing", channel=PRIVATE, private=True)
    add(library, "Guest banner", category="Marketing", channel=GUESTS)

    def counts(viewer: Viewer) -> dict[str, int]:
        return {c.name: c.images for c in list_categories(library, team_id=TEAM, viewer=viewer)}

    assert counts(MEMBER) == {"Events": 1, "Marketing": 3}
    assert counts(INSIDER) == {"Events": 1, "Marketing": 4}
    assert counts(GUEST) == {"Events": 0, "Marketing": 1}
    other = Viewer(OTHER_TEAM, is_guest=False, channels=frozenset())
    assert list_categories(library, team_id=OTHER_TEAM, viewer=other) == []


# -- paging -------------------------------------------------------------------------------


def test_keyset_paging_forwards_and_back(factory: sessionmaker[Session]) -> None:
    for n in range(12):
        add(factory, f"Shot {n:02d}", tags=("series",), when=START + timedelta(hours=n))
    query = parse("tag:series")
    with session_scope(factory) as session:
        first = search_images(session, query, viewer=MEMBER, limit=5)
        assert [i.title for i in first.images] == [f"Shot {n:02d}" for n in (11, 10, 9, 8, 7)]
        assert (first.total, first.has_newer, first.has_older) == (12, False, True)
        last = first.images[-1]
        second = search_images(
            session, query, viewer=MEMBER, limit=5, cursor=Cursor(last.sort_at, last.id)
        )
        assert [i.title for i in second.images] == [f"Shot {n:02d}" for n in (6, 5, 4, 3, 2)]
        assert (second.has_newer, second.has_older) == (True, True)
        top = second.images[0]
        back = search_images(
            session,
            query,
            viewer=MEMBER,
            limit=5,
            cursor=Cursor(top.sort_at, top.id, backwards=True),
        )
        assert [i.title for i in back.images] == [i.title for i in first.images]
        assert back.has_newer is False


def test_cursor_encoding_round_trips_and_rejects_junk() -> None:
    cursor = Cursor(START, 42, backwards=True)
    assert Cursor.decode(cursor.encode()) == cursor
    for junk in ("", "x1:2", "f1e999:2", "f1:", "b-1:1;DROP"):
        assert Cursor.decode(junk) is None


def test_count_is_capped(factory: sessionmaker[Session]) -> None:
    assert COUNT_CAP == 100
    with session_scope(factory) as session:
        page = search_images(session, parse("nothing-here"), viewer=MEMBER)
    assert page.total == 0
    assert page.images == []
