"""The webhook's hot path: store one delivery in one statement, one transaction, no ORM session.

On PostgreSQL the same statement wakes the relay (``pg_notify``, delivered at commit), so an
acknowledged webhook costs verifying it and storing one row; the relay, in the worker, queues it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

INBOX_CHANNEL = "holdfast_inbox"  # also spelled out in _POSTGRES below (constant SQL)

# Constant SQL (no value is ever formatted into it): one INSERT, its conflict settled by the
# unique key, and on PostgreSQL the relay's wake-up in the same statement.
_INSERT = (
    "INSERT INTO inbox_events "
    "(source, external_id, event_type, payload, status, attempts, received_at, meta, occurred_at) "
    "VALUES (:source, :external_id, :event_type, :payload, 'received', 0, :received_at, :meta, :occurred_at) "
    "ON CONFLICT (source, external_id) DO NOTHING RETURNING id"
)
_POSTGRES = text(
    "WITH stored AS ("
    "INSERT INTO inbox_events "
    "(source, external_id, event_type, payload, status, attempts, received_at, meta, occurred_at) "
    "VALUES (:source, :external_id, :event_type, :payload, 'received', 0, :received_at, :meta, :occurred_at) "
    "ON CONFLICT (source, external_id) DO NOTHING RETURNING id"
    ") SELECT id, pg_notify('holdfast_inbox', '') FROM stored"
)
_SQLITE = text(_INSERT)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class SqlDeliveryStore:
    """Give it an engine without pre-ping (``make_engine(url, pool_pre_ping=False)``): see ``add``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def add(
        self,
        source: str,
        external_id: str,
        event_type: str,
        payload: str,
        now: datetime,
        meta: Mapping[str, Any] | None = None,
        occurred_at: datetime | None = None,
    ) -> int | None:
        """Store a delivery; its id, or None when (source, external_id) is already stored."""
        params = {
            "source": source,
            "external_id": external_id,
            "event_type": event_type,
            "payload": payload,
            "received_at": now if self.postgres else _naive_utc(now),
            "meta": json.dumps(dict(meta)) if meta else None,
            "occurred_at": occurred_at if self.postgres or occurred_at is None else _naive_utc(occurred_at),
        }
        statement = _POSTGRES if self.postgres else _SQLITE
        for attempt in (1, 2):
            try:
                with self.engine.begin() as connection:
                    row = connection.execute(statement, params).first()
                return None if row is None else int(row[0])
            except DBAPIError as error:
                # No pre-ping on this hot path: a pooled connection the server dropped fails
                # here instead, and the statement is safe to repeat (ON CONFLICT DO NOTHING).
                if attempt == 2 or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")
