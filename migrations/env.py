"""Alembic environment: the URL comes from DATABASE_URL (or the embedded SQLite default)."""

from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context

from adapters.db.engine import make_engine
from adapters.db.tables import metadata
from bootstrap.settings import DEFAULT_INSTANCE_DIR, database_url_for_sqlalchemy

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    explicit = config.attributes.get("url")
    if explicit:
        return str(explicit)
    raw = os.environ.get("DATABASE_URL", "").strip()
    if raw:
        return database_url_for_sqlalchemy(raw)
    instance = Path(os.environ.get("HOLDFAST_INSTANCE_DIR") or DEFAULT_INSTANCE_DIR)
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'holdfast.sqlite3'}"


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # No statement timeout: a migration (an index on a big table) may rightly take minutes.
    engine = make_engine(_url(), statement_timeout=None)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
