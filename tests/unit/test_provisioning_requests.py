"""A provisioning request's life: only the moves of its state machine, each on the timeline.

``awaiting`` -> ``queued`` -> ``provisioning`` -> ``provisioned`` | ``failed`` | ``cancelled``.
A request can be cancelled only before it is dispatched and retried only once it failed; one
``provisioning`` (a call under way) is past recall, and only the sweep sends it again. Which
requests may go is admission's (test_admission.py).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.provisioning import (
    CREDIT_LIMIT,
    FINAL,
    ProvisioningRequest,
    RequestState,
    TransitionRefused,
    counted_exposure,
)
from domain.timeline import Change
from tests.unit.factories import at

CHANGE = Change(at(60), "api", "api:req-1")
S = RequestState


def request(
    state: RequestState, amount: str = "125.5", waiting_for: tuple[str, ...] = (), currency: str | None = "usd"
) -> ProvisioningRequest:
    return ProvisioningRequest(
        request_id="pr_1",
        account_id="acme",
        order_id="SO-1",
        amount=Decimal(amount),
        currency=currency,
        description=None,
        state=state,
        created_at=at(0),
        waiting_for=waiting_for,
    )


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.AWAITING, S.QUEUED),  # admitted
        (S.QUEUED, S.AWAITING),  # recalled by a hold
        (S.QUEUED, S.PROVISIONING),  # its call starts
        (S.PROVISIONING, S.PROVISIONED),
        (S.PROVISIONING, S.FAILED),
        (S.PROVISIONING, S.QUEUED),  # the sweep sends again a request whose sender died
        (S.FAILED, S.AWAITING),  # retried
    ],
)
def test_a_request_moves_along_its_state_machine_and_says_so_on_the_timeline(start: S, to: S) -> None:
    r = request(start)
    entry = r.move(to, CHANGE)
    assert r.state is to
    assert (entry.kind, entry.at, entry.cause) == (f"request_{to}", CHANGE.at, CHANGE.cause)
    assert dict(entry.detail) == {"request_id": "pr_1", "order_id": "SO-1", "amount": "125.50", "from": str(start)}


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.AWAITING, S.PROVISIONING),  # nothing is sent without admission
        (S.AWAITING, S.PROVISIONED),
        (S.PROVISIONING, S.AWAITING),  # a call under way is past recall
        (S.PROVISIONING, S.CANCELLED),
        (S.FAILED, S.QUEUED),  # a retry goes back through admission
        *[(final, to) for final in (S.PROVISIONED, S.CANCELLED) for to in RequestState],
    ],
)
def test_a_move_outside_the_state_machine_is_refused_in_a_sentence_and_changes_nothing(start: S, to: S) -> None:
    r = request(start)
    with pytest.raises(TransitionRefused, match=rf"^Request pr_1 is {start}; it cannot become {to}\.$"):
        r.move(to, CHANGE)
    assert r.state is start


def test_an_awaiting_request_recorded_again_says_what_it_waits_for_without_a_from() -> None:
    r = request(S.AWAITING, waiting_for=("manual",))
    entry = r.move(S.AWAITING, CHANGE, waiting_for=["manual", CREDIT_LIMIT])
    assert "from" not in entry.detail and entry.detail["waiting_for"] == ["manual", CREDIT_LIMIT]


def test_leaving_awaiting_forgets_what_the_request_waited_for() -> None:
    r = request(S.AWAITING, waiting_for=(CREDIT_LIMIT,))
    r.move(S.QUEUED, CHANGE)
    assert r.waiting_for == ()


def test_the_amount_on_the_timeline_has_the_places_of_the_requests_currency() -> None:
    assert request(S.AWAITING, amount="5000", currency="jpy").move(S.QUEUED, CHANGE).detail["amount"] == "5000"


@pytest.mark.parametrize("state", [S.AWAITING, S.QUEUED])
def test_a_request_not_yet_dispatched_can_be_cancelled(state: S) -> None:
    r = request(state)
    assert r.cancel(CHANGE).kind == "request_cancelled"
    assert r.state is S.CANCELLED


@pytest.mark.parametrize("state", [S.PROVISIONING, S.PROVISIONED, S.FAILED, S.CANCELLED])
def test_a_request_dispatched_or_done_cannot_be_cancelled(state: S) -> None:
    r = request(state)
    with pytest.raises(TransitionRefused, match="only a request not yet dispatched can be cancelled"):
        r.cancel(CHANGE)
    assert r.state is state


def test_retrying_a_failed_request_sends_it_back_to_admission_without_its_failure() -> None:
    r = request(S.FAILED)
    r.failure = "HTTP 400: bad sku"
    entry = r.retry(CHANGE)
    assert (r.state, r.failure) == (S.AWAITING, None)
    assert entry.kind == "request_awaiting" and entry.detail["retried"] is True and entry.detail["from"] == "failed"


@pytest.mark.parametrize("state", [s for s in RequestState if s is not S.FAILED])
def test_only_a_failed_request_can_be_retried(state: S) -> None:
    r = request(state)
    with pytest.raises(TransitionRefused, match="only a failed request can be retried"):
        r.retry(CHANGE)
    assert r.state is state


def test_the_exposure_adds_pending_orders_to_unpaid_invoices_but_not_those_waiting_for_the_limit() -> None:
    requests = [
        request(S.AWAITING, "10"),  # waiting for a hold: still counts
        request(S.QUEUED, "20"),
        request(S.PROVISIONING, "40"),
        request(S.AWAITING, "1000", waiting_for=(CREDIT_LIMIT,)),  # does not fit: not counted
        *[request(final, "500") for final in FINAL],  # final: no longer pending
    ]
    assert counted_exposure(Decimal("5.50"), requests) == Decimal("75.50")
