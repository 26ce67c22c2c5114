"""The migrations build the schema the code's tables describe (adapters/db/tables.py).

Tests run on the schema the migrations build (as the release phase does), so a column the models
widen or add without a migration would pass here and fail in production: compared with
alembic's autogenerate, there must be nothing left to migrate. Column types are compared on
PostgreSQL only (SQLite keeps no lengths, and migration 0010 leaves them alone there).
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.db.tables import metadata


def test_the_migrated_schema_has_nothing_left_to_migrate(container: Any) -> None:
    with container.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        context = MigrationContext.configure(connection, opts={"compare_type": postgres})
        differences = compare_metadata(context, metadata)
    assert differences == []
