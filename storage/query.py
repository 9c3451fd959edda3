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
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

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


# No photograph is older: the earliest year a shoot date, an EXIF date or a search may name.
FIRST_PHOTO_YEAR = 1826


def parse_date(text: str) -> tuple[date, date] | None:
    """`2026`, `2026-11` or `2026-11-03` -> the first and last day they cover."""
    found = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", text.strip())
    if not found:
        return None
    try:
        year = int(found.group(1))
        if not FIRST_PHOTO_YEAR <= year <= 9999:
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
