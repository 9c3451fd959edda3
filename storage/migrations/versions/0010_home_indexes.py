"""a person's App Home lists from their own images, never a walk of the team's

The Home tab shows a person's newest stored images still missing details (15) and their
newest ones with details (20). Both were read through (team_id, uploader_id, created_at),
or the team-wide created_at index, filtering on details_added_at as they went: someone
with thousands of images and none of one kind walked all of them (or all of the team's)
on every refresh, 26 ms at 50,000 images and growing with the library. Two partial
indexes, one per list, hold exactly the rows each list reads, in its order.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HOME_INDEXES = {
    "ix_images_home_missing": "storage_key IS NOT NULL AND details_added_at IS NULL",
    "ix_images_home_recent": "storage_key IS NOT NULL AND details_added_at IS NOT NULL",
}


def upgrade() -> None:
    op.drop_index("ix_images_team_uploader_created", table_name="images")
    for name, where in HOME_INDEXES.items():
        op.create_index(
            name,
            "images",
            ["team_id", "uploader_id", "created_at", "id"],
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def downgrade() -> None:
    for name in HOME_INDEXES:
        op.drop_index(name, table_name="images")
    op.create_index(
        "ix_images_team_uploader_created", "images", ["team_id", "uploader_id", "created_at"]
    )
