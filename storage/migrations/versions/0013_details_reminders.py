"""the worker's look for details reminders reads the images never detailed nor reminded

Every 5 minutes the worker looks for stored images still without details some hours after
they were posted, to remind their posters once. Nothing indexed that condition, so each
look read the whole library: 103 ms at 300,000 images, all of them detailed. A partial
index holds only the images never detailed nor reminded about, in the order the look takes
them.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

DETAILS_UNREMINDED = "details_added_at IS NULL AND details_reminded_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_images_details_unreminded",
        "images",
        ["id"],
        postgresql_where=sa.text(DETAILS_UNREMINDED),
        sqlite_where=sa.text(DETAILS_UNREMINDED),
    )


def downgrade() -> None:
    op.drop_index("ix_images_details_unreminded", table_name="images")
