"""Orders and dispatch against the real database and a real local HTTP server as the provisioning API."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from adapters.db.tables import ProvisioningRequestRow
from bootstrap import make_provisioner
from domain.provisioning import RequestState
from domain.timeline import Change
from services.evaluation import reevaluate_account
from services.provisioning import dispatch_accounts, sweep_requests
from tests.provisioning_server import HANG


def order(
    client: Any, admin: dict[str, str], account_id: str, order_id: str, amount: str = "10.00", **extra: Any
) -> Any:
    return client.post(
        f"/api/accounts/{account_id}/orders",
        json={"order_id": order_id, "amount": amount, **extra},
        headers=admin,
    )


def queued_accounts(container: Any) -> list[str]:
    with container.session_factory() as session:
        return list(
            session.execute(
                select(ProvisioningRequestRow.account_id).where(ProvisioningRequestRow.state == "queued").distinct()
            ).scalars()
        )


def dispatch(container: Any, clock: Any = None) -> dict[str, str]:
    """What the dispatch task does, for every account with a queued request (due by ``clock()``)."""
    provisioner = make_provisioner(container.settings)
    return dispatch_accounts(
        container.uow,
        container.context,
        provisioner,
        container.dispatch_lock,
        queued_accounts(container),
        clock or container.clock,
    )


def later(container: Any, seconds: float = 60) -> Any:
    """A clock that many seconds ahead (past backoffs and the sweep's thresholds)."""
    return lambda: container.clock() + timedelta(seconds=seconds)


def request(client: Any, admin: dict[str, str], request_id: str) -> dict[str, Any]:
    response = client.get(f"/api/provisioning/{request_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


@pytest.fixture
def acme(client: Any, admin: dict[str, str]) -> str:
    assert client.put("/api/accounts/acme", json={"name": "Acme", "currency": "usd"}, headers=admin).status_code == 201
    return "acme"


def test_an_order_without_a_hold_is_sent_once_with_its_request_id_as_idempotency_key(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    accepted = order(client, admin, acme, "SO-1", "1250.00", description="10 seats")
    assert accepted.status_code == 201 and accepted.json["state"] == "queued"
    request_id = accepted.json["request_id"]
    assert dispatch(container) == {request_id: "provisioned"}
    (call,) = provisioning.calls
    assert call.key == request_id
    assert call.body == {
        "request_id": request_id,
        "account_id": "acme",
        "order_id": "SO-1",
        "amount": "1250.00",
        "currency": "usd",
        "description": "10 seats",
    }
    done = request(client, admin, request_id)
    assert done["state"] == "provisioned"
    assert [(a["status"], a["error"]) for a in done["attempts"]] == [(200, None)]
    assert done["attempts"][0]["duration_ms"] >= 0
    assert dispatch(container) == {}  # nothing queued: no second call
    assert len(provisioning.calls) == 1


def test_a_409_means_already_provisioned(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(409)
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "provisioned"}


def test_a_400_fails_for_good_and_keeps_the_reason(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(400)
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "failed"}
    failed = request(client, admin, request_id)
    assert failed["state"] == "failed"
    assert failed["attempts"][0]["status"] == 400 and "answered 400" in failed["attempts"][0]["error"]
    assert "refused" in failed["failure"]
    assert len(provisioning.calls) == 1


def test_5xx_and_timeouts_are_retried_with_the_same_key_then_fail_after_the_limit(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(500, 503, HANG)  # then 500 for the third attempt: the limit (3 in tests)
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "retry"}
    assert request(client, admin, request_id)["state"] == "queued"
    assert dispatch(container) == {}  # not due yet: it waits out its backoff
    assert dispatch(container, later(container)) == {request_id: "retry"}  # the hang: a read timeout
    assert dispatch(container, later(container, 120)) == {request_id: "failed"}
    failed = request(client, admin, request_id)
    assert [(a["status"], a["error"]) for a in failed["attempts"]] == [
        (503, None),
        (None, "timed out waiting for the provisioning API"),
        (500, None),
    ]
    assert failed["failure"].startswith("Gave up after 3 attempts")
    assert provisioning.keys() == [request_id] * 3


def retry_waits(client: Any, admin: dict[str, str]) -> list[float]:
    """The ``retry_in_seconds`` of each retry on the account's timeline, oldest first."""
    items = client.get("/api/accounts/acme/timeline", headers=admin).json["items"]
    return [e["detail"]["retry_in_seconds"] for e in reversed(items) if "retry_in_seconds" in e["detail"]]


def test_5xx_retries_wait_the_configured_backoff_doubling_up_to_its_cap(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    """PROVISIONING_BACKOFF_SECONDS=10, PROVISIONING_BACKOFF_MAX_SECONDS=15: the first wait is drawn
    from 5-10 s; the second would be 20 s, capped to 15 (7.5-15 s drawn); the third too."""
    settings = dataclasses.replace(
        container.settings,
        provisioning_backoff_seconds=10.0,
        provisioning_backoff_max_seconds=15.0,
        provisioning_max_attempts=5,
    )
    ctx = dataclasses.replace(container, settings=settings).context

    def dispatch_at(seconds: float) -> dict[str, str]:
        clock = later(container, seconds)
        return dispatch_accounts(container.uow, ctx, make_provisioner(settings), container.dispatch_lock, [acme], clock)

    provisioning.answer(200, 500, 500, 500)
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    assert dispatch_at(0) == {request_id: "retry"}
    assert dispatch_at(4) == {}  # sooner than half the first delay: not due
    assert dispatch_at(16) == {request_id: "retry"}
    assert dispatch_at(32) == {request_id: "retry"}
    assert dispatch_at(48) == {request_id: "provisioned"}
    first, second, third = retry_waits(client, admin)
    assert 5 <= first <= 10
    assert 7.5 <= second <= 15 and 7.5 <= third <= 15
    assert provisioning.keys() == [request_id] * 4


def test_a_failed_request_is_retried_through_the_api_with_the_same_key(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(400)
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    dispatch(container)
    provisioning.answer(200)
    retried = client.post(f"/api/provisioning/{request_id}/retry", headers=admin)
    assert retried.status_code == 202 and retried.json["state"] == "queued"
    assert dispatch(container) == {request_id: "provisioned"}
    assert provisioning.keys() == [request_id, request_id]
    again = client.post(f"/api/provisioning/{request_id}/retry", headers=admin)
    assert again.status_code == 409 and again.json["error"] == "not_retryable"


def test_orders_are_refused_while_changes_are_blocked(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.post(f"/api/accounts/{acme}/holds", json={"reason": "manual", "note": "fraud review"}, headers=admin)
    refused = order(client, admin, acme, "SO-1")
    assert refused.status_code == 409
    assert refused.json["error"] == "account_on_hold" and refused.json["reasons"] == ["manual"]
    assert "on credit hold" in refused.json["message"]
    assert "ask finance why" in refused.json["message"]  # finance's own hold: nothing for the customer to settle
    assert "settle" not in refused.json["message"]
    assert client.get("/api/provisioning", headers=admin).json["items"] == []


def test_an_order_over_the_credit_limit_waits_until_the_limit_is_raised(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "100.00"}, headers=admin)
    first = order(client, admin, acme, "SO-1", "60.00").json
    second = order(client, admin, acme, "SO-2", "50.00").json
    third = order(client, admin, acme, "SO-3", "10.00").json
    assert first["state"] == "queued"
    assert (second["state"], second["waiting_for"]) == ("awaiting", ["credit_limit"])
    # strictly oldest first: the small third order does not jump the queue
    assert (third["state"], third["waiting_for"]) == ("awaiting", ["credit_limit"])
    account = client.get(f"/api/accounts/{acme}", headers=admin).json
    assert account["exposure"] == "60.00" and account["awaiting"] == 2
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "200.00"}, headers=admin)
    assert request(client, admin, second["request_id"])["state"] == "queued"
    assert request(client, admin, third["request_id"])["state"] == "queued"
    assert client.get(f"/api/accounts/{acme}", headers=admin).json["exposure"] == "120.00"


def test_orders_that_add_up_to_exactly_the_credit_limit_are_all_sent(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "100.00"}, headers=admin)
    first = order(client, admin, acme, "SO-1", "60.00").json
    exactly = order(client, admin, acme, "SO-2", "40.00").json
    over = order(client, admin, acme, "SO-3", "0.01").json
    assert (first["state"], exactly["state"]) == ("queued", "queued")
    assert (over["state"], over["waiting_for"]) == ("awaiting", ["credit_limit"])
    account = client.get(f"/api/accounts/{acme}", headers=admin).json
    assert (account["exposure"], account["awaiting"]) == ("100.00", 1)


def test_the_same_order_id_again_returns_the_same_request_and_sends_nothing_more(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    first = order(client, admin, acme, "SO-1", "10.00")
    dispatch(container)
    again = order(client, admin, acme, "SO-1", "10.00")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["request_id"] == first.json["request_id"]
    assert dispatch(container) == {}
    assert len(provisioning.calls) == 1
    conflict = order(client, admin, acme, "SO-1", "99.00")
    assert conflict.status_code == 409 and conflict.json["error"] == "order_conflict"


def test_a_reevaluation_that_runs_twice_dispatches_nothing_twice(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.post(f"/api/accounts/{acme}/holds", json={"reason": "manual", "note": "fraud review"}, headers=admin)
    client.delete(f"/api/accounts/{acme}/holds/manual?note=cleared", headers=admin)
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "5.00"}, headers=admin)
    order_id = order(client, admin, acme, "SO-1", "10.00").json["request_id"]
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "50.00"}, headers=admin)
    change = Change(container.clock(), "test", "test")
    for _ in range(2):
        with container.uow() as uow:
            reevaluate_account(uow, acme, container.context, change)
            uow.commit()
    kinds = [e["kind"] for e in client.get(f"/api/accounts/{acme}/timeline", headers=admin).json["items"]]
    assert kinds.count("request_queued") == 1
    assert dispatch(container) == {order_id: "provisioned"}
    assert len(provisioning.calls) == 1


