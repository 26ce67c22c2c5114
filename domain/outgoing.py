"""Holdfast's own events: what subscribers hear about, derived from the changes an account records.

Every change appends timeline entries in its transaction; ``events_from`` reads those entries
(and what the account's holds do before and after) and says which outgoing events they make.
It is the one place that decides it, so no use case announces anything by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.timeline import TimelineEntry

HOLD_PLACED = "account.hold_placed"
HOLD_RELEASED = "account.hold_released"
ENFORCEMENT_CHANGED = "account.enforcement_changed"
ORDER_AWAITING = "order.awaiting"
ORDER_REFUSED = "order.refused"
ORDER_PROVISIONED = "order.provisioned"
ORDER_FAILED = "order.failed"

EVENT_TYPES = (
    HOLD_PLACED,
    HOLD_RELEASED,
    ENFORCEMENT_CHANGED,
    ORDER_AWAITING,
    ORDER_REFUSED,
    ORDER_PROVISIONED,
    ORDER_FAILED,
)
ACCOUNT_EVENTS = frozenset({HOLD_PLACED, HOLD_RELEASED, ENFORCEMENT_CHANGED})
# The timeline entries after which what an account's holds do may differ.
ENFORCEMENT_KINDS = frozenset({"hold_placed", "hold_released", "enforcement_paused", "enforcement_resumed"})


class UnknownEventType(ValueError):
    """A subscription asked for an event type Holdfast does not send; the message is a sentence."""


def check_event_types(types: Sequence[str]) -> list[str]:
    """The event types a subscription asks for, each once, in the order given (UnknownEventType if any is unknown)."""
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise UnknownEventType(
            f"Unknown event type {', '.join(repr(t) for t in unknown)}: choose from {', '.join(EVENT_TYPES)}."
        )
    if not types:
        raise UnknownEventType(f"Name at least one event type: {', '.join(EVENT_TYPES)}.")
    return list(dict.fromkeys(types))


@dataclass(frozen=True)
class Enforcement:
    """What an account's holds do, as subscribers were last told: blocking, parking, paused."""

    blocks_changes: bool = False
    parks_provisioning: bool = False
    paused: bool = False

    def encode(self) -> str:
        """As stored: the names of what is on, comma-separated ("" when nothing is)."""
        return ",".join(name for name, on in self._parts() if on)

    @classmethod
    def decode(cls, text: str) -> Enforcement:
        names = set(filter(None, text.split(",")))
        return cls("blocks_changes" in names, "parks_provisioning" in names, "paused" in names)

    def _parts(self) -> list[tuple[str, bool]]:
        return [
            ("blocks_changes", self.blocks_changes),
            ("parks_provisioning", self.parks_provisioning),
            ("paused", self.paused),
        ]

    def as_data(self) -> dict[str, bool]:
        return dict(self._parts())


@dataclass(frozen=True)
class OutgoingEvent:
    """One event to announce: its type, the account it is about, when, why, and what it names.

    ``order`` is the request's id for order.* events (their ``data`` is the request); ``detail``
    is added to the ``data`` (an account.* event's ``reason`` and ``cause``; order.refused's
    ``order_id`` and ``reasons``).
    """

    type: str
    account_id: str
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)
    order: str | None = None

    @property
    def about_the_account(self) -> bool:
        return self.type in ACCOUNT_EVENTS


_ORDER_KINDS = {
    "request_provisioned": ORDER_PROVISIONED,
    "request_failed": ORDER_FAILED,
}


def _from_entry(account_id: str, entry: TimelineEntry) -> OutgoingEvent | None:
    detail = entry.detail
    if entry.kind in ("hold_placed", "hold_released"):
        kind = HOLD_PLACED if entry.kind == "hold_placed" else HOLD_RELEASED
        return OutgoingEvent(kind, account_id, entry.at, {"reason": detail.get("reason"), "cause": entry.cause})
    request_id = detail.get("request_id")
    if not isinstance(request_id, str):
        return None
    if entry.kind in _ORDER_KINDS:
        return OutgoingEvent(_ORDER_KINDS[entry.kind], account_id, entry.at, order=request_id)
    if entry.kind == "request_awaiting" and detail.get("waiting_for"):
        # Parked (a hold, the credit limit): not a failed request sent back for admission.
        return OutgoingEvent(ORDER_AWAITING, account_id, entry.at, order=request_id)
    if entry.kind == "request_cancelled" and detail.get("refused"):
        return order_refused(account_id, str(detail.get("order_id")), list(detail.get("reasons") or []), entry.at)
    return None


def order_refused(account_id: str, order_id: str, reasons: Sequence[str], at: datetime) -> OutgoingEvent:
    """An order refused because the account's holds block changes (by the API's 409 or on the CRM's timeline)."""
    return OutgoingEvent(
        ORDER_REFUSED, account_id, at, {"account_id": account_id, "order_id": order_id, "reasons": list(reasons)}
    )


def _enforcement_reason(entries: Sequence[TimelineEntry]) -> tuple[str | None, str | None]:
    """What changed the enforcement, and its cause: the last pause or hold entry of the change."""
    for entry in reversed(entries):
        if entry.kind in ("enforcement_paused", "enforcement_resumed"):
            return entry.kind, entry.cause
        if entry.kind in ("hold_placed", "hold_released"):
            return str(entry.detail.get("reason")), entry.cause
    return None, entries[-1].cause if entries else None


def events_from(
    account_id: str, entries: Sequence[TimelineEntry], announced: Enforcement | None, now: Enforcement
) -> list[OutgoingEvent]:
    """The events one account's change makes: one per hold or order entry (in timeline order), then
    ``account.enforcement_changed`` when what its holds do differs from what was last announced.

    ``announced`` None: nothing is known of what was announced (accounts from before events
    existed); the state is then taken as announced, without an event.
    """
    events = [event for entry in entries if (event := _from_entry(account_id, entry)) is not None]
    if entries and announced is not None and announced != now:
        reason, cause = _enforcement_reason(entries)
        detail = {"reason": reason, "cause": cause, "before": announced.as_data()}
        events.append(OutgoingEvent(ENFORCEMENT_CHANGED, account_id, entries[-1].at, detail))
    return events


def webhook_id(event_id: int, subscription_id: str) -> str:
    """The ``webhook-id`` of one event's delivery to one subscription: the same on every retry."""
    return f"msg_{event_id}_{subscription_id}"
