"""visible tags and a covering index for search pages

`ix_images_search_page` (Postgres): (team_id, sort_at, id) with every column a search
condition reads included, for stored images, so a search's page and its capped count are one
backward index-only scan that stops at the cap (bench/README.md, "Where the time goes").
`ix_images_audience_tags` (Postgres): GIN over `<channel>:<tag>` / `public:<tag>` strings, so
a tag used mostly where the viewer cannot look is found among what they may see only.

SQLite: `ix_images_search_page_lite`, the same columns as the key (no INCLUDE there, and no
tsvector); the FTS5 table gains `tag_keys` (the casefolded tags), so a `tag:` filter can narrow
its candidates through the full-text index before checking the tags exactly, instead of
reading every image's JSON (SQLite has no index on JSON arrays).

`tag_uses` counts the images carrying each tag per (channel, private) pair, so tag
suggestions and typo corrections can offer only tags on images the viewer may see with an
index probe per tag. Triggers on `images` keep it right whoever writes the images (the app,
a migration, an admin in psql); it is filled from the existing images here.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A copy, not an import of storage.models: a migration must not change when the models do.
SEARCH_PAGE_INCLUDE = [
    "channel_private",
    "channel_id",
    "category_id",
    "uploader_id",
    "status",
    "tag_keys",
    "search_vector",
]

# Only changes that move an image's tags between counts fire the update trigger.
WATCHED = "tag_keys, channel_id, channel_private, team_id"

PG_FUNCTION = """
CREATE FUNCTION imglib_tag_uses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE tag_uses u SET uses = u.uses - 1
        WHERE u.team_id = OLD.team_id AND u.channel_id = OLD.channel_id
          AND u.channel_private = OLD.channel_private
          AND u.name_key IN (SELECT unnest(OLD.tag_keys));
        DELETE FROM tag_uses u
        WHERE u.team_id = OLD.team_id AND u.channel_id = OLD.channel_id
          AND u.channel_private = OLD.channel_private
          AND u.name_key IN (SELECT unnest(OLD.tag_keys)) AND u.uses <= 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- In key order: two transactions adding the same tags lock their rows in one order.
        INSERT INTO tag_uses (team_id, name_key, channel_id, channel_private, uses)
        SELECT NEW.team_id, k, NEW.channel_id, NEW.channel_private, 1
        FROM (SELECT DISTINCT unnest(NEW.tag_keys) AS k) AS keys ORDER BY k
        ON CONFLICT (team_id, name_key, channel_id, channel_private)
        DO UPDATE SET uses = tag_uses.uses + 1;
    END IF;
    RETURN NULL;
END
$$
"""

PG_TRIGGERS = [
    "CREATE TRIGGER images_tag_uses_insert_delete AFTER INSERT OR DELETE ON images "
    "FOR EACH ROW EXECUTE FUNCTION imglib_tag_uses()",
    f"CREATE TRIGGER images_tag_uses_update AFTER UPDATE OF {WATCHED} ON images "
    "FOR EACH ROW WHEN (OLD.tag_keys IS DISTINCT FROM NEW.tag_keys "
    "OR OLD.channel_id IS DISTINCT FROM NEW.channel_id "
    "OR OLD.channel_private IS DISTINCT FROM NEW.channel_private "
    "OR OLD.team_id IS DISTINCT FROM NEW.team_id) "
    "EXECUTE FUNCTION imglib_tag_uses()",
]

# Who may see an image with which tag, as GIN-indexable text: `<channel>:<tag>` for every
# image, and `public:<tag>` too for one from a public channel (Slack ids hold no colon).
PG_AUDIENCE = """
CREATE FUNCTION imglib_audience_tags(boolean, text, text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(audience), '{}') FROM (
        SELECT $2 || ':' || k AS audience FROM unnest($3) AS k
        UNION ALL
        SELECT 'public:' || k FROM unnest($3) AS k WHERE NOT $1
    ) AS each_audience
$$
"""
PG_AUDIENCE_INDEX = (
    "CREATE INDEX ix_images_audience_tags ON images USING gin "
    "(imglib_audience_tags(channel_private, channel_id, tag_keys)) "
    "WHERE storage_key IS NOT NULL"
)

PG_FILL = """
INSERT INTO tag_uses (team_id, name_key, channel_id, channel_private, uses)
SELECT team_id, k, channel_id, channel_private, count(*)
FROM images, LATERAL (SELECT DISTINCT unnest(tag_keys) AS k) AS keys
GROUP BY team_id, k, channel_id, channel_private
"""

_SQLITE_ADD = """
    INSERT INTO tag_uses (team_id, name_key, channel_id, channel_private, uses)
    SELECT DISTINCT new.team_id, value, new.channel_id, new.channel_private, 1
    FROM json_each(new.tag_keys) WHERE true
    ON CONFLICT (team_id, name_key, channel_id, channel_private) DO UPDATE SET uses = uses + 1;
