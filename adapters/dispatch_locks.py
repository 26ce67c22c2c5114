"""Dispatch locks: one sender per account, freed when the sender is done or its process dies.

On PostgreSQL a session-level advisory lock, held on a connection of its own for as long as
the sender works (no transaction stays open: the connection is idle between its statements).
A process that dies drops its connection and PostgreSQL frees the lock at once. On the
embedded default (SQLite, one machine) an exclusive ``flock`` on a file per account under the
instance folder: the kernel frees it when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import structlog
from sqlalchemy import Engine, text

log = structlog.get_logger(__name__)

_NAMESPACE = "holdfast.dispatch:"


def lock_key(account_id: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock`` (a collision only makes two accounts take turns)."""
    digest = hashlib.blake2b((_NAMESPACE + account_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresDispatchLock:
    """Advisory locks on connections from an engine of their own (one connection per lock held)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def hold(self, account_id: str) -> Iterator[bool]:
        key = lock_key(account_id)
        connection = self.engine.connect()
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one())
            connection.commit()  # the lock is the session's: no transaction stays open while it is held
        except BaseException:
            connection.close()
            raise
        if not held:
            connection.close()
            yield False
            return
        try:
            yield True
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
                connection.close()
            except Exception:
                # Closing the session frees its locks: never hand a connection that may still
                # hold one back to the pool.
                log.warning("dispatch_lock_release_failed", account_id=account_id)
                connection.invalidate()
                connection.close()


class FileDispatchLock:
    """``flock`` on one file per account (the embedded default runs on one machine)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def hold(self, account_id: str) -> Iterator[bool]:
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
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def make_dispatch_lock(engine: Engine, folder: Path) -> PostgresDispatchLock | FileDispatchLock:
    """The lock for this database: advisory locks on PostgreSQL, file locks on SQLite."""
    if engine.dialect.name == "postgresql":
        return PostgresDispatchLock(engine)
    return FileDispatchLock(folder)
