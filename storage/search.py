"""Search: a parsed `Query` (see `storage.query`, re-exported here) -> SQL per dialect, for
one viewer. The visibility filter is part of the WHERE clause, so paging and counts are over
what this person may see, never a post-filter; the same goes for the tag names offered as
suggestions or typo corrections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    case,
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

from storage.models import Category, Image, TagUse
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
from storage.visibility import (  # noqa: F401 - re-exported: callers search with these
    Viewer,
    closest_tags,
    escape_like,
    normalise_tag,
    tag_key,
    tag_use_seen_by,
    tag_visible_to,
    visible_to,
)

# --------------------------------------------------------------------------------------------
# Query -> SQL, per dialect. The visibility filter is part of the WHERE clause, so paging
# and counts are over what this person may see, never a post-filter.


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
        image_id = int(found.group(3))
        if image_id > 2**63 - 1:  # no row has it: a mangled cursor
            return None
        return cls(when, image_id, backwards=found.group(1) == "b")


@dataclass(frozen=True)
class Page:
    images: list[Image]
    total: int  # capped at COUNT_CAP + 1
    has_newer: bool
    has_older: bool
    used_tags: dict[str, str] = field(default_factory=dict)  # typed -> corrected tag
    category_names: dict[int, str] = field(default_factory=dict)  # of the page's images


COUNT_CAP = 100  # "100+ images": counting further costs more than it tells
# Walking the page index costs about this much per entry, relative to visiting one match
# found through the tag index (measured: 8,500 index entries in 2.2 ms, 19,000 GIN matches
# visited in 70 ms, both at 1M images).
WALK_ENTRY_COST = 0.25


@dataclass(frozen=True)
class _TagPlan:
    """How to answer a tag filter, from `tag_uses` (exact counts, unlike the planner's
    whole-table guesses: a tag used mostly where the viewer cannot look, or by another team,
    looked common, and walking the index newest first read all of it to find nothing)."""

    visible: int  # images the viewer may see with one of the tags (at most)
    sort_all: bool  # find every match through the tag index, then sort; else walk in order


def search_images(
    session: Session,
    query: Query,
    *,
    viewer: Viewer,
    cursor: Cursor | None = None,
    limit: int = 5,
    correct_tags: bool = True,
) -> Page:
    """One page of images matching `query` that `viewer` may see, newest first, and how many
    match (up to COUNT_CAP + 1).

    The first page and the count are one statement: the newest COUNT_CAP + 1 matching ids in
    page order. Counting in page order lets Postgres walk the covering index
    `ix_images_search_page` backwards and stop at the cap without touching the table, where
    an unordered count built a whole GIN bitmap first (10-25 ms for a word on 2 % of images;
    bench/README.md, "Where the time goes"). Only the page's own rows are then loaded."""
    conditions, corrected, plan = _conditions(session, query, viewer=viewer, correct=correct_tags)
    if plan is not None and plan.visible == 0:
        # Exact: no image the viewer may see carries any of these tags.
        return Page([], 0, False, False, corrected)
    sort_all = plan is not None and plan.sort_all
    ids = select(Image.id).where(*conditions)
    if cursor is None:
        found = _ordered_ids(session, ids, descending=True, limit=COUNT_CAP + 1, sort_all=sort_all)
        total = len(found)
    else:
        if cursor.backwards:
            newer = or_(
                Image.sort_at > cursor.sort_at,
                and_(Image.sort_at == cursor.sort_at, Image.id > cursor.image_id),
            )
            page_ids, descending = ids.where(newer), False
        else:
            page_ids = ids.where(_older_than(cursor.sort_at, cursor.image_id))
            descending = True
        found = _ordered_ids(
            session, page_ids, descending=descending, limit=limit + 1, sort_all=sort_all
        )
        counted = _ordered_ids_query(ids, descending=True, limit=COUNT_CAP + 1, sort_all=sort_all)
        total = int(session.scalar(select(func.count()).select_from(counted.subquery())) or 0)
    more = len(found) > limit
    found = found[:limit]
    # The page's rows and their category names in one statement.
    wanted = (
        select(Image, Category.name)
        .outerjoin(Category, Category.id == Image.category_id)
        .where(Image.id.in_(found))
    )
    loaded = session.execute(wanted).all() if found else []
    by_id = {image.id: image for image, _ in loaded}
    names = {image.category_id: name for image, name in loaded if name is not None}
    rows = [by_id[i] for i in found if i in by_id]
    if cursor is not None and cursor.backwards:
        rows.reverse()
        has_newer, has_older = more, True
    else:
        has_newer, has_older = cursor is not None, more
    return Page(rows, total, has_newer and bool(rows), has_older, corrected, names)


def _ordered_ids_query(
    ids: Select[tuple[int]], *, descending: bool, limit: int, sort_all: bool
) -> Select[tuple[int]]:
    """`ids` in page order, at most `limit`."""
    if sort_all:
        # OFFSET 0 keeps Postgres from planning the inner query for the outer ORDER BY and
        # LIMIT: it finds every match the cheapest way (a GIN bitmap for a rare tag), then
        # sorts them.
        inner = ids.add_columns(Image.sort_at).offset(0).subquery()
        source, keys = select(inner.c.id), (inner.c.sort_at, inner.c.id)
    else:
        source, keys = ids, (Image.sort_at, Image.id)
    return source.order_by(*(k.desc() if descending else k.asc() for k in keys)).limit(limit)


def _ordered_ids(
    session: Session, ids: Select[tuple[int]], *, descending: bool, limit: int, sort_all: bool
) -> list[int]:
    query = _ordered_ids_query(ids, descending=descending, limit=limit, sort_all=sort_all)
    return list(session.scalars(query))


