"""The search query language: a pure parser (`parse`) that never raises.

    CMO "launch party" tag:keynote category:Marketing #Events by:@ana in:#shoots
    date:2026-11 date:2026-11-03 after:2026-01-01 before:2026-12-31 status:approved -draft

Free words and "quoted phrases" must all match (title, tags, description, category or the
uploader's name); `-word` excludes. Filters narrow: several values of the same filter mean
"any of them". Whatever cannot be understood is kept as a `problem` to show the person,
never silently dropped.
"""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

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

from storage.models import Category, Image, Tag

MAX_QUERY_CHARS = 2000
MAX_TERMS = 40
MAX_TERM_CHARS = 100
STATUSES = ("approved", "pending", "rejected", "draft", "archived")
DEFAULT_STATUSES = ("approved", "pending", "draft")
FILTERS = ("tag", "category", "by", "in", "date", "after", "before", "status")

USER_REF = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
CHANNEL_REF = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
TOKEN = re.compile(
    r"""
    (?P<neg>-)?
    (?:(?P<name>[A-Za-z][A-Za-z_]{0,15}):(?!//))?   # a filter name (not a URL's scheme)
    (?:
        "(?P<quoted>[^"]*)"?                        # a phrase; an unclosed quote runs to the end
      | (?P<bare>(?:<[^>\s]*>|[^\s"])+)             # a word, or a Slack <@U..|name> reference
    )?
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Query:
    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    uploaders: tuple[str, ...] = ()  # Slack user ids
    channels: tuple[str, ...] = ()  # Slack channel ids
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # inclusive
    statuses: tuple[str, ...] = ()  # empty: DEFAULT_STATUSES
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def effective_statuses(self) -> tuple[str, ...]:
        return self.statuses or DEFAULT_STATUSES

    @property
    def is_empty(self) -> bool:
        """Nothing to search for (only problems, or nothing at all)."""
        return not (
            self.words
            or self.phrases
            or self.excluded
            or self.tags
            or self.categories
            or self.uploaders
            or self.channels
            or self.date_from
            or self.date_to
            or self.statuses
        )

    def describe(self) -> str:
        """The query as understood, in the query language (user text is not escaped here)."""
        parts = [*self.words, *(f'"{p}"' for p in self.phrases)]
        parts += [f"-{w}" for w in self.excluded]
        parts += [f"tag:{_quote(t)}" for t in self.tags]
        parts += [f"category:{_quote(c)}" for c in self.categories]
        parts += [f"by:<@{u}>" for u in self.uploaders]
        parts += [f"in:<#{c}>" for c in self.channels]
        if self.date_from and self.date_to and self.date_from == self.date_to:
            parts.append(f"date:{self.date_from.isoformat()}")
        else:
            if self.date_from:
                parts.append(f"from {self.date_from.isoformat()}")
            if self.date_to:
                parts.append(f"until {self.date_to.isoformat()}")
        if self.statuses:
            parts += [f"status:{s}" for s in self.statuses]
        return " ".join(parts)


def _quote(value: str) -> str:
    return f'"{value}"' if " " in value else value


@dataclass
class _Parsed:
    lists: dict[str, list[str]] = field(
        default_factory=lambda: {
            k: []
            for k in (
                "words",
                "phrases",
                "excluded",
                "tags",
                "categories",
                "uploaders",
                "channels",
                "statuses",
            )
        }
    )
    date_from: date | None = None
    date_to: date | None = None
    problems: list[str] = field(default_factory=list)


def parse(text: str) -> Query:
    """Parse a query. Never raises: what it cannot use becomes a problem to explain."""
    acc = _Parsed()
    if not isinstance(text, str):
        return Query(problems=("The search was not text.",))
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\x00", "")
    if len(text) > MAX_QUERY_CHARS:
        acc.problems.append(f"Only the first {MAX_QUERY_CHARS} characters were searched.")
        text = text[:MAX_QUERY_CHARS]
    terms = 0
    for match in TOKEN.finditer(text):
        if not match.group(0).strip():
            continue
        terms += 1
        if terms > MAX_TERMS:
            acc.problems.append(f"Only the first {MAX_TERMS} terms were used.")
            break
        quoted = match.group("quoted")
        value = (quoted if quoted is not None else match.group("bare") or "").strip()
        value = " ".join(value.split())[:MAX_TERM_CHARS]
        negative = bool(match.group("neg"))
        name = (match.group("name") or "").lower()
        if name:
            _filter(acc, name, value, negative=negative)
        elif value:
            _word(acc, value, quoted=quoted is not None, negative=negative)
    query = Query(
        **{k: tuple(dict.fromkeys(v)) for k, v in acc.lists.items()},  # type: ignore[arg-type]
        date_from=acc.date_from,
        date_to=acc.date_to,
        problems=tuple(dict.fromkeys(acc.problems)),
    )
    if acc.date_from and acc.date_to and acc.date_from > acc.date_to:
        query = replace(query, problems=(*query.problems, "Those dates leave no days in between."))
    return query


def _word(acc: _Parsed, value: str, *, quoted: bool, negative: bool) -> None:
    if value.startswith("#") and len(value) > 1 and not quoted and not negative:
        acc.lists["categories"].append(value[1:])
    elif negative:
        acc.lists["excluded"].append(value)
    elif quoted:
        acc.lists["phrases"].append(value)
    else:
        acc.lists["words"].append(value)


def _filter(acc: _Parsed, name: str, value: str, *, negative: bool) -> None:
    problems = acc.problems
    if name not in FILTERS:
        known = ", ".join(f"{f}:" for f in FILTERS)
        problems.append(f"I don't know the filter \u201c{name}:\u201d. I know {known}.")
    elif not value:
        problems.append(f"\u201c{name}:\u201d needs something after it, e.g. {_example(name)}.")
    elif negative:
        problems.append(f"\u201c-{name}:\u201d is not supported; only words can be excluded.")
    elif name == "tag":
        acc.lists["tags"].append(value)
    elif name == "category":
        acc.lists["categories"].append(value.lstrip("#"))
    elif name == "by":
        found = USER_REF.match(value)
        if found:
            acc.lists["uploaders"].append(found.group(1))
        else:
            problems.append(
                f"I can't tell who \u201c{value}\u201d is: pick the person from the list as "
                "you type by:@"
            )
    elif name == "in":
        found = CHANNEL_REF.match(value)
        if found:
            acc.lists["channels"].append(found.group(1))
        else:
            problems.append(
                f"I can't find the channel \u201c{value}\u201d: pick it from the list as you "
                "type in:#"
            )
    elif name == "status":
        if value.lower() in STATUSES:
            acc.lists["statuses"].append(value.lower())
        else:
            problems.append(
                f"There is no status \u201c{value}\u201d; use one of {', '.join(STATUSES)}."
            )
    else:
        _date_filter(acc, name, value)


def _date_filter(acc: _Parsed, name: str, value: str) -> None:
    span = parse_date(value)
    if span is None:
        acc.problems.append(
            f"\u201c{value}\u201d is not a date I understand; write 2026-11 or 2026-11-03."
        )
        return
    start, end = span
    if name == "after":
        start, end = end + timedelta(days=1), None  # type: ignore[assignment]
    elif name == "before":
        start, end = None, start - timedelta(days=1)  # type: ignore[assignment]
    if start is not None:
        acc.date_from = max(acc.date_from, start) if acc.date_from else start
    if end is not None:
        acc.date_to = min(acc.date_to, end) if acc.date_to else end


def parse_date(text: str) -> tuple[date, date] | None:
    """`2026`, `2026-11` or `2026-11-03` -> the first and last day they cover."""
    found = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", text.strip())
    if not found:
        return None
    try:
        year = int(found.group(1))
        if not 1826 <= year <= 9999:
            return None
        if found.group(3):
            day = date(year, int(found.group(2)), int(found.group(3)))
            return day, day
        if found.group(2):
            month = int(found.group(2))
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1), date(year, month, last)
    except ValueError:
        return None
    return date(year, 1, 1), date(year, 12, 31)


def _example(name: str) -> str:
    return {
        "tag": "tag:CMO",
        "category": "category:Marketing",
        "by": "by:@ana",
        "in": "in:#marketing-shoots",
        "date": "date:2026-11",
        "after": "after:2026-01-01",
        "before": "before:2026-12-31",
        "status": "status:approved",
    }[name]


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
            if correct and not _tag_exists(session, team, key):
                better = closest_tags(session, team_id=team, typed=tag, limit=1)
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


def _tag_exists(session: Session, team_id: str, key: str) -> bool:
    return (
        session.scalar(
            select(Tag.id).where(Tag.team_id == team_id, Tag.name_key == key, Tag.use_count > 0)
        )
        is not None
    )


def closest_tags(session: Session, *, team_id: str, typed: str, limit: int = 3) -> list[str]:
    """Known tags spelled most like `typed`: pg_trgm similarity on Postgres (indexed), the
    standard library's sequence matching over the team's vocabulary on SQLite."""
    key = tag_key(typed)
    if not key:
        return []
    if session.get_bind().dialect.name == "postgresql":
        similarity = func.similarity(Tag.name_key, key)
        return list(
            session.scalars(
                select(Tag.name)
                .where(Tag.team_id == team_id, Tag.use_count > 0, Tag.name_key.op("%")(key))
                .order_by(similarity.desc(), Tag.use_count.desc())
                .limit(limit)
            )
        )
    vocabulary = dict(
        session.execute(
            select(Tag.name_key, Tag.name)
            .where(Tag.team_id == team_id, Tag.use_count > 0)
            .order_by(Tag.use_count.desc())
            .limit(20_000)
        ).all()
    )
    return [vocabulary[k] for k in difflib.get_close_matches(key, vocabulary, n=limit, cutoff=0.6)]
