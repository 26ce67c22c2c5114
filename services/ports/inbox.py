"""Ports of the inbox: stored deliveries, how one ended, and where they are stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


@dataclass(frozen=True)
class InboxEvent:
    """A stored webhook delivery."""

    id: int
    source: str
    external_id: str
    event_type: str
    payload: str
    status: str
    attempts: int
    last_error: str | None
    account_id: str | None
    received_at: datetime
    processed_at: datetime | None
    meta: Mapping[str, Any] = field(default_factory=dict)


class Outcome(StrEnum):
    """How a delivery's processing ended."""

    PROCESSED = "processed"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Handled:
    """How an event ended, and the account it concerned."""

    status: Outcome
    account_id: str | None = None


class InboxRepository(Protocol):
    def newest_occurred(self, source: str) -> datetime | None:
        """When the newest stored event of this source happened (as the source says)."""

    def cursor(self, source: str) -> tuple[datetime, str | None] | None:
        """How far reconciliation with this source got."""

    def save_cursor(self, source: str, reached: datetime, last_event_id: str | None, now: datetime) -> None: ...

    def get(self, inbox_id: int, *, lock: bool = False) -> InboxEvent | None: ...

    def find(self, source: str, external_id: str) -> InboxEvent | None: ...

    def record_outcome(
        self, inbox_id: int, status: str, now: datetime, *, error: str | None = None, account_id: str | None = None
    ) -> None: ...

    def record_attempt_error(self, inbox_id: int, error: str, *, next_try_at: datetime | None = None) -> None:
        """Count a failed attempt; with ``next_try_at``, the time its retry is due (the sweep waits for it)."""

    def mark_queued(self, inbox_id: int, at: datetime) -> None:
        """The delivery was handed on (to a queue) at ``at``: the sweep leaves it alone for a while."""

    def add_meta(self, inbox_id: int, meta: Mapping[str, Any]) -> None:
        """Keep more about the delivery (what its source's API said about it) in its ``meta``."""

    def reset_for_replay(self, inbox_id: int, now: datetime) -> None: ...

    def claim_stale(self, older_than: datetime, now: datetime, limit: int) -> list[int]: ...

    def claim_unqueued(self, now: datetime, limit: int) -> list[int]:
        """Mark the oldest stored deliveries not yet queued as queued now (skipping locked rows)."""

    def page(self, status: str | None, after_id: int | None, limit: int) -> list[InboxEvent]: ...

    def delete_ended(self, received_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest processed or ignored deliveries received before then; how many."""


class DeliveryStore(Protocol):
    """Stores one webhook delivery in its own transaction (the webhook's hot path)."""

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
        """Store and commit; the new row's id, or None when (source, external_id) is already stored."""
