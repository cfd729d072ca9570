"""A request's speaker point: the face to re-animate, pointed at in one source frame.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.add_column(sa.Column("speaker_frame", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("speaker_x", sa.Float(), nullable=True))
        batch.add_column(sa.Column("speaker_y", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.drop_column("speaker_y")
        batch.drop_column("speaker_x")
        batch.drop_column("speaker_frame")
