"""A request's transcript of its new audio, and the engine's notes on a completed output.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.add_column(sa.Column("transcript", sa.Text(), nullable=True))
        batch.add_column(sa.Column("transcript_language", sa.String(64), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.drop_column("notes")
        batch.drop_column("transcript_language")
        batch.drop_column("transcript")
