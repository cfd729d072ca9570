"""Bring the database schema up to date with the Alembic revisions shipped in this package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Advisory lock taken while migrating ("chamel" in ASCII; unlikely to clash with other apps).
MIGRATION_LOCK_KEY = 0x636861_6D656C


def upgrade_database(engine: Engine) -> None:
    """Run every pending revision on `engine` (no-op when current). Safe to call on each start."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait and then find it done.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
