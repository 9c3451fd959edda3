"""installs in any workspace: slack_sdk's installation and OAuth state tables, and the
library's record of which workspaces it is installed in

Revision ID: 0008
Revises: 0007

The three `slack_*` tables belong to slack_sdk's SQLAlchemy stores (Bolt's OAuth flow reads
and writes them); they are created here, as those stores define them in slack-sdk 3.48, so
that every table of the deployment comes from the migrations and the release phase.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.String(32)
NAME = sa.String(200)
TOKEN = sa.String(200)
SCOPES = sa.String(1000)


def _bot_columns() -> list[sa.Column[object]]:
    """The columns slack_sdk's `slack_bots` and `slack_installations` share."""
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("enterprise_id", ID),
        sa.Column("enterprise_name", NAME),
        sa.Column("team_id", ID),
        sa.Column("team_name", NAME),
        sa.Column("bot_token", TOKEN),
        sa.Column("bot_id", ID),
        sa.Column("bot_user_id", ID),
        sa.Column("bot_scopes", SCOPES),
        sa.Column("bot_refresh_token", TOKEN),
        sa.Column("bot_token_expires_at", sa.DateTime),
    ]


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("team_id", ID, primary_key=True),
        sa.Column("name", NAME, nullable=False),
        sa.Column("installed_by", ID, nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uninstalled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "slack_installations",
        *_bot_columns(),
        sa.Column("enterprise_url", NAME),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("user_token", TOKEN),
        sa.Column("user_scopes", SCOPES),
        sa.Column("user_refresh_token", TOKEN),
        sa.Column("user_token_expires_at", sa.DateTime),
        sa.Column("incoming_webhook_url", NAME),
        sa.Column("incoming_webhook_channel", NAME),
        sa.Column("incoming_webhook_channel_id", NAME),
        sa.Column("incoming_webhook_configuration_url", NAME),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False),
        sa.Column("token_type", ID),
        sa.Column("installed_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table(
        "slack_bots",
        *_bot_columns(),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False),
        sa.Column("installed_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "slack_bots_idx", "slack_bots", ["client_id", "enterprise_id", "team_id", "installed_at"]
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("state", TOKEN, nullable=False),
        sa.Column("expire_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("slack_oauth_states", "slack_bots", "slack_installations", "workspaces"):
        op.drop_table(table)
