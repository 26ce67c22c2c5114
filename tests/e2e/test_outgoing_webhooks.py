"""Holdfast's own events reach a real subscriber (a local HTTP server) through the real outgoing worker.

The outgoing worker is the Procfile's ``outgoing`` process. Every delivery is verified with
``standardwebhooks`` as any subscriber would; retries keep their ``webhook-id``; one account's
deliveries arrive in order; a subscriber hanging on one account delays no other account; a worker
killed mid-send leaves the delivery to be sent again, with the same id, once a worker is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from domain.outgoing import EVENT_TYPES
from tests.conftest import wait_for
from tests.integration.test_metrics import grew, scrape
from tests.subscriber_server import HANG, Delivery, SubscriberServer, running_subscriber
from tests.workers import CeleryProcess, start_outgoing


@pytest.fixture(scope="session")
def subscriber_server() -> Iterator[SubscriberServer]:
    with running_subscriber() as server:
        yield server


@pytest.fixture
def subscriber(subscriber_server: SubscriberServer) -> Iterator[SubscriberServer]:
    subscriber_server.reset()
    yield subscriber_server
    subscriber_server.reset()


@pytest.fixture
def outgoing_worker(worker_env: dict[str, str], container: Any) -> Iterator[CeleryProcess]:
    process = start_outgoing(worker_env)
    try:
        yield process
    finally:
        process.stop()


def subscribe(client: Any, admin: dict[str, str], url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = client.post(
        "/api/subscriptions", json={"url": url, "events": events or list(EVENT_TYPES)}, headers=admin
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    created: dict[str, Any] = response.json
    return created


def account(client: Any, admin: dict[str, str], account_id: str) -> None:
    assert client.put(f"/api/accounts/{account_id}", json={"name": account_id}, headers=admin).status_code == 201


def place_hold(client: Any, admin: dict[str, str], account_id: str) -> None:
    response = client.post(f"/api/accounts/{account_id}/holds", json={"reason": "manual", "note": "n"}, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)


def lift_hold(client: Any, admin: dict[str, str], account_id: str) -> None:
    assert client.delete(f"/api/accounts/{account_id}/holds/manual?note=paid", headers=admin).status_code == 200


def answered(subscriber: SubscriberServer, account_id: str | None = None) -> list[Delivery]:
    """Deliveries the subscriber answered 2xx (of one account)."""
    return [
        d
        for d in subscriber.received()
        if d.ended is not None
        and isinstance(d.answer, int)
        and 200 <= d.answer < 300
        and (account_id is None or d.account_id == account_id)
    ]


def attempts_logged(client: Any, admin: dict[str, str], subscription_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/subscriptions/{subscription_id}/deliveries", headers=admin)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json["items"]
    return items


def test_every_delivery_verifies_with_standardwebhooks(
    client: Any, admin: dict[str, str], subscriber: SubscriberServer, outgoing_worker: CeleryProcess
) -> None:
    created = subscribe(client, admin, subscriber.url)
    account(client, admin, "acme")
    place_hold(client, admin, "acme")
    got = wait_for(lambda: len(answered(subscriber)) >= 2 and answered(subscriber), what="two deliveries")
    webhook = Webhook(created["secret"])
    verified = [webhook.verify(d.body, d.headers) for d in got]
    assert [e["type"] for e in verified] == ["account.hold_placed", "account.enforcement_changed"]
    assert verified[0]["data"]["account_id"] == "acme" and verified[0]["data"]["reason"] == "manual"
    assert set(verified[0]) == {"type", "timestamp", "data"}
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").verify(got[0].body, got[0].headers)


def test_a_subscriber_answering_500_then_200_gets_the_same_webhook_id_twice(
    client: Any, admin: dict[str, str], subscriber: SubscriberServer, outgoing_worker: CeleryProcess
) -> None:
    subscriber.answer(200, 500)
    before = scrape(client, admin)
    created = subscribe(client, admin, subscriber.url, ["account.hold_placed"])
    account(client, admin, "acme")
    place_hold(client, admin, "acme")
    wait_for(lambda: answered(subscriber), what="the retry to be answered 200")
    received = subscriber.received()
    assert [d.answer for d in received] == [500, 200]
    assert received[0].webhook_id == received[1].webhook_id
    assert received[0].body == received[1].body
    for delivery in received:
        Webhook(created["secret"]).verify(delivery.body, delivery.headers)
    log = wait_for(
        lambda: (
            len(attempts_logged(client, admin, created["subscription_id"])) == 2
            and attempts_logged(client, admin, created["subscription_id"])
        ),
        what="both attempts in the log",
    )
    assert [(a["status"], a["type"], a["webhook_id"]) for a in log] == [
        (200, "account.hold_placed", received[0].webhook_id),
        (500, "account.hold_placed", received[0].webhook_id),
    ]

    def counted(outcome: str) -> float:
        return grew(before, scrape(client, admin), "holdfast_outgoing_deliveries_total", outcome=outcome)

    wait_for(lambda: counted("retry") == 1 and counted("delivered") == 1, what="both attempts in /metrics")


def test_one_accounts_changes_arrive_in_order_even_when_the_first_failed_once(
    client: Any, admin: dict[str, str], subscriber: SubscriberServer, outgoing_worker: CeleryProcess
) -> None:
    subscriber.answer(200, 500)  # the first delivery (the hold placed) fails once
    subscribe(client, admin, subscriber.url, ["account.hold_placed", "account.hold_released"])
    account(client, admin, "acme")
    place_hold(client, admin, "acme")
    lift_hold(client, admin, "acme")
    wait_for(lambda: len(answered(subscriber, "acme")) == 2, what="both changes delivered")
    received = subscriber.received()
    assert [(d.event["type"], d.answer) for d in received] == [
        ("account.hold_placed", 500),
        ("account.hold_placed", 200),
        ("account.hold_released", 200),
    ]


def test_a_subscriber_hanging_on_one_account_does_not_delay_a_hold_of_another(
    client: Any, admin: dict[str, str], subscriber: SubscriberServer, outgoing_worker: CeleryProcess
) -> None:
    subscriber.answer(200, rule=lambda d: HANG if d.account_id == "acme" else None, hang_seconds=60)
    subscribe(client, admin, subscriber.url, ["account.hold_placed"])
    account(client, admin, "acme")
    account(client, admin, "globex")
    place_hold(client, admin, "acme")
    hanging = wait_for(lambda: subscriber.received(), what="acme's delivery to reach the subscriber")[0]

    started = time.monotonic()
    place_hold(client, admin, "globex")
    wait_for(lambda: answered(subscriber, "globex"), timeout=60, what="globex's delivery")
    took = time.monotonic() - started
    # Generous: acme's request is held for the whole timeout (10 s here); globex's went meanwhile.
    assert took < 8.0, f"globex's hold and its delivery took {took:.1f}s"
    assert hanging.ended is None, "acme's delivery was still hanging when globex's arrived"


def test_a_worker_killed_mid_send_sends_the_delivery_again_with_the_same_id(
    client: Any,
    admin: dict[str, str],
    subscriber: SubscriberServer,
    outgoing_worker: CeleryProcess,
    worker_env: dict[str, str],
) -> None:
    subscriber.answer(HANG, hang_seconds=60)
    created = subscribe(client, admin, subscriber.url, ["account.hold_placed"])
    account(client, admin, "acme")
    place_hold(client, admin, "acme")
    first = wait_for(lambda: subscriber.received(), what="the delivery to reach the subscriber")[0]

    outgoing_worker.kill()  # SIGKILL while the subscriber holds the request: no answer was recorded
    subscriber.answer(200)
    subscriber.release()
    restarted = start_outgoing(worker_env)
    try:
        again = wait_for(lambda: answered(subscriber), timeout=60, what="the delivery sent again")[0]
    finally:
        restarted.stop()
    assert again.webhook_id == first.webhook_id
    Webhook(created["secret"]).verify(again.body, again.headers)
    log = attempts_logged(client, admin, created["subscription_id"])
    assert [a["status"] for a in log] == [200, None]
    assert "worker was lost" in log[1]["error"]


def test_a_subscriber_hanging_on_every_account_does_not_delay_another_subscriber(
    client: Any, admin: dict[str, str], subscriber: SubscriberServer, outgoing_worker: CeleryProcess
) -> None:
    # More of the hanging subscriber's accounts than the outgoing worker has threads (8 by default).
    with running_subscriber() as hanging:
        hanging.answer(HANG, hang_seconds=60)
        subscribe(client, admin, hanging.url, ["account.hold_placed"])
        subscribe(client, admin, subscriber.url, ["account.hold_placed"])
        busy = [f"busy-{i:02d}" for i in range(12)]
        for account_id in busy:
            account(client, admin, account_id)
            place_hold(client, admin, account_id)
        wait_for(lambda: len(hanging.received()) >= 2, what="the hanging subscriber to hold requests")
        account(client, admin, "zeta")

        started = time.monotonic()
        place_hold(client, admin, "zeta")
        wait_for(lambda: answered(subscriber, "zeta"), timeout=90, what="zeta's delivery to the other subscriber")
        took = time.monotonic() - started
        # Generous: each hanging request holds on for the whole timeout (10 s here).
        assert took < 8.0, f"zeta's delivery to a healthy subscriber took {took:.1f}s"
