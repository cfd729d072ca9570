"""When a job's Celery message was published (the sweep republishes jobs without one).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chamelaion.server.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.add_column(sa.Column("enqueued_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.drop_column("enqueued_at")
