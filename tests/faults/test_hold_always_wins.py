"""A hold always wins, against the real processes: nothing is sent for a held account, whatever was waiting.

Reproduced on the code before: an order answered 500, then a non_payment (or manual) hold; the
retry about 12 s later was sent and the order provisioned while the account was on hold. And
POST /api/provisioning/<id>/retry on a held account sent at once. A 302 from the provisioning
API turned the POST into a GET of the new location, which answered 200: the request was
recorded provisioned with nothing sent.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import stripe_fixture
from tests.faults.stack import Stack, until


def state(stack: Stack, request_id: str) -> dict[str, Any]:
    return dict(stack.api("GET", f"/api/provisioning/{request_id}").json())


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
    time.sleep(10)  # past the retry's time, with the sweep running every second
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
    time.sleep(3)
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
    time.sleep(1)
    assert [(call.method, call.path) for call in provisioning.calls] == [("POST", "/provision")]
