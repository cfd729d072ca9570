"""When a request's output was deleted at the end of its retention time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chamelaion.server.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.add_column(sa.Column("output_expired_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lipsync_requests") as batch:
        batch.drop_column("output_expired_at")
