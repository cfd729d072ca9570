"""Accounts, API keys and lip-sync requests.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chamelaion.server.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(36),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("max_requests", sa.Integer(), nullable=True),
        sa.Column("requests_used", sa.Integer(), nullable=False),
        sa.Column("rate_limit_generate", sa.String(64), nullable=True),
        sa.Column("rate_limit_read", sa.String(64), nullable=True),
    )
    op.create_table(
        "lipsync_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(36),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "api_key_id",
            sa.String(36),
            sa.ForeignKey("api_keys.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("reference_id", sa.String(512), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("input_kind", sa.String(16), nullable=False),
        sa.Column("video_source", sa.Text(), nullable=False),
        sa.Column("audio_source", sa.Text(), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("sync_mode", sa.String(16), nullable=False),
        sa.Column("disable_active_speaker_detection", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_stage", sa.String(32), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_lipsync_requests_account_created", "lipsync_requests", ["account_id", "created_at"]
    )
    op.create_index(
        "ix_lipsync_requests_account_reference",
        "lipsync_requests",
        ["account_id", "reference_id", "created_at"],
    )
    op.create_index(
        "ix_lipsync_requests_status_created", "lipsync_requests", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("lipsync_requests")
    op.drop_table("api_keys")
    op.drop_table("accounts")
