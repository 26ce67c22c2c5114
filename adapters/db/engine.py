"""Engine and session factory for PostgreSQL (production) or a SQLite file (embedded default).

Every engine hides bound parameters from SQL errors (they carry customer data, and error text
ends up in logs and in ``last_error``). On PostgreSQL, connecting and each statement are
bounded in time, so a database that hangs fails a task (which retries) instead of holding a
worker and its locks for ever.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30.0


def make_engine(
    url: str,
    *,
    connect_timeout: int | None = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    statement_timeout: float | None = DEFAULT_STATEMENT_TIMEOUT_SECONDS,
    **overrides: Any,
) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout and write-locking transactions.

    On PostgreSQL, ``connect_timeout`` (whole seconds) and ``statement_timeout`` (seconds) bound
    connecting and each statement; None (or 0) means no limit. A ``connect_timeout`` in the URL wins.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **overrides)
        _serialize_sqlite_writers(engine)
        return engine
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        "hide_parameters": True,
        "connect_args": _postgres_connect_args(url, connect_timeout, statement_timeout),
    }
    options.update(overrides)
    return create_engine(url, **options)


def _postgres_connect_args(url: str, connect_timeout: int | None, statement_timeout: float | None) -> dict[str, Any]:
    query = make_url(url).query
    args: dict[str, Any] = {}
    if connect_timeout and "connect_timeout" not in query:
        args["connect_timeout"] = int(connect_timeout)
    if statement_timeout:
        # Sent at connection start (libpq "options"), so every session has it without a round trip.
        given = query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else given
        limit = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
        args["options"] = f"{given} {limit}" if given else limit
    return args


def _serialize_sqlite_writers(engine: Engine) -> None:
    # pysqlite's own BEGIN is deferred, so two processes that read then write deadlock
    # with SQLITE_BUSY. Take the write lock at BEGIN instead: SQLite then behaves like a
    # database with one writer at a time, which is what the embedded default needs.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def insert_for(session: Session, table: Any) -> Any:
    """An INSERT in the session's dialect, so that it can say ON CONFLICT (PostgreSQL or SQLite)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