@dataclass(frozen=True)
class _TagUses:
    visible: int  # images with the tag the viewer may see
    total: int  # the team's images with the tag
    images: int  # max(images.id): how many images there are, near enough


_NO_USES = _TagUses(0, 0, 0)


def _tag_counts(session: Session, viewer: Viewer, keys: list[str]) -> dict[str, _TagUses]:
    """Per tag key, from `tag_uses`, in one statement; keys on no image are left out."""
    seen = tag_use_seen_by(viewer)
    rows = session.execute(
        select(
            TagUse.name_key,
            func.sum(case((seen, TagUse.uses), else_=0)),
            func.sum(TagUse.uses),
            select(func.max(Image.id)).scalar_subquery(),
        )
        .where(TagUse.team_id == viewer.team_id, TagUse.name_key.in_(keys))
        .group_by(TagUse.name_key)
    ).all()
    return {key: _TagUses(int(v or 0), int(t or 0), int(n or 0)) for key, v, t, n in rows}


def _tag_plan(uses: list[_TagUses]) -> _TagPlan:
    """Walk the page index newest first, or find every match through the tag index and sort
    them: whichever visits fewer rows. Walking finds COUNT_CAP + 1 visible matches after
    about (COUNT_CAP + 1) * images / visible entries; the tag index visits every image of
    the team with the tags, seen or not (an image with two of them counts twice: a bound)."""
    visible = sum(u.visible for u in uses)
    if not visible:
        return _TagPlan(0, sort_all=False)
    images = max(u.images for u in uses)
    walk = (COUNT_CAP + 1) * images / visible * WALK_ENTRY_COST
    return _TagPlan(visible, sort_all=sum(u.total for u in uses) < walk)


def _older_than(sort_at: datetime, image_id: int) -> ColumnElement[bool]:
    return or_(Image.sort_at < sort_at, and_(Image.sort_at == sort_at, Image.id < image_id))


def _conditions(
    session: Session, query: Query, *, viewer: Viewer, correct: bool
) -> tuple[list[ColumnElement[bool]], dict[str, str], _TagPlan | None]:
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
    keys: list[str] = []
    plan = None
    if query.tags:
        counts = _tag_counts(session, viewer, [tag_key(t) for t in query.tags])
        for tag in query.tags:
            key = tag_key(tag)
            # A tag on no image the viewer may see is unknown to them: corrected if it can
            # be, never admitted to exist elsewhere.
            if correct and not counts.get(key, _NO_USES).visible:
                better = closest_tags(session, viewer=viewer, typed=tag, limit=1)
                if better:
                    corrected[tag] = better[0]
                    key = tag_key(better[0])
            keys.append(key)
        if any(k not in counts for k in keys):
            counts.update(_tag_counts(session, viewer, [k for k in keys if k not in counts]))
        plan = _tag_plan([counts.get(k, _NO_USES) for k in set(keys)])
        conditions.append(_has_any_tag(keys, postgres=postgres))
        if plan.sort_all and postgres:
            # Only the matches the viewer may see, straight from the index: a tag mostly
            # used where they cannot look otherwise visits thousands of rows for a few.
            conditions.append(_audience_has_any(viewer, keys))
        # SQLite: a tag on few images is found through the full-text index, by id.
        narrow = plan.sort_all and not postgres
        if narrow:
            conditions[-1] = _has_any_tag(keys, postgres=postgres, narrow=True)
            conditions[0] = visible_to(viewer, team_unindexed=True)
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
    return conditions, corrected, plan


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


def _audience_has_any(viewer: Viewer, keys: list[str]) -> ColumnElement[bool]:
    """Postgres: the image has one of the tags and the viewer may see it, through the GIN
    index `ix_images_audience_tags` on `imglib_audience_tags(...)` (migration 0004), whose
    elements are `<channel>:<tag>` for every image and `public:<tag>` for public ones."""
    wanted = [f"{channel}:{key}" for channel in sorted(viewer.channels) for key in keys]
    if not viewer.is_guest:
        wanted += [f"public:{key}" for key in keys]
    audience = func.imglib_audience_tags(Image.channel_private, Image.channel_id, Image.tag_keys)
    return audience.op("&&")(cast(array(wanted), ARRAY(Text)))


def _has_any_tag(keys: list[str], *, postgres: bool, narrow: bool = False) -> ColumnElement[bool]:
    if postgres:
        return Image.tag_keys.op("&&")(cast(array(keys), ARRAY(Text)))  # GIN
    each = func.json_each(Image.tag_keys).table_valued("value")
    exact = exists(select(1).select_from(each).where(each.c.value.in_(keys)))
    if not narrow:
        return exact
    # SQLite has no index on JSON arrays: the FTS5 index of `tag_keys` narrows the
    # candidates first (every tag's words appear as a phrase there), and the exact check
    # above runs on those only. Only for ASCII keys with a word in them: the JSON text holds
    # other letters as \u escapes (\u00e9 for é), which FTS5 cannot match.
    phrases = [_fts_terms(key) for key in keys]
    if not all(key.isascii() for key in keys) or not all(phrases):
        return exact
    fts = "tag_keys : (" + " OR ".join('"' + " ".join(terms) + '"' for terms in phrases) + ")"
    candidates = text_clause(
        "SELECT rowid FROM images_fts WHERE images_fts MATCH :tags_fts"
    ).bindparams(bindparam("tags_fts", fts, unique=True))
    return and_(Image.id.in_(candidates), exact)


def _category_ids(team_id: str, name: str, *, prefix: bool) -> Select[tuple[int]]:
    key = tag_key(name)
    wanted = (
        Category.name_key.like(escape_like(key) + "%", escape="\\")
        if prefix
        else Category.name_key == key
    )
    return select(Category.id).where(Category.team_id == team_id, wanted)
