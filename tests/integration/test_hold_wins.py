"""A hold always wins: whatever is queued or waiting for a retry goes back to awaiting; nothing is sent.

Against the real database and a real local HTTP server as the provisioning API; dispatch runs
the service the worker's task runs (tests/e2e and tests/faults run the real processes).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from bootstrap import make_provisioner
from services.provisioning import dispatch_accounts
from tests.conftest import finalized_invoice, post_stripe, process_pending, stripe_fixture


def order(client: Any, admin: dict[str, str], order_id: str, amount: str = "10.00", account: str = "acme") -> Any:
    return client.post(f"/api/accounts/{account}/orders", json={"order_id": order_id, "amount": amount}, headers=admin)


def request(client: Any, admin: dict[str, str], request_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/provisioning/{request_id}", headers=admin).json)


def dispatch(container: Any, seconds_ahead: float = 0, settings: Any = None) -> dict[str, str]:
    """The dispatch task's service for the account, with a clock ``seconds_ahead`` (past a backoff)."""
    provisioner = make_provisioner(settings or container.settings)
    return dispatch_accounts(
        container.uow,
        container.context,
        provisioner,
        container.dispatch_lock,
        ["acme"],
        lambda: container.clock() + timedelta(seconds=seconds_ahead),
    )


@pytest.fixture
def acme(client: Any, admin: dict[str, str]) -> str:
    answer = client.put("/api/accounts/acme", json={"name": "Acme", "stripe_customer_id": "cus_wins"}, headers=admin)
    assert answer.status_code == 201
    return "acme"


def test_a_manual_hold_placed_while_a_request_waits_for_its_retry_sends_it_back_to_awaiting(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(200, 500)  # the first call fails, a retry would succeed
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "retry"}
    assert request(client, admin, request_id)["state"] == "queued"  # waiting out its backoff

    held = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    assert held.status_code == 201
    waiting = request(client, admin, request_id)
    assert (waiting["state"], waiting["waiting_for"]) == ("awaiting", ["manual"])
    assert dispatch(container, seconds_ahead=3600) == {}  # the retry's time comes: nothing is sent
    assert provisioning.keys() == [request_id]

    client.delete("/api/accounts/acme/holds/manual?note=cleared", headers=admin)
    assert request(client, admin, request_id)["state"] == "queued"
    assert dispatch(container) == {request_id: "provisioned"}
    assert provisioning.keys() == [request_id, request_id]
    kinds = [e["kind"] for e in client.get("/api/accounts/acme/timeline", headers=admin).json["items"]]
    assert "request_awaiting" in kinds  # the recall is on the timeline


def test_a_failed_payment_during_a_retry_backoff_stops_the_retry(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(200, 500)
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "retry"}
    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_wins"))
    assert process_pending(container) == ["processed"]
    assert request(client, admin, request_id)["waiting_for"] == ["non_payment"]
    assert dispatch(container, seconds_ahead=3600) == {}
    assert provisioning.keys() == [request_id]


def test_a_hold_the_dispatcher_finds_at_the_moment_of_sending_parks_the_request(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    """An enforcement pause that ran out by time alone (no tick yet): the holds take effect again at once."""
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "review"}, headers=admin)
    until = (container.clock() + timedelta(seconds=30)).isoformat()
    client.put("/api/accounts/acme/enforcement-pause", json={"until": until, "note": "a day's grace"}, headers=admin)
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert request(client, admin, request_id)["state"] == "queued"  # paused: it may go
    assert dispatch(container, seconds_ahead=60) == {}  # but when it is sent, the pause has ended
    parked = request(client, admin, request_id)
    assert (parked["state"], parked["waiting_for"]) == ("awaiting", ["manual"])
    assert provisioning.calls == []


