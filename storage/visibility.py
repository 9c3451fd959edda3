"""Who may see which image, and which tags: the one visibility rule, as SQL, that search,
suggestions, duplicates and every lookup by id share. Also what makes two tags the same,
and the tags a viewer may see spelled most like what they typed."""

from __future__ import annotations

import difflib
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from storage.models import Image, Tag, TagUse


@dataclass(frozen=True)
class Viewer:
    """Who is searching. `channels`: the conversations they belong to among those the
    library has images from (a guest sees only these; a member also sees public ones)."""

    team_id: str
    is_guest: bool
    channels: frozenset[str]


def visible_to(viewer: Viewer, *, team_unindexed: bool = False) -> ColumnElement[bool]:
    """The images `viewer` may see: their team's, from public channels (not for guests) or
    from conversations they are in. `team_unindexed` (SQLite): compare the team with a unary
    plus, which keeps SQLite from walking a (team_id, ...) index so it looks up the few
    candidate rows by id instead."""
    channels = sorted(viewer.channels) if viewer.channels else None
    return _visible(
        viewer.team_id, channels, is_guest=viewer.is_guest, team_unindexed=team_unindexed
    )


def visible_to_any(
    *, is_guest: bool, has_channels: bool, team_unindexed: bool = False
) -> ColumnElement[bool]:
    """The rule of `visible_to` with the viewer left as bind parameters (`viewer_params`),
    for a statement built once and run for every viewer of that kind: building and keying
    a statement costs more Python than running it."""
    channels = bindparam("viewer_channels", expanding=True) if has_channels else None
    return _visible(
        bindparam("viewer_team"), channels, is_guest=is_guest, team_unindexed=team_unindexed
    )


def viewer_params(viewer: Viewer) -> dict[str, Any]:
    """What `visible_to_any(is_guest=viewer.is_guest, has_channels=bool(viewer.channels))`
    binds for `viewer`."""
    params: dict[str, Any] = {"viewer_team": viewer.team_id}
    if viewer.channels:
        params["viewer_channels"] = sorted(viewer.channels)
    return params


def _visible(
    team_id: Any, channels: Any, *, is_guest: bool, team_unindexed: bool
) -> ColumnElement[bool]:
    members_of = Image.channel_id.in_(channels) if channels is not None else false()
    team = literal_column("+images.team_id") if team_unindexed else Image.team_id
    if is_guest:
        return and_(team == team_id, members_of)
    return and_(team == team_id, or_(Image.channel_private.is_(False), members_of))


def tag_visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The `Tag` is on at least one image `viewer` may see (the rule of `visible_to`, applied
    to the per-conversation counts in `tag_uses`): a tag used only in a private channel is
    never suggested, corrected to or even admitted to exist outside it."""
    return exists().where(
        TagUse.team_id == Tag.team_id, TagUse.name_key == Tag.name_key, tag_use_seen_by(viewer)
    )


def tag_use_seen_by(viewer: Viewer) -> ColumnElement[bool]:
    """The `tag_uses` rows of images `viewer` may see (the rule of `visible_to`)."""
    members_of = TagUse.channel_id.in_(sorted(viewer.channels)) if viewer.channels else false()
    if viewer.is_guest:
        return members_of
    return or_(TagUse.channel_private.is_(False), members_of)


def normalise_tag(raw: str) -> str:
    """Trim, collapse inner white space, NFC-normalise. Case is kept as typed."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def tag_key(tag: str) -> str:
    """What makes two tags the same tag: case-insensitive (casefold) comparison."""
    return normalise_tag(tag).casefold()


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (with `escape="\\\\"`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    # SQLite has no trigram index: narrow the vocabulary in SQL to what sequence matching
    # could accept (its ratio 2M / (a + b) >= 0.6 bounds the length; a close spelling shares
    # three letters in a row with the typed one, or two for a word under five letters), so
    # difflib and the visibility probe see dozens of tags, not the team's 20,000. A typo
    # that keeps no such run ("kyenoet" for "keynote") is not corrected on SQLite; Postgres
    # corrects it.
    run = 3 if len(key) >= 5 else 2
    pairs = sorted({key[i : i + run] for i in range(len(key) - run + 1)})
    shares = or_(*(func.instr(Tag.name_key, p) > 0 for p in pairs))
    length = func.length(Tag.name_key).between(int(len(key) * 0.42), math.ceil(len(key) * 2.34))
    vocabulary = dict(
        session.execute(
            select(Tag.name_key, Tag.name)
            .where(*mine[:2], length, shares if pairs else Tag.name_key == key, mine[2])
            .order_by(Tag.use_count.desc())
            .limit(20_000)
        ).all()
    )
    return [vocabulary[k] for k in difflib.get_close_matches(key, vocabulary, n=limit, cutoff=0.6)]
