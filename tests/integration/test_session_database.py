"""The PostgreSQL database a test session creates is dropped however the session ends early."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import tests.conftest
from tests.conftest import BACKEND, PG_ADMIN_URL, postgres_backend

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's session database: the PostgreSQL run")

NOBODY_LISTENS = "redis://127.0.0.1:1/10"  # port 1: refused at once


def database_exists(name: str) -> bool:
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as connection:
            found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
            return found.first() is not None
    finally:
        admin.dispose()


def a_name() -> str:
    return f"holdfast_test_{uuid.uuid4().hex[:10]}_early"


def test_redis_down_leaves_no_database_behind(backend_env: dict[str, str]) -> None:
    name = a_name()
    down = (pytest.skip.Exception, pytest.fail.Exception)  # skipped, or failed in CI
    with pytest.raises(down, match="Redis is not reachable"), postgres_backend(backend_env, name, NOBODY_LISTENS):
        pass
    assert not database_exists(name)


def test_a_migration_that_fails_leaves_no_database_behind(
    backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = a_name()
    created: list[bool] = []

    def failing_migration(env: Any) -> None:
        created.append(database_exists(name))
        raise RuntimeError("a migration failed")

    monkeypatch.setattr(tests.conftest, "_migrate", failing_migration)
    with pytest.raises(RuntimeError, match="a migration failed"), postgres_backend(backend_env, name, NOBODY_LISTENS):
        pass
    assert created == [True]  # it was there while the session started
    assert not database_exists(name)
