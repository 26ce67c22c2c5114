"""Admission: what may go now, what waits and for what; queued requests are recalled, sent ones are not."""

from __future__ import annotations

from decimal import Decimal

from domain.account import Effects
from domain.holds import HoldReason
from domain.provisioning import ACCOUNT, CREDIT_LIMIT, ProvisioningRequest, RequestState, admit
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


def test_an_order_that_exactly_fits_the_credit_limit_goes() -> None:
    sending, fits = request(1, RequestState.PROVISIONING, "50.00"), request(2, RequestState.AWAITING, "20.00")
    # 30.00 of invoices + 50.00 being sent + 20.00 = 100.00: exactly the limit, not over it.
    admission = admit([sending, fits], FREE, Decimal("30.00"), Decimal("100.00"), CHANGE)
    assert admission.dispatch == [fits]
    assert (fits.state, fits.waiting_for) == (RequestState.QUEUED, ())


def test_an_order_one_cent_over_the_credit_limit_waits_for_it() -> None:
    over = request(1, RequestState.AWAITING, "70.01")
    admission = admit([over], FREE, Decimal("30.00"), Decimal("100.00"), CHANGE)
    assert admission.dispatch == []
    assert (over.state, over.waiting_for) == (RequestState.AWAITING, (CREDIT_LIMIT,))


def test_orders_that_fit_together_all_go_and_the_first_that_does_not_stops_the_rest() -> None:
    first, second, third, fourth = (
        request(1, RequestState.AWAITING, "40.00"),
        request(2, RequestState.AWAITING, "50.00"),
        request(3, RequestState.AWAITING, "20.00"),  # 110.00: over
        request(4, RequestState.AWAITING, "10.00"),  # 100.00 would fit exactly, but it waits behind the third
    )
    admission = admit([fourth, third, second, first], FREE, Decimal(0), Decimal("100.00"), CHANGE)
    assert admission.dispatch == [first, second]
    assert third.waiting_for == fourth.waiting_for == (CREDIT_LIMIT,)


def test_once_the_first_order_waiting_for_the_limit_fits_exactly_it_goes() -> None:
    waiting = request(1, RequestState.AWAITING, "25.00")
    assert admit([waiting], FREE, Decimal("80.00"), Decimal("100.00"), CHANGE).dispatch == []
    assert waiting.waiting_for == (CREDIT_LIMIT,)
    # 5.00 of the invoices paid: 75.00 + 25.00 is the limit.
    assert admit([waiting], FREE, Decimal("75.00"), Decimal("100.00"), CHANGE).dispatch == [waiting]


def test_an_order_for_an_account_not_known_yet_waits_for_the_account() -> None:
    unknown = request(1, RequestState.AWAITING)
    admission = admit([unknown], FREE, Decimal(0), None, CHANGE, account_known=False)
    assert admission.dispatch == []
    assert (unknown.state, unknown.waiting_for) == (RequestState.AWAITING, (ACCOUNT,))
    assert admission.changed == [unknown] and admission.entries[0].detail["waiting_for"] == [ACCOUNT]


def test_admission_records_what_each_request_waits_for_and_returns_the_requests_it_changed() -> None:
    review = Effects(on_hold=True, paused=False, blocking=(), parking=(HoldReason.CREDIT_REVIEW,))
    queued, awaiting, unchanged = (
        request(1, RequestState.QUEUED),
        request(2, RequestState.AWAITING),
        request(3, RequestState.AWAITING),
    )
    unchanged.waiting_for = ("credit_review",)
    admission = admit([queued, awaiting, unchanged], review, Decimal(0), None, CHANGE)
    assert admission.changed == [queued, awaiting]  # the third already waited for exactly that
    recalled, parked = admission.entries
    assert recalled.detail["waiting_for"] == ["credit_review"] and recalled.detail["recalled"] is True
    assert parked.detail["waiting_for"] == ["credit_review"] and "recalled" not in parked.detail

    lifted = admit([queued, awaiting, unchanged], FREE, Decimal(0), None, CHANGE)
    assert lifted.dispatch == lifted.changed == [queued, awaiting, unchanged]
    assert [e.kind for e in lifted.entries] == ["request_queued"] * 3