def test_cancelling_works_only_before_dispatch(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "0"}, headers=admin)
    waiting = order(client, admin, acme, "SO-1").json["request_id"]
    cancelled = client.post(f"/api/provisioning/{waiting}/cancel", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"
    client.put(f"/api/accounts/{acme}", json={"credit_limit": None}, headers=admin)
    sent = order(client, admin, acme, "SO-2").json["request_id"]
    dispatch(container)
    refused = client.post(f"/api/provisioning/{sent}/cancel", headers=admin)
    assert refused.status_code == 409 and refused.json["error"] == "not_cancellable"
    assert provisioning.keys() == [sent]


def claimed_by_a_worker_that_died(container: Any, request_id: str) -> None:
    """What a dispatcher leaves when it dies between its claim and its record: the request provisioning."""
    now = container.clock()
    with container.uow() as uow:
        uow.accounts.get("acme", lock=True)
        ((found, _),) = uow.requests.next_queued("acme", now, 10)
        assert found.request_id == request_id
        found.move(RequestState.PROVISIONING, Change(now, "holdfast", "dispatch"))
        uow.requests.save(found, now, due_at=now)
        uow.commit()


def test_a_request_whose_sender_died_is_recovered_by_the_sweep_with_the_same_key(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    claimed_by_a_worker_that_died(container, request_id)

    def sweep(now: Any) -> int:
        return sweep_requests(container.uow, container.context, container.dispatch_lock, now)

    assert sweep(container.clock()) == 0  # not provisioning long enough to be looked at
    assert sweep(later(container)()) == 1  # the account's dispatch lock is free: its sender is gone
    assert request(client, admin, request_id)["state"] == "queued"
    assert dispatch(container, later(container, 61)) == {request_id: "provisioned"}
    assert provisioning.keys() == [request_id]


def test_a_request_whose_sender_is_alive_is_left_alone_however_long_its_call_takes(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    claimed_by_a_worker_that_died(container, request_id)
    with container.dispatch_lock.hold(acme) as held:  # a sender in the middle of a very slow call
        assert held
        assert sweep_requests(container.uow, container.context, container.dispatch_lock, later(container, 3600)()) == 0
        assert dispatch(container) == {}  # nor does a second dispatcher send it
    assert request(client, admin, request_id)["state"] == "provisioning"
    assert provisioning.calls == []


def test_without_a_provisioning_url_requests_are_logged_and_marked_provisioned(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    import dataclasses

    from adapters.provisioning_client import LoggingProvisioner

    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    provisioner = make_provisioner(dataclasses.replace(container.settings, provisioning_url=None))
    assert isinstance(provisioner, LoggingProvisioner)
    dispatch_accounts(container.uow, container.context, provisioner, container.dispatch_lock, [acme], container.clock)
    done = request(client, admin, request_id)
    assert done["state"] == "provisioned"
    assert done["attempts"][0]["note"] == LoggingProvisioner.NOTE
    assert provisioning.calls == []


def test_the_provisioning_list_filters_by_state_and_account_and_pages(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "0"}, headers=admin)
    ids = [order(client, admin, acme, f"SO-{n}").json["request_id"] for n in range(5)]
    client.put("/api/accounts/other", json={"credit_limit": "0"}, headers=admin)
    order(client, admin, "other", "SO-X")
    seen: list[str] = []
    cursor = None
    while True:
        query = f"/api/provisioning?state=awaiting&account_id={acme}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=admin).json
        seen += [item["request_id"] for item in page["items"]]
        assert all(item["waiting_for"] == ["credit_limit"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_a_request_that_fails_for_good_frees_its_credit_for_the_orders_waiting_behind_it(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    client.put(f"/api/accounts/{acme}", json={"credit_limit": "100.00"}, headers=admin)
    first = order(client, admin, acme, "SO-1", "80.00").json
    second = order(client, admin, acme, "SO-2", "50.00").json
    assert (first["state"], second["waiting_for"]) == ("queued", ["credit_limit"])
    provisioning.answer(200, 400)  # the first call is refused for good, the next accepted
    # The failure frees the first order's amount: the second is admitted and sent in the same turn.
    assert dispatch(container) == {first["request_id"]: "failed", second["request_id"]: "provisioned"}
    assert provisioning.keys() == [first["request_id"], second["request_id"]]
