"""Dispatch locks: one sender per account, freed when the sender is done or its process dies.

On PostgreSQL a session-level advisory lock, held on a connection of its own for as long as
the sender works (in autocommit: no transaction stays open, the connection is idle between its
statements). A process that dies drops its connection and PostgreSQL frees the lock at once. On
the embedded default (SQLite, one machine) an exclusive ``flock`` on a file per account under
the instance folder: the kernel frees it when the process dies.

The held account also reads its ``DispatchMark`` before each call, on that same connection: one
indexed read, no transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import structlog
from sqlalchemy import Connection, Engine, text

from adapters.db.accounts import read_dispatch_mark
from services.ports import DispatchMark

log = structlog.get_logger(__name__)

_NAMESPACE = "holdfast.dispatch:"


def lock_key(account_id: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock`` (a collision only makes two accounts take turns)."""
    digest = hashlib.blake2b((_NAMESPACE + account_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Held:
    def __init__(self, connection: Connection, account_id: str) -> None:
        self.connection, self.account_id = connection, account_id

    def mark(self) -> DispatchMark | None:
        return read_dispatch_mark(self.connection, self.account_id)


class _Reading:
    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine, self.account_id = engine, account_id

    def mark(self) -> DispatchMark | None:
        with self.engine.connect() as connection:
            return read_dispatch_mark(connection, self.account_id)


class PostgresDispatchLock:
    """Advisory locks on connections from an engine of their own (one connection per lock held)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def hold(self, account_id: str) -> Iterator[_Held | None]:
        key = lock_key(account_id)
        # Autocommit: the lock is the session's, and no transaction stays open while it is held.
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one())
        except BaseException:
            connection.close()
            raise
        if not held:
            connection.close()
            yield None
            return
        try:
            yield _Held(connection, account_id)
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.close()
            except Exception:
                # Closing the session frees its locks: never hand a connection that may still
                # hold one back to the pool.
                log.warning("dispatch_lock_release_failed", account_id=account_id)
                connection.invalidate()
                connection.close()


class FileDispatchLock:
    """``flock`` on one file per account (the embedded default runs on one machine)."""

    def __init__(self, folder: Path, engine: Engine) -> None:
        self.folder = folder
        self.engine = engine

    @contextlib.contextmanager
    def hold(self, account_id: str) -> Iterator[_Reading | None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:40]
        fd = os.open(self.folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:  # flock, not lockf: two threads of one process exclude each other too
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            if not held:
                yield None
                return
            try:
                yield _Reading(self.engine, account_id)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def make_dispatch_lock(engine: Engine, folder: Path) -> PostgresDispatchLock | FileDispatchLock:
    """The lock for this database: advisory locks on PostgreSQL, file locks on SQLite."""
    if engine.dialect.name == "postgresql":
        return PostgresDispatchLock(engine)
    return FileDispatchLock(folder, engine)
