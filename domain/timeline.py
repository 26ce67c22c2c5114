"""The append-only audit trail of an account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Change:
    """Who changes an account, when, and which inbound event (or API call) caused it."""

    at: datetime
    actor: str
    cause: str


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an account's timeline."""

    at: datetime
    kind: str
    actor: str
    cause: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, change: Change, kind: str, **detail: Any) -> TimelineEntry:
        return cls(at=change.at, kind=kind, actor=change.actor, cause=change.cause, detail=detail)
