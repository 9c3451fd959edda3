"""search: visibility and ordering columns, full-text indexes per dialect

Postgres: a weighted tsvector generated column with a GIN index (tags go through an IMMUTABLE
wrapper, as array_to_string is only STABLE), casefolded tags as a GIN-indexed text[], and
pg_trgm on the tag vocabulary for typo-tolerant tags. SQLite: an external-content FTS5 table
kept in sync by triggers.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TAG_LIST = postgresql.ARRAY(sa.Text()).with_variant(sa.JSON(), "sqlite")

PG_SEARCH_VECTOR = """
    setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('simple'::regconfig, imglib_tags_text(tags)), 'A') ||
    setweight(to_tsvector('simple'::regconfig, coalesce(uploader_name, '')), 'B') ||
    setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'C')
"""

SQLITE_FTS = [
    """CREATE VIRTUAL TABLE images_fts USING fts5(
        title, tags, description, uploader_name,
        content='images', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO images_fts(rowid, title, tags, description, uploader_name)
        VALUES (new.id, new.title, new.tags, new.description, new.uploader_name);
    END""",
    """CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        INSERT INTO images_fts(images_fts, rowid, title, tags, description, uploader_name)
        VALUES ('delete', old.id, old.title, old.tags, old.description, old.uploader_name);
    END""",
    """CREATE TRIGGER images_fts_update AFTER UPDATE OF title, tags, description, uploader_name
        ON images BEGIN
        INSERT INTO images_fts(images_fts, rowid, title, tags, description, uploader_name)
        VALUES ('delete', old.id, old.title, old.tags, old.description, old.uploader_name);
        INSERT INTO images_fts(rowid, title, tags, description, uploader_name)
        VALUES (new.id, new.title, new.tags, new.description, new.uploader_name);
    END""",
    "INSERT INTO images_fts(images_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("images") as batch:
        batch.add_column(
            sa.Column("channel_private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("uploader_name", sa.String(255), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("permalink", sa.String(1024), nullable=True))
        batch.add_column(
            sa.Column(
                "tag_keys",
                TAG_LIST,
                nullable=False,
                server_default=sa.text("'{}'") if dialect == "postgresql" else "[]",
            )
        )
        batch.add_column(sa.Column("sort_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "channels",
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("is_private", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", name=op.f("pk_channels")),
    )
    op.execute(
        "INSERT INTO channels (team_id, channel_id, is_private, created_at) "
        "SELECT team_id, channel_id, false, min(created_at) FROM images "
        "GROUP BY team_id, channel_id"
    )
    op.execute("UPDATE images SET sort_at = coalesce(shoot_date, created_at)")
    if dialect == "postgresql":
        op.execute(
            "UPDATE images SET tag_keys = "
            "(SELECT coalesce(array_agg(lower(t)), '{}') FROM unnest(tags) AS t)"
        )
    else:
        op.execute(
            "UPDATE images SET tag_keys = "
            "(SELECT json_group_array(lower(value)) FROM json_each(images.tags))"
        )
    with op.batch_alter_table("images") as batch:
        batch.alter_column("sort_at", nullable=False)
        batch.create_index("ix_images_team_sort", ["team_id", "sort_at", "id"])
        batch.create_index("ix_images_team_category_sort", ["team_id", "category_id", "sort_at"])

    if dialect == "postgresql":
        op.drop_index("ix_images_tags_gin", table_name="images")
        op.create_index("ix_images_tag_keys_gin", "images", ["tag_keys"], postgresql_using="gin")
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_tags_name_trgm",
            "tags",
            ["name_key"],
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        )
        op.execute(
            "CREATE FUNCTION imglib_tags_text(text[]) RETURNS text "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
            "AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$"
        )
        op.execute(
            f"ALTER TABLE images ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({PG_SEARCH_VECTOR}) STORED"
        )
        op.create_index(
            "ix_images_search_vector", "images", ["search_vector"], postgresql_using="gin"
        )
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.drop_index("ix_images_search_vector", table_name="images")
        op.execute("ALTER TABLE images DROP COLUMN search_vector")
        op.execute("DROP FUNCTION imglib_tags_text(text[])")
        op.drop_index("ix_tags_name_trgm", table_name="tags")
        op.drop_index("ix_images_tag_keys_gin", table_name="images")
        op.create_index("ix_images_tags_gin", "images", ["tags"], postgresql_using="gin")
    else:
        for name in ("images_fts_insert", "images_fts_delete", "images_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE images_fts")
    op.drop_table("channels")
    with op.batch_alter_table("images") as batch:
        batch.drop_index("ix_images_team_category_sort")
        batch.drop_index("ix_images_team_sort")
        for column in ("sort_at", "tag_keys", "permalink", "uploader_name", "channel_private"):
            batch.drop_column(column)
