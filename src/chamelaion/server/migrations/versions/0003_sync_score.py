"""The output's lip-sync score (offset and confidence of the learned sync scorer).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.add_column(sa.Column("sync_offset_frames", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sync_confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.drop_column("sync_confidence")
        batch.drop_column("sync_offset_frames")
