"""prompts told at least once: a stamp after the telling, beside the claim before it

The poster's prompt was claimed (`post_prompts.prompted_at`) and then sent: a process
killed in between (kill -9, a crashed dyno) left the post claimed and untold for good. Now
the teller stamps it told (`told_at`), and the worker tells posts whose claim ran out
unstamped. Posts already claimed count as told.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("post_prompts", sa.Column("told_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE post_prompts SET told_at = prompted_at WHERE prompted_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("post_prompts") as batch:
        batch.drop_column("told_at")
