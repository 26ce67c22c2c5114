"""Which outgoing events a change makes (domain.outgoing) and when a delivery is tried again (services.outgoing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.outgoing import Enforcement, UnknownEventType, check_event_types, events_from
from domain.timeline import Change, TimelineEntry
from services.outgoing import next_step
from services.ports import DeliveryState, OutgoingPolicy, SendOutcome

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CHANGE = Change(NOW, "holdfast", "stripe:evt_1")
NONE = Enforcement()
BLOCKING = Enforcement(blocks_changes=True, parks_provisioning=True)


def entry(kind: str, **detail: object) -> TimelineEntry:
    return TimelineEntry.of(CHANGE, kind, **detail)


def test_a_hold_placed_that_starts_blocking_makes_two_events_in_that_order() -> None:
    made = events_from("acme", [entry("hold_placed", reason="non_payment")], NONE, BLOCKING)
    assert [e.type for e in made] == ["account.hold_placed", "account.enforcement_changed"]
    assert made[0].detail == {"reason": "non_payment", "cause": "stripe:evt_1"}
    assert made[1].detail["before"] == NONE.as_data()


def test_a_hold_that_changes_nothing_it_does_makes_no_enforcement_event() -> None:
    made = events_from("acme", [entry("hold_placed", reason="dispute")], BLOCKING, BLOCKING)
    assert [e.type for e in made] == ["account.hold_placed"]


def test_an_account_never_announced_is_taken_as_announced_without_an_event() -> None:
    assert [e.type for e in events_from("acme", [entry("hold_released", reason="manual")], None, NONE)] == [
        "account.hold_released"
    ]


def test_orders_become_events_only_when_they_park_are_refused_provisioned_or_fail() -> None:
    entries = [
        entry("request_accepted", request_id="r1", order_id="o1"),
        entry("request_queued", request_id="r1", order_id="o1"),
        entry("request_awaiting", request_id="r1", order_id="o1", retried=True),
        entry("request_awaiting", request_id="r1", order_id="o1", waiting_for=["manual"]),
        entry("request_provisioned", request_id="r2", order_id="o2"),
        entry("request_failed", request_id="r3", order_id="o3"),
        entry("request_cancelled", request_id="r4", order_id="o4", refused=True, reasons=["manual"]),
        entry("request_cancelled", request_id="r5", order_id="o5"),
    ]
    made = events_from("acme", entries, NONE, NONE)
    assert [(e.type, e.order) for e in made[:3]] == [
        ("order.awaiting", "r1"),
        ("order.provisioned", "r2"),
        ("order.failed", "r3"),
    ]
    assert made[3].type == "order.refused"
    assert made[3].detail == {"account_id": "acme", "order_id": "o4", "reasons": ["manual"]}
    assert len(made) == 4


def test_enforcement_is_stored_as_names_and_read_back() -> None:
    for state in (NONE, BLOCKING, Enforcement(paused=True)):
        assert Enforcement.decode(state.encode()) == state
    assert NONE.encode() == ""


def test_unknown_event_types_are_refused_with_the_types_there_are() -> None:
    with pytest.raises(UnknownEventType, match=r"order\.provisioned"):
        check_event_types(["account.deleted"])
    assert check_event_types(["order.failed", "order.failed"]) == ["order.failed"]


POLICY = OutgoingPolicy(backoff_seconds=10, backoff_cap_seconds=3600, retry_hours=72)
FAILED = SendOutcome(500, None, 5)


def test_a_2xx_is_delivered() -> None:
    assert next_step(1, SendOutcome(204, None, 5), NOW, NOW, POLICY) == (DeliveryState.DELIVERED, None)


def test_retries_double_from_the_first_delay_with_jitter() -> None:
    def longest(low: float, high: float) -> float:
        return high

    dues = [next_step(n, FAILED, NOW, NOW, POLICY, longest)[1] for n in (1, 2, 3)]
    assert dues == [NOW + timedelta(seconds=s) for s in (10, 20, 40)]
    state, due = next_step(1, FAILED, NOW, NOW, POLICY, lambda low, high: low)
    assert state is DeliveryState.PENDING and due == NOW + timedelta(seconds=5)


def test_after_the_retry_hours_a_delivery_fails_for_good_and_none_is_due_after_them() -> None:
    late = NOW + timedelta(hours=72)
    assert next_step(30, FAILED, NOW, late, POLICY) == (DeliveryState.FAILED, None)
    almost = late - timedelta(seconds=1)
    assert next_step(30, FAILED, NOW, almost, POLICY)[1] == late
