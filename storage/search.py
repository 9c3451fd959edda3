"""Search: a parsed `Query` (see `storage.query`, re-exported here) -> SQL per dialect, for
one viewer. The visibility filter is part of the WHERE clause, so paging and counts are over
what this person may see, never a post-filter; the same goes for the tag names offered as
suggestions or typo corrections.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy import text as text_clause
from sqlalchemy.dialects.postgresql import REGCONFIG, array
from sqlalchemy.orm import Session

from storage.models import Category, Image, Tag, TagUse
from storage.query import (  # noqa: F401 - re-exported: the query language's public names
    DEFAULT_STATUSES,
    FILTERS,
    MAX_QUERY_CHARS,
    MAX_TERM_CHARS,
    MAX_TERMS,
    STATUSES,
    Query,
    parse,
    parse_date,
)

# --------------------------------------------------------------------------------------------
# Query -> SQL, per dialect. The visibility filter is part of the WHERE clause, so paging
# and counts are over what this person may see, never a post-filter.


@dataclass(frozen=True)
class Viewer:
    """Who is searching. `channels`: the conversations they belong to among those the
    library has images from (a guest sees only these; a member also sees public ones)."""

    team_id: str
    is_guest: bool
    channels: frozenset[str]


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (sort_at, id) of a row, and which way to page from it."""

    sort_at: datetime
    image_id: int
    backwards: bool = False

    def encode(self) -> str:
        return f"{'b' if self.backwards else 'f'}{self.sort_at.timestamp():.6f}:{self.image_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        found = re.fullmatch(r"([bf])(-?\d+(?:\.\d+)?):(\d+)", text or "")
        if not found:
            return None
        try:
            when = datetime.fromtimestamp(float(found.group(2)), tz=UTC)
        except (ValueError, OverflowError, OSError):
            return None
        return cls(when, int(found.group(3)), backwards=found.group(1) == "b")


@dataclass(frozen=True)
class Page:
    images: list[Image]
    total: int  # capped at COUNT_CAP + 1
    has_newer: bool
    has_older: bool
    used_tags: dict[str, str] = field(default_factory=dict)  # typed -> corrected tag


COUNT_CAP = 100  # "100+ images": counting further costs more than it tells


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The images `viewer` may see: their team's, from public channels (not for guests) or
    from conversations they are in."""
    members_of = Image.channel_id.in_(sorted(viewer.channels)) if viewer.channels else false()
    if viewer.is_guest:
        return and_(Image.team_id == viewer.team_id, members_of)
    return and_(Image.team_id == viewer.team_id, or_(Image.channel_private.is_(False), members_of))


def tag_visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The `Tag` is on at least one image `viewer` may see (the rule of `visible_to`, applied
    to the per-conversation counts in `tag_uses`): a tag used only in a private channel is
    never suggested, corrected to or even admitted to exist outside it."""
    members_of = TagUse.channel_id.in_(sorted(viewer.channels)) if viewer.channels else false()
    where = members_of if viewer.is_guest else or_(TagUse.channel_private.is_(False), members_of)
    return exists().where(TagUse.team_id == Tag.team_id, TagUse.name_key == Tag.name_key, where)


