"""channels: fail closed until checked

Migration 0003 recorded every conversation it found in `images` as public, so a database
that existed before it showed private channels' images to everyone. Unknown is private now:
every known channel (and its images) is private until the worker has asked Slack
(`conversations.info`) and stamped `checked_at`.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("channels", sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE channels SET is_private = true")
    op.execute("UPDATE images SET channel_private = true WHERE channel_private = false")


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("checked_at")
