"""The Alembic revisions build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chamelaion.server.db import make_engine
from chamelaion.server.migrate import upgrade_database
from chamelaion.server.models import Base
from server.helpers import database_url


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    engine = make_engine(database_url(tmp_path))
    upgrade_database(engine)
    upgrade_database(engine)  # idempotent
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
