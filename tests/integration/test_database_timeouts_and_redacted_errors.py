"""The database connection is bounded in time and SQL errors do not carry the values they were given."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError, OperationalError

from adapters.db.engine import make_engine
from adapters.db.tables import AccountRow

SECRET = "Jane Customer, 1 Private Lane"


def postgres_only(container: Any) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL behaviour: the PostgreSQL run covers it")


@pytest.mark.parametrize(
    "values",
    [
        {"account_number": SECRET + "x" * 100},  # longer than the column: PostgreSQL refuses it
        {"name": SECRET + "\x00"},  # PostgreSQL text cannot hold NUL
    ],
    ids=["too-long", "nul"],
)
def test_a_statement_that_fails_raises_an_error_that_carries_no_value_it_was_given(
    container: Any, values: dict[str, str]
) -> None:
    postgres_only(container)
    now = container.clock()
    with pytest.raises(DBAPIError) as raised, container.engine.begin() as connection:
        connection.execute(
            insert(AccountRow).values(account_id="acct-1", pause_note=SECRET, created_at=now, updated_at=now, **values)
        )
    assert SECRET not in str(raised.value)
    assert "Private Lane" not in str(raised.value)


def test_a_constraint_failure_on_any_backend_lists_no_bound_parameters(container: Any) -> None:
    with pytest.raises(DBAPIError) as raised, container.engine.begin() as connection:
        connection.execute(insert(AccountRow).values(account_id="acct-1", pause_note=SECRET, updated_at=None))
    assert "[parameters:" not in str(raised.value)


def test_connections_have_a_statement_timeout_and_a_connect_timeout(container: Any) -> None:
    postgres_only(container)
    with container.engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "30s"
        parameters = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        assert parameters["connect_timeout"] == "5"


def test_a_statement_running_past_the_timeout_is_cancelled(container: Any) -> None:
    postgres_only(container)
    engine = make_engine(container.settings.database_url, statement_timeout=0.2)
    try:
        with pytest.raises(OperationalError, match="statement timeout"), engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(30)"))
    finally:
        engine.dispose()


def test_migrations_run_without_the_statement_timeout(container: Any) -> None:
    """A long migration (an index on a big table) must not be cut at 30 s: the release phase has no limit."""
    postgres_only(container)
    engine = make_engine(container.settings.database_url, statement_timeout=None)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        engine.dispose()
