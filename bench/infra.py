"""What every benchmark needs: a fresh PostgreSQL database built by the real migrations, a flushed Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """The benchmark could not be run; the message says why."""


@contextmanager
def fresh_database(admin_url: str, prefix: str = "holdfast_bench") -> Iterator[str]:
    """A new database built by the real migrations; yields its URL (Heroku form) and drops it after."""
    from sqlalchemy import create_engine, make_url, text

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        raise BenchError(f"PostgreSQL at {admin_url} is not usable: {type(error).__name__}: {error}") from None
    try:
        url = make_url(admin_url).set(drivername="postgres", database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(database_url: str) -> None:
    """Build the schema with the real migrations, as the release phase (and tests/conftest.py) do."""
    from alembic import command
    from alembic.config import Config

    from bootstrap.settings import database_url_for_sqlalchemy

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["skip_logging"] = True
    config.attributes["url"] = database_url_for_sqlalchemy(database_url)
    command.upgrade(config, "head")


@contextmanager
def flushed_redis(url: str) -> Iterator[Any]:
    """A Redis database flushed before and after (what the run queued stays in it until then)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except Exception as error:
        raise BenchError(f"Redis at {url} is not usable: {type(error).__name__}: {error}") from None
    try:
        yield client
    finally:
        with suppress(Exception):
            client.flushdb()
        client.close()