def search_images(
    session: Session,
    query: Query,
    *,
    viewer: Viewer,
    cursor: Cursor | None = None,
    limit: int = 5,
    correct_tags: bool = True,
) -> Page:
    """One page of images matching `query` that `viewer` may see, newest first."""
    conditions, corrected = _conditions(session, query, viewer=viewer, correct=correct_tags)
    base = select(Image).where(*conditions)
    order_desc = (Image.sort_at.desc(), Image.id.desc())
    if cursor is None:
        page_query = base.order_by(*order_desc).limit(limit + 1)
    elif cursor.backwards:
        newer = or_(
            Image.sort_at > cursor.sort_at,
            and_(Image.sort_at == cursor.sort_at, Image.id > cursor.image_id),
        )
        page_query = base.where(newer).order_by(Image.sort_at, Image.id).limit(limit + 1)
    else:
        page_query = base.where(_older_than(cursor.sort_at, cursor.image_id))
        page_query = page_query.order_by(*order_desc).limit(limit + 1)
    rows = list(session.scalars(page_query))
    more = len(rows) > limit
    rows = rows[:limit]
    if cursor is not None and cursor.backwards:
        rows.reverse()
        has_newer, has_older = more, True
    else:
        has_newer, has_older = cursor is not None, more
    capped = select(Image.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    total = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    return Page(rows, total, has_newer and bool(rows), has_older, corrected)


def _older_than(sort_at: datetime, image_id: int) -> ColumnElement[bool]:
    return or_(Image.sort_at < sort_at, and_(Image.sort_at == sort_at, Image.id < image_id))


def _conditions(
    session: Session, query: Query, *, viewer: Viewer, correct: bool
) -> tuple[list[ColumnElement[bool]], dict[str, str]]:
    postgres = session.get_bind().dialect.name == "postgresql"
    team = viewer.team_id
    conditions: list[ColumnElement[bool]] = [
        visible_to(viewer),
        Image.storage_key.is_not(None),
        Image.status.in_(query.effective_statuses),
    ]
    for word in query.words:
        # Categories named like the word are looked up first (a short list): a sub-select
        # in the OR would keep Postgres from using the full-text index.
        category_ids = list(session.scalars(_category_ids(team, word, prefix=True)))
        match = _text_match(word, postgres=postgres)
        conditions.append(
            or_(match, Image.category_id.in_(category_ids)) if category_ids else match
        )
    for phrase in query.phrases:
        conditions.append(_text_match(phrase, postgres=postgres, phrase=True))
    for word in query.excluded:
        conditions.append(not_(_text_match(word, postgres=postgres, phrase=" " in word)))
    corrected: dict[str, str] = {}
    if query.tags:
        keys = []
        for tag in query.tags:
            key = tag_key(tag)
            if correct and not _tag_exists(session, viewer, key):
                better = closest_tags(session, viewer=viewer, typed=tag, limit=1)
                if better:
                    corrected[tag] = better[0]
                    key = tag_key(better[0])
            keys.append(key)
        conditions.append(_has_any_tag(keys, postgres=postgres))
    if query.categories:
        # Resolved first, so the planner sees the ids (and the category + date index fits).
        wanted = [
            category_id
            for name in query.categories
            for category_id in session.scalars(_category_ids(team, name, prefix=False))
        ]
        conditions.append(Image.category_id.in_(wanted) if wanted else false())
    if query.uploaders:
        conditions.append(Image.uploader_id.in_(query.uploaders))
    if query.channels:
        conditions.append(Image.channel_id.in_(query.channels))
    if query.date_from:
        conditions.append(Image.sort_at >= datetime.combine(query.date_from, time(0), tzinfo=UTC))
    if query.date_to:
        end = datetime.combine(query.date_to + timedelta(days=1), time(0), tzinfo=UTC)
        conditions.append(Image.sort_at < end)
    return conditions, corrected


def _text_match(text: str, *, postgres: bool, phrase: bool = False) -> ColumnElement[bool]:
    """Full-text match on title, tags, uploader name and description."""
    terms = _fts_terms(text)
    if not terms:
        return true() if not phrase else false()
    if postgres:
        # A lone word matches as a prefix ("key" finds "keynote"); several must be adjacent.
        tsquery = " <-> ".join(terms) if phrase or len(terms) > 1 else f"{terms[0]}:*"
        return literal_column("images.search_vector").op("@@")(
            func.to_tsquery(literal("simple").cast(REGCONFIG), tsquery)
        )
    fts = '"' + " ".join(terms) + '"' if phrase or len(terms) > 1 else f'"{terms[0]}"*'
    # unique=True: several words in one query each get their own bound parameter.
    matching = text_clause("SELECT rowid FROM images_fts WHERE images_fts MATCH :fts").bindparams(
        bindparam("fts", fts, unique=True)
    )
    return Image.id.in_(matching)


def _fts_terms(text: str) -> list[str]:
    """Letters and digits only: every full-text operator character is dropped, so user text
    can never change the query's shape."""
    return [t for t in re.split(r"[^\w]+", text.casefold()) if t and t != "_"][:8]


def normalise_tag(raw: str) -> str:
    """Trim, collapse inner white space, NFC-normalise. Case is kept as typed."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def tag_key(tag: str) -> str:
    """What makes two tags the same tag: case-insensitive (casefold) comparison."""
    return normalise_tag(tag).casefold()


def _has_any_tag(keys: list[str], *, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        return Image.tag_keys.op("&&")(cast(array(keys), ARRAY(Text)))  # GIN
    each = func.json_each(Image.tag_keys).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value.in_(keys)))


def _category_ids(team_id: str, name: str, *, prefix: bool) -> Select[tuple[int]]:
    key = tag_key(name)
    wanted = (
        Category.name_key.like(_escape_like(key) + "%", escape="\\")
        if prefix
        else Category.name_key == key
    )
    return select(Category.id).where(Category.team_id == team_id, wanted)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_exists(session: Session, viewer: Viewer, key: str) -> bool:
    """Whether the tag is on an image `viewer` may see: one they cannot see is treated as
    unknown, so "no correction" never tells them it exists elsewhere."""
    return (
        session.scalar(
            select(Tag.id).where(
                Tag.team_id == viewer.team_id,
                Tag.name_key == key,
                Tag.use_count > 0,
                tag_visible_to(viewer),
            )
        )
        is not None
    )


def closest_tags(session: Session, *, viewer: Viewer, typed: str, limit: int = 3) -> list[str]:
    """Tags on images `viewer` may see, spelled most like `typed`: pg_trgm similarity on
    Postgres (indexed), the standard library's sequence matching over that vocabulary on
    SQLite."""
    key = tag_key(typed)
    if not key:
        return []
    mine = (Tag.team_id == viewer.team_id, Tag.use_count > 0, tag_visible_to(viewer))
    if session.get_bind().dialect.name == "postgresql":
        similarity = func.similarity(Tag.name_key, key)
        return list(
            session.scalars(
                select(Tag.name)
                .where(*mine, Tag.name_key.op("%")(key))
                .order_by(similarity.desc(), Tag.use_count.desc())
                .limit(limit)
            )
        )
    vocabulary = dict(
        session.execute(
            select(Tag.name_key, Tag.name).where(*mine).order_by(Tag.use_count.desc()).limit(20_000)
        ).all()
    )
    return [vocabulary[k] for k in difflib.get_close_matches(key, vocabulary, n=limit, cutoff=0.6)]
