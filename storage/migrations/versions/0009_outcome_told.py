"""approval outcomes told once, never lost: a claim and a stamp on each settled request

The line that tells the requester how their request ended was sent by whichever process
settled it, after the commit: a process killed in between (kill -9, a crashed dyno) left it
untold for good. Now the teller claims it (`outcome_claimed_until`) and stamps it
(`outcome_told_at`), and the worker tells the ones left untold. Requests already settled
count as told.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("outcome_claimed_until", "outcome_told_at"):
        op.add_column(
            "approval_requests", sa.Column(column, sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE approval_requests SET outcome_told_at = COALESCE(decided_at, created_at) "
        "WHERE state <> 'open'"
    )


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("outcome_told_at")
        batch.drop_column("outcome_claimed_until")