def test_the_credit_limit_is_checked_again_at_the_moment_of_sending(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.put("/api/accounts/acme", json={"credit_limit": "100.00"}, headers=admin)
    first = order(client, admin, "SO-1", "60.00").json["request_id"]
    second = order(client, admin, "SO-2", "30.00").json["request_id"]
    # An invoice finalized meanwhile takes 50.00 of the limit: the first order no longer fits.
    post_stripe(client, finalized_invoice("cus_wins", "in_wins", 5000))
    process_pending(container)
    assert dispatch(container) == {}
    for request_id in (first, second):  # strictly oldest first: the second waits behind the first
        assert request(client, admin, request_id)["waiting_for"] == ["credit_limit"]
    assert provisioning.calls == []


def test_a_retry_of_a_failed_request_on_a_held_account_waits(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(400)
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "failed"}
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    retried = client.post(f"/api/provisioning/{request_id}/retry", headers=admin)
    assert retried.status_code == 202
    assert (retried.json["state"], retried.json["waiting_for"]) == ("awaiting", ["manual"])
    assert dispatch(container) == {}
    assert provisioning.keys() == [request_id]


def test_every_failed_request_of_an_account_is_retried_at_once(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(400)
    ids = [order(client, admin, f"SO-{n}").json["request_id"] for n in range(3)]
    assert dispatch(container) == dict.fromkeys(ids, "failed")
    provisioning.answer(200)
    retried = client.post("/api/accounts/acme/provisioning/retry", headers=admin)
    assert retried.status_code == 202 and retried.json == {"retried": 3}
    assert dispatch(container) == dict.fromkeys(ids, "provisioned")
    assert client.post("/api/accounts/acme/provisioning/retry", headers=admin).json == {"retried": 0}
    missing = client.post("/api/accounts/nobody/provisioning/retry", headers=admin)
    assert missing.status_code == 404 and missing.json["error"] == "account_not_found"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_fails_the_request_for_good_naming_the_location(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str, status: int
) -> None:
    elsewhere = provisioning.url.replace("/provision", "/elsewhere")
    provisioning.answer((status, {"Location": elsewhere}))
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "failed"}
    failed = request(client, admin, request_id)
    assert elsewhere in failed["attempts"][0]["error"] and elsewhere in failed["failure"]
    assert [(c.method, c.path) for c in provisioning.calls] == [("POST", "/provision")]  # nothing followed


def test_a_429_is_retried_no_sooner_than_its_retry_after(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(200, (429, {"Retry-After": "120"}))
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "retry"}
    queued = client.get("/api/accounts/acme/timeline", headers=admin).json["items"][0]
    assert queued["kind"] == "request_queued" and queued["detail"]["retry_in_seconds"] >= 120
    assert dispatch(container, seconds_ahead=60) == {}  # the backoff alone (0.2 s in tests) would have sent it
    assert dispatch(container, seconds_ahead=121) == {request_id: "provisioned"}


def test_every_call_carries_the_configured_auth_header(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    settings = dataclasses.replace(container.settings, provisioning_auth_header=("X-Holdfast-Key", "s3cret-key"))
    request_id = order(client, admin, "SO-1").json["request_id"]
    assert dispatch(container, settings=settings) == {request_id: "provisioned"}
    (call,) = provisioning.calls
    assert call.headers.get("X-Holdfast-Key") == "s3cret-key"


def test_a_hold_placed_between_two_calls_of_one_batch_stops_the_rest_of_the_batch(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    """Requests are claimed in batches, but the account is read again before every call."""
    ids = [order(client, admin, f"SO-{n}").json["request_id"] for n in range(5)]
    real = make_provisioner(container.settings)

    class HoldAfterFirstCall:
        def send(self, request: Any) -> Any:
            result = real.send(request)
            if len(provisioning.calls) == 1:  # finance holds the account while the batch is under way
                client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "stop"}, headers=admin)
            return result

    outcomes = dispatch_accounts(
        container.uow, container.context, HoldAfterFirstCall(), container.dispatch_lock, ["acme"], container.clock
    )
    assert outcomes == {ids[0]: "provisioned"}
    assert provisioning.keys() == [ids[0]]
    for request_id in ids[1:]:  # put back, then parked by admission as it is now
        assert (request(client, admin, request_id)["state"], request(client, admin, request_id)["waiting_for"]) == (
            "awaiting",
            ["manual"],
        )
