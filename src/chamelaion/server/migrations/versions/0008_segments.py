"""Segments of processing jobs, claimed by any worker (one job over many workers).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chamelaion.server.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lipsync_segments",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("lipsync_requests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("index", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_lipsync_segments_status", "lipsync_segments", ["status", "job_id", "index"])


def downgrade() -> None:
    op.drop_table("lipsync_segments")
