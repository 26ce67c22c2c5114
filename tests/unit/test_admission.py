"""Admission: what may go now, what waits and for what; queued requests are recalled, sent ones are not."""

from __future__ import annotations

from decimal import Decimal

from domain.account import Effects
from domain.holds import HoldReason
from domain.provisioning import CREDIT_LIMIT, ProvisioningRequest, RequestState, admit
from domain.timeline import Change
from tests.unit.factories import at

CHANGE = Change(at(100), "holdfast", "test")
FREE = Effects(on_hold=False, paused=False, blocking=(), parking=())
HELD = Effects(on_hold=True, paused=False, blocking=(HoldReason.MANUAL,), parking=(HoldReason.MANUAL,))


def request(n: int, state: RequestState, amount: str = "10.00") -> ProvisioningRequest:
    return ProvisioningRequest(f"r{n}", "acme", f"SO-{n}", Decimal(amount), "usd", None, state, at(n))


def test_a_hold_sends_queued_requests_back_to_awaiting_but_not_one_being_sent() -> None:
    sending, queued, waiting = (
        request(1, RequestState.PROVISIONING),
        request(2, RequestState.QUEUED),
        request(3, RequestState.AWAITING),
    )
    admission = admit([sending, queued, waiting], HELD, Decimal(0), None, CHANGE)
    assert admission.dispatch == []
    assert (sending.state, queued.state, waiting.state) == (RequestState.PROVISIONING, "awaiting", "awaiting")
    assert queued.waiting_for == waiting.waiting_for == ("manual",)
    recalled = [e for e in admission.entries if e.detail.get("recalled")]
    assert [e.detail["request_id"] for e in recalled] == ["r2"]


def test_a_queued_request_that_still_may_go_is_left_as_it_is() -> None:
    queued = request(1, RequestState.QUEUED)
    admission = admit([queued], FREE, Decimal(0), None, CHANGE)
    assert (admission.dispatch, admission.changed, admission.entries) == ([], [], [])
    assert queued.state is RequestState.QUEUED


def test_over_the_limit_queued_requests_wait_oldest_first_behind_what_is_being_sent() -> None:
    sending, older, younger = (
        request(1, RequestState.PROVISIONING, "50.00"),
        request(2, RequestState.QUEUED, "40.00"),
        request(3, RequestState.QUEUED, "5.00"),
    )
    # 30.00 of invoices came in meanwhile: 30 + 50 sending leaves 20 of the 100 limit.
    admission = admit([sending, older, younger], FREE, Decimal("30.00"), Decimal("100.00"), CHANGE)
    assert admission.dispatch == []
    assert older.waiting_for == younger.waiting_for == (CREDIT_LIMIT,)  # the small one does not jump the queue


def test_admission_twice_changes_nothing_the_second_time() -> None:
    requests = [request(1, RequestState.QUEUED), request(2, RequestState.AWAITING)]
    first = admit(requests, HELD, Decimal(0), None, CHANGE)
    second = admit(requests, HELD, Decimal(0), None, CHANGE)
    assert len(first.entries) == 2 and second.entries == [] and second.changed == []
