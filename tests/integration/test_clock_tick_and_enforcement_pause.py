"""Holds that follow the calendar, the clock's tick, and enforcement pauses, on the real database."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.tick import tick
from tests.conftest import finalized_invoice, post_stripe, process_pending, stripe_fixture
from tests.dynamics_bodies import account_create, account_update, encode, salesorder

ACCOUNT = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"


def get_account(client: Any, admin: dict[str, str], account_id: str = "acme") -> dict[str, Any]:
    return dict(client.get(f"/api/accounts/{account_id}", headers=admin).json)


def kinds(client: Any, admin: dict[str, str], account_id: str = "acme") -> list[str]:
    return [e["kind"] for e in client.get(f"/api/accounts/{account_id}/timeline", headers=admin).json["items"]]


def manual_invoice(customer: str, invoice_id: str, due: datetime, cents: int = 5000) -> dict[str, Any]:
    """invoice.finalized of an invoice sent for manual payment."""
    return finalized_invoice(
        customer, invoice_id, cents, collection_method="send_invoice", due_date=int(due.timestamp())
    )


def test_an_invoice_passing_its_due_date_plus_the_policy_days_is_held_by_the_tick_and_released_when_paid(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    now = container.clock()
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_due"}, headers=admin)
    due = now - timedelta(days=14)  # one day before the 15 days of the default policy
    finalized = manual_invoice("cus_due", "in_due", due)
    post_stripe(client, finalized)
    process_pending(container)
    assert get_account(client, admin)["holds"] == []

    assert tick(container.uow(), container.context, now + timedelta(hours=1)) == 0  # not yet: nothing due
    assert tick(container.uow(), container.context, now + timedelta(days=1, seconds=1)) == 1
    (hold,) = get_account(client, admin)["holds"]
    assert hold["reason"] == "non_payment" and "15 days past due" in hold["note"]
    assert tick(container.uow(), container.context, now + timedelta(days=2)) == 0  # nothing left to do by time

    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_due", id="in_due")
    paid["created"] = finalized["created"] + 60
    post_stripe(client, paid)
    process_pending(container)
    assert get_account(client, admin)["holds"] == []


def test_invoice_overdue_is_a_fact_like_any_other(client: Any, admin: dict[str, str], container: Any) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_od"}, headers=admin)
    overdue = manual_invoice("cus_od", "in_od", container.clock() - timedelta(days=16))
    overdue["type"] = "invoice.overdue"
    post_stripe(client, overdue)
    assert process_pending(container) == ["processed"]
    assert [h["reason"] for h in get_account(client, admin)["holds"]] == ["non_payment"]


def test_two_ticks_at_once_change_nothing_twice(client: Any, admin: dict[str, str], container: Any) -> None:
    now = container.clock()
    for n in range(5):
        client.put(f"/api/accounts/acme-{n}", json={"stripe_customer_id": f"cus_t{n}"}, headers=admin)
        post_stripe(client, manual_invoice(f"cus_t{n}", f"in_t{n}", now - timedelta(days=14)))
    process_pending(container)
    later = now + timedelta(days=2)
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        counts.append(tick(container.uow(), container.context, later))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 5
    for n in range(5):
        assert kinds(client, admin, f"acme-{n}").count("hold_placed") == 1


def test_a_pause_lets_awaiting_orders_go_and_holds_apply_again_when_it_ends(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    client.post(
        "/webhooks/dynamics?code=" + container.settings.dynamics_webhook_key,
        data=encode(account_create(ACCOUNT, credit_on_hold=True)),
        content_type="application/json",
    )
    process_pending(container)
    first = client.post(f"/api/accounts/{ACCOUNT}/orders", json={"order_id": "SO-1", "amount": "10"}, headers=admin)
    assert first.json["waiting_for"] == ["credit_review"]

    until = (container.clock() + timedelta(days=3)).isoformat()
    paused = client.put(
        f"/api/accounts/{ACCOUNT}/enforcement-pause", json={"until": until, "note": "key customer"}, headers=admin
    )
    assert paused.status_code == 200
    body = paused.json
    assert body["on_hold"] and not body["parks_provisioning"] and not body["blocks_changes"]
    assert body["enforcement_paused_until"] is not None
    assert client.get(f"/api/provisioning/{first.json['request_id']}", headers=admin).json["state"] == "queued"

    ended = client.delete(f"/api/accounts/{ACCOUNT}/enforcement-pause?note=paid", headers=admin)
    assert ended.status_code == 200 and ended.json["enforcement_paused_until"] is None
    assert ended.json["parks_provisioning"]
    second = client.post(f"/api/accounts/{ACCOUNT}/orders", json={"order_id": "SO-2", "amount": "10"}, headers=admin)
    assert second.json["waiting_for"] == ["credit_review"]
    timeline = kinds(client, admin, ACCOUNT)
    assert "enforcement_paused" in timeline and "enforcement_resumed" in timeline
    assert client.delete(f"/api/accounts/{ACCOUNT}/enforcement-pause?note=paid", headers=admin).status_code == 404


def test_a_pause_expires_by_time_through_the_tick(client: Any, admin: dict[str, str], container: Any) -> None:
    client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin)
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    now = container.clock()
    client.put(
        "/api/accounts/acme/enforcement-pause",
        json={"until": (now + timedelta(hours=1)).isoformat(), "note": "one hour"},
        headers=admin,
    )
    assert not get_account(client, admin)["blocks_changes"]
    assert tick(container.uow(), container.context, now + timedelta(minutes=59)) == 0
    assert tick(container.uow(), container.context, now + timedelta(hours=1, seconds=1)) == 1
    account = get_account(client, admin)
    assert account["blocks_changes"] and account["enforcement_paused_until"] is None
    resumed = client.get("/api/accounts/acme/timeline", headers=admin).json["items"][0]
    assert resumed["kind"] == "enforcement_resumed" and resumed["detail"] == {"expired": True}
    assert resumed["cause"] == "clock"


def test_a_pause_must_end_in_the_future_and_carry_a_time_zone(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = client.put(
        "/api/accounts/acme/enforcement-pause", json={"until": past, "note": "too late"}, headers=admin
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_pause"
    naive = client.put(
        "/api/accounts/acme/enforcement-pause", json={"until": "2099-01-01T00:00:00", "note": "naive"}, headers=admin
    )
    assert naive.status_code == 400 and naive.json["error"] == "validation_error"
    assert "enforcement_paused" not in kinds(client, admin)


def test_a_crm_order_accepted_during_a_pause_is_provisioned_and_a_new_one_waits_after_it(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    key = container.settings.dynamics_webhook_key
    client.post(
        f"/webhooks/dynamics?code={key}",
        data=encode(account_create(ACCOUNT, credit_on_hold=True)),
        content_type="application/json",
    )
    process_pending(container)
    until = (container.clock() + timedelta(days=1)).isoformat()
    client.put(
        f"/api/accounts/{ACCOUNT}/enforcement-pause", json={"until": until, "note": "key customer"}, headers=admin
    )
    client.post(
        f"/webhooks/dynamics?code={key}",
        data=encode(salesorder(str(uuid.uuid4()), ACCOUNT, state=1)),
        content_type="application/json",
    )
    process_pending(container)
    (request,) = client.get("/api/provisioning", headers=admin).json["items"]
    assert request["state"] == "queued"
    client.post(
        f"/webhooks/dynamics?code={key}",
        data=encode(account_update(ACCOUNT, {"creditonhold": False})),
        content_type="application/json",
    )
    process_pending(container)
    assert get_account(client, admin, ACCOUNT)["holds"] == []
