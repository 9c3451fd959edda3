"""the worker's look for posts never told reads the last hour's jobs, not the library

Every 15 seconds the worker looks for posts whose images all settled a while ago but whose
poster was never prompted (the process that settled the last one died before telling). It
joined every image to its job and its post's prompt and kept the posts of the last hour:
a whole-library scan, 145 ms at 300,000 images on two parallel workers, growing with the
library and sharing the database with the acks. An index on the jobs' updated_at finds
the last hour's posts first.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ingest_jobs_updated", "ingest_jobs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_jobs_updated", table_name="ingest_jobs")
