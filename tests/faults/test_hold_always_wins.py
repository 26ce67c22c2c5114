"""A hold always wins, against the real processes: nothing is sent for a held account, whatever was waiting.

Reproduced on the code before: an order answered 500, then a non_payment (or manual) hold; the
retry about 12 s later was sent and the order provisioned while the account was on hold. And
POST /api/provisioning/<id>/retry on a held account sent at once. A 302 from the provisioning
API turned the POST into a GET of the new location, which answered 200: the request was
recorded provisioned with nothing sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import stripe_fixture
from tests.faults.stack import Stack, until


def state(stack: Stack, request_id: str) -> dict[str, Any]:
    return dict(stack.api("GET", f"/api/provisioning/{request_id}").json())


def retry_due(stack: Stack, request_id: str) -> datetime:
    """When the request's latest retry is due: its ``request_queued`` entry's time plus ``retry_in_seconds``."""
    items = stack.api("GET", "/api/accounts/acme/timeline?limit=500").json()["items"]
    entry = next(
        e
        for e in items  # newest first
        if e["kind"] == "request_queued"
        and e["detail"].get("request_id") == request_id
        and "retry_in_seconds" in e["detail"]
    )
    # retry_in_seconds is rounded to a tenth
    return datetime.fromisoformat(entry["at"]) + timedelta(seconds=entry["detail"]["retry_in_seconds"] + 0.1)


def hold_by_stripe(stack: Stack) -> dict[str, Any]:
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_wins", id="in_wins")
    assert stack.post_stripe(failed).status_code == 200
    return failed


def lift_by_stripe(stack: Stack, failed: dict[str, Any]) -> None:
    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_wins", id="in_wins")
    paid["created"] = failed["created"] + 60
    assert stack.post_stripe(paid).status_code == 200


def hold_by_finance(stack: Stack) -> None:
    assert stack.api("POST", "/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud"}).status_code == 201


def lift_by_finance(stack: Stack) -> None:
    assert stack.api("DELETE", "/api/accounts/acme/holds/manual?note=cleared").status_code == 200


@pytest.mark.parametrize("source", ["stripe", "api"])
def test_a_hold_placed_while_a_request_waits_for_its_retry_stops_the_retry_until_it_lifts(
    stack: Stack, provisioning: Any, source: str
) -> None:
    stack.start_web()
    stack.start_worker(PROVISIONING_BACKOFF_SECONDS="8")  # the retry comes 4 to 8 s after the 500
    stack.start_beat()
    stack.api("PUT", "/api/accounts/acme", json={"name": "Acme", "stripe_customer_id": "cus_wins"})
    provisioning.answer(200, 500)
    request_id = stack.api("POST", "/api/accounts/acme/orders", json={"order_id": "SO-1", "amount": "5.00"}).json()[
        "request_id"
    ]
    until(lambda: provisioning.keys() == [request_id], timeout=30, what="the first call (answered 500)")
    failed = hold_by_stripe(stack) if source == "stripe" else hold_by_finance(stack)
    reason = "non_payment" if source == "stripe" else "manual"
    until(lambda: state(stack, request_id)["waiting_for"] == [reason], timeout=30, what="the request parked")
    # The retry's delayed task (sent when the 500 was recorded) runs at its time, and the sweep every
    # second: watch until that time and three sweeps have passed and every dispatch task has ended.
    waited = (retry_due(stack, request_id) - datetime.now(UTC)).total_seconds()
    stack.watch_for_late_sends(max(waited, 0) + 3)
    assert provisioning.keys() == [request_id], "nothing may be sent for a held account"
    assert state(stack, request_id)["state"] == "awaiting"

    lift_by_stripe(stack, failed) if source == "stripe" else lift_by_finance(stack)
    until(lambda: state(stack, request_id)["state"] == "provisioned", timeout=30, what="the order provisioned")
    assert provisioning.keys() == [request_id, request_id]


def test_a_retry_asked_for_on_a_held_account_waits_for_the_hold_to_lift(stack: Stack, provisioning: Any) -> None:
    stack.start_web()
    stack.start_worker()
    stack.api("PUT", "/api/accounts/acme", json={"name": "Acme"})
    provisioning.answer(400)
    request_id = stack.api("POST", "/api/accounts/acme/orders", json={"order_id": "SO-1", "amount": "5.00"}).json()[
        "request_id"
    ]
    until(lambda: state(stack, request_id)["state"] == "failed", timeout=30, what="the order refused for good")
    provisioning.answer(200)
    hold_by_finance(stack)
    retried = stack.api("POST", f"/api/provisioning/{request_id}/retry")
    assert retried.status_code == 202
    assert (retried.json()["state"], retried.json()["waiting_for"]) == ("awaiting", ["manual"])
    # A send would come from a dispatch task the retry queued (the code before sent one at once);
    # a few seconds of watching, and every dispatch task ended, would show it.
    stack.watch_for_late_sends(5)
    assert provisioning.keys() == [request_id]  # only the first, refused call
    lift_by_finance(stack)
    until(lambda: state(stack, request_id)["state"] == "provisioned", timeout=30, what="the order provisioned")


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_from_the_provisioning_api_is_not_followed(stack: Stack, provisioning: Any, status: int) -> None:
    stack.start_web()
    stack.start_worker()
    stack.api("PUT", "/api/accounts/acme", json={"name": "Acme"})
    elsewhere = provisioning.url.replace("/provision", "/moved")
    provisioning.answer(200, (status, {"Location": elsewhere}))  # then 200 for anything that follows it
    request_id = stack.api("POST", "/api/accounts/acme/orders", json={"order_id": "SO-1", "amount": "5.00"}).json()[
        "request_id"
    ]
    until(lambda: state(stack, request_id)["state"] == "failed", timeout=30, what="the request failed for good")
    assert elsewhere in state(stack, request_id)["failure"]
    # A redirect followed would be a second call within the first; a retry, a dispatch task within
    # the first backoff (1 s here): watch past both.
    stack.watch_for_late_sends(3)
    assert [(call.method, call.path) for call in provisioning.calls] == [("POST", "/provision")]