"""
_SQLITE_REMOVE = """
    UPDATE tag_uses SET uses = uses - 1
    WHERE team_id = old.team_id AND channel_id = old.channel_id
      AND channel_private = old.channel_private
      AND name_key IN (SELECT value FROM json_each(old.tag_keys));
    DELETE FROM tag_uses
    WHERE team_id = old.team_id AND channel_id = old.channel_id
      AND channel_private = old.channel_private
      AND name_key IN (SELECT value FROM json_each(old.tag_keys)) AND uses <= 0;
"""
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER images_tag_uses_insert AFTER INSERT ON images BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER images_tag_uses_delete AFTER DELETE ON images BEGIN {_SQLITE_REMOVE} END",
    f"CREATE TRIGGER images_tag_uses_update AFTER UPDATE OF {WATCHED} ON images "
    f"BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END",
]
_FTS_COLUMNS = {
    "0003": "title, tags, description, uploader_name",
    "0004": "title, tags, description, uploader_name, tag_keys",
}


def _sqlite_fts(revision: str) -> list[str]:
    """The FTS5 table and its sync triggers as of `revision` (0003's, with or without
    tag_keys)."""
    columns = _FTS_COLUMNS[revision]
    new = ", ".join(f"new.{c.strip()}" for c in columns.split(","))
    old = ", ".join(f"old.{c.strip()}" for c in columns.split(","))
    return [
        f"""CREATE VIRTUAL TABLE images_fts USING fts5(
            {columns},
            content='images', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        )""",
        f"""CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
            INSERT INTO images_fts(rowid, {columns}) VALUES (new.id, {new});
        END""",
        f"""CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
            INSERT INTO images_fts(images_fts, rowid, {columns})
            VALUES ('delete', old.id, {old});
        END""",
        f"""CREATE TRIGGER images_fts_update AFTER UPDATE OF {columns} ON images BEGIN
            INSERT INTO images_fts(images_fts, rowid, {columns})
            VALUES ('delete', old.id, {old});
            INSERT INTO images_fts(rowid, {columns}) VALUES (new.id, {new});
        END""",
        "INSERT INTO images_fts(images_fts) VALUES ('rebuild')",
    ]


def _drop_sqlite_fts() -> None:
    for name in ("images_fts_insert", "images_fts_delete", "images_fts_update"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE images_fts")


SQLITE_FILL = """
INSERT INTO tag_uses (team_id, name_key, channel_id, channel_private, uses)
SELECT images.team_id, keys.value, images.channel_id, images.channel_private,
       count(DISTINCT images.id)
FROM images, json_each(images.tag_keys) AS keys
GROUP BY images.team_id, keys.value, images.channel_id, images.channel_private
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "tag_uses",
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("channel_private", sa.Boolean(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "team_id", "name_key", "channel_id", "channel_private", name=op.f("pk_tag_uses")
        ),
    )
    if dialect == "postgresql":
        op.create_index(
            "ix_images_search_page",
            "images",
            ["team_id", "sort_at", "id"],
            postgresql_include=SEARCH_PAGE_INCLUDE,
            postgresql_where=sa.text("storage_key IS NOT NULL"),
        )
        op.execute(PG_AUDIENCE)
        op.execute(PG_AUDIENCE_INDEX)
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
        op.execute(PG_FILL)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
        op.execute(SQLITE_FILL)
        op.create_index(
            "ix_images_search_page_lite",
            "images",
            ["team_id", "sort_at", "id", *SEARCH_PAGE_INCLUDE[:-1]],  # no search_vector here
            sqlite_where=sa.text("storage_key IS NOT NULL"),
        )
        _drop_sqlite_fts()
        for statement in _sqlite_fts("0004"):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER images_tag_uses_update ON images")
        op.execute("DROP TRIGGER images_tag_uses_insert_delete ON images")
        op.execute("DROP FUNCTION imglib_tag_uses()")
        op.execute("DROP INDEX ix_images_audience_tags")
        op.execute("DROP FUNCTION imglib_audience_tags(boolean, text, text[])")
        op.drop_index("ix_images_search_page", table_name="images")
    else:
        for name in ("images_tag_uses_insert", "images_tag_uses_delete", "images_tag_uses_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.drop_index("ix_images_search_page_lite", table_name="images")
        _drop_sqlite_fts()
        for statement in _sqlite_fts("0003"):
            op.execute(statement)
    op.drop_table("tag_uses")
