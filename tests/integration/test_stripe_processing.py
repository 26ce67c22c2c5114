"""Stripe events through the real webhook and the real database, processed by the worker's service call."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, inbox_rows, post_stripe, process_pending, stripe_fixture

HANDLED = {
    "charge.dispute.created",
    "charge.dispute.closed",
    "invoice.payment_failed",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.payment_action_required",
}  # customer.updated as recorded has no metadata.crm_account_id: nothing to map, so ignored


def get_account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def map_account(client: Any, admin: dict[str, str], account_id: str, customer: str) -> None:
    response = client.put(f"/api/accounts/{account_id}", json={"stripe_customer_id": customer}, headers=admin)
    assert response.status_code in (200, 201), response.json


def reasons(client: Any, admin: dict[str, str], account_id: str) -> list[str]:
    return [h["reason"] for h in get_account(client, admin, account_id)["holds"]]


def timeline_kinds(client: Any, admin: dict[str, str], account_id: str) -> list[str]:
    return [e["kind"] for e in client.get(f"/api/accounts/{account_id}/timeline", headers=admin).json["items"]]


EVENT_FILES = sorted(
    p.name for p in (FIXTURES / "stripe").glob("*.json") if not p.name.startswith(("resources", "events_list"))
)


@pytest.mark.parametrize("name", EVENT_FILES)
def test_every_recorded_stripe_event_is_stored_and_processed_or_ignored(
    client: Any, container: Any, stripe_api_stub: Any, name: str
) -> None:
    event = stripe_fixture(name)
    charge = event["data"]["object"].get("charge")
    if event["type"].startswith("charge.dispute."):  # disputes carry no customer: Stripe's API says whose
        event["data"]["object"].setdefault("id", "dp_recorded_without_id")
        stripe_api_stub.add_charge(charge, {"id": charge, "object": "charge", "customer": "cus_disputed"})
    response = post_stripe(client, event)
    assert response.status_code == 200, response.json
    assert response.json == {"received": True, "duplicate": False}
    assert process_pending(container) == ["processed" if event["type"] in HANDLED else "ignored"]
    (row,) = inbox_rows(container)
    assert (row.external_id, row.event_type, row.attempts) == (event["id"], event["type"], 1)
    assert json.loads(row.payload) == event  # stored raw, as received


def test_a_failed_payment_in_the_old_shape_holds_the_account(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    map_account(client, admin, "acme", "cus_old")
    # 2016-07-06 API: no status, no amount_remaining, attempt_count 0 on a failed attempt.
    event = stripe_fixture("invoice.payment_failed.zulip.json", customer="cus_old", amount_due=5000)
    assert event["api_version"] == "2016-07-06" and "status" not in event["data"]["object"]
    post_stripe(client, event)
    process_pending(container)
    account = get_account(client, admin, "acme")
    assert [h["reason"] for h in account["holds"]] == ["non_payment"]
    assert account["exposure"] == "50.00"


def test_the_recorded_old_failure_of_zero_amount_holds_nothing(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    map_account(client, admin, "acme", "cus_00000000000000")
    post_stripe(client, stripe_fixture("invoice.payment_failed.zulip.json"))  # amount_due 0, as recorded
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin, "acme") == []


def test_current_basil_events_release_the_hold(client: Any, admin: dict[str, str], container: Any) -> None:
    listing = json.loads(
        (FIXTURES / "stripe" / "events_list.invoice.payment_succeeded+invoice.paid.zulip-basil.json").read_text()
    )
    basil = next(e for e in listing["data"] if e["type"] == "invoice.paid")
    invoice = basil["data"]["object"]
    assert basil["api_version"].endswith("basil") and "paid" not in invoice and "subscription" not in invoice
    map_account(client, admin, "acme", invoice["customer"])
    failed = stripe_fixture(
        "invoice.payment_failed.stripe-ruby-mock.json", customer=invoice["customer"], id=invoice["id"]
    )
    failed["created"] = basil["created"] - 100
    post_stripe(client, failed)
    process_pending(container)
    assert reasons(client, admin, "acme") == ["non_payment"]
    basil = {**basil, "id": "evt_basil_paid"}
    post_stripe(client, basil)
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin, "acme") == []
    assert get_account(client, admin, "acme")["exposure"] == "0.00"


def test_a_duplicate_delivery_is_stored_once_and_has_one_effect(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    map_account(client, admin, "acme", "cus_dup")
    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_dup")
    assert post_stripe(client, event).json == {"received": True, "duplicate": False}
    assert post_stripe(client, event).json == {"received": True, "duplicate": True}
    process_pending(container)
    assert post_stripe(client, event).json == {"received": True, "duplicate": True}
    assert process_pending(container) == []
    assert len(inbox_rows(container)) == 1
    assert timeline_kinds(client, admin, "acme").count("hold_placed") == 1


def test_concurrent_deliveries_of_one_event_are_settled_by_the_unique_key(app: Any, container: Any) -> None:
    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_race")
    barrier = threading.Barrier(8)
    answers: list[Any] = []

    def deliver() -> None:
        with app.test_client() as own_client:
            barrier.wait()
            answers.append(post_stripe(own_client, event))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 8
    assert sorted(a.json["duplicate"] for a in answers) == [False] + [True] * 7
    assert len(inbox_rows(container)) == 1


def test_a_payment_delivered_before_an_older_failure_leaves_no_hold(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    map_account(client, admin, "acme", "cus_late")
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_late", id="in_late")
    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_late", id="in_late")
    paid["created"] = failed["created"] + 3600
    post_stripe(client, paid)
    process_pending(container)
    post_stripe(client, failed)
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin, "acme") == []
    assert "hold_placed" not in timeline_kinds(client, admin, "acme")


def test_events_for_an_unmapped_customer_count_once_the_mapping_appears(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_later"))
    assert process_pending(container) == ["processed"]
    customer = stripe_fixture(
        "customer.updated.zulip-delinquency.json", id="cus_later", metadata={"crm_account_id": "crm-1"}
    )
    customer["data"]["object"]["name"] = "Later Ltd"
    post_stripe(client, customer)
    assert process_pending(container) == ["processed"]
    account = get_account(client, admin, "crm-1")
    assert account["name"] == "Later Ltd" and account["stripe_customer_id"] == "cus_later"
    assert [h["reason"] for h in account["holds"]] == ["non_payment"]
    assert timeline_kinds(client, admin, "crm-1") == ["hold_placed", "customer_mapped", "account_created"]


def test_mapping_through_the_api_applies_earlier_events(client: Any, admin: dict[str, str], container: Any) -> None:
    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_api"))
    process_pending(container)
    assert client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin).status_code == 201
    assert reasons(client, admin, "acme") == []
    map_account(client, admin, "acme", "cus_api")
    assert reasons(client, admin, "acme") == ["non_payment"]


def test_an_older_customer_event_does_not_undo_a_newer_mapping(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    newer = stripe_fixture("customer.updated.zulip-delinquency.json", id="cus_m", metadata={"crm_account_id": "new"})
    older = stripe_fixture("customer.updated.zulip-delinquency.json", id="cus_m", metadata={"crm_account_id": "old"})
    older["created"] = newer["created"] - 10
    post_stripe(client, newer)
    post_stripe(client, older)
    assert process_pending(container) == ["processed", "processed"]
    assert get_account(client, admin, "new")["stripe_customer_id"] == "cus_m"
    assert client.get("/api/accounts/old", headers=admin).status_code == 404


def test_the_api_refuses_to_take_a_customer_mapped_to_another_account(client: Any, admin: dict[str, str]) -> None:
    map_account(client, admin, "first", "cus_taken")
    response = client.put("/api/accounts/second", json={"stripe_customer_id": "cus_taken"}, headers=admin)
    assert response.status_code == 409
    assert response.json["error"] == "customer_already_mapped"
    assert client.get("/api/accounts/second", headers=admin).status_code == 404


def test_the_hold_stays_while_a_second_invoice_still_fails(client: Any, admin: dict[str, str], container: Any) -> None:
    map_account(client, admin, "acme", "cus_two")
    first = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_two", id="in_first")
    second = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_two", id="in_second")
    paid_first = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_two", id="in_first")
    paid_first["created"] = first["created"] + 60
    for event in (first, second, paid_first):
        post_stripe(client, event)
    process_pending(container)
    account = get_account(client, admin, "acme")
    assert [h["reason"] for h in account["holds"]] == ["non_payment"]
    assert account["exposure"] == "20.00"
    paid_second = stripe_fixture("invoice.voided.stripe-sync-engine.json", customer="cus_two", id="in_second")
    paid_second["created"] = second["created"] + 60
    post_stripe(client, paid_second)
    process_pending(container)
    assert reasons(client, admin, "acme") == []


def test_an_invoice_marked_uncollectible_holds_until_paid(client: Any, admin: dict[str, str], container: Any) -> None:
    map_account(client, admin, "acme", "cus_unc")
    # Recorded upstream with status "open": the event type says what happened.
    marked = stripe_fixture("invoice.marked_uncollectible.zulip.json", customer="cus_unc", id="in_unc")
    post_stripe(client, marked)
    process_pending(container)
    assert reasons(client, admin, "acme") == ["non_payment"]
    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_unc", id="in_unc")
    paid["created"] = marked["created"] + 60
    post_stripe(client, paid)
    process_pending(container)
    assert reasons(client, admin, "acme") == []


def test_a_payment_never_lifts_a_manual_hold(client: Any, admin: dict[str, str], container: Any) -> None:
    map_account(client, admin, "acme", "cus_man")
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_man", id="in_m")
    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_man", id="in_m")
    paid["created"] = failed["created"] + 1
    for event in (failed, paid):
        post_stripe(client, event)
    process_pending(container)
    assert reasons(client, admin, "acme") == ["manual"]


def test_an_event_that_fails_is_kept_with_its_error_and_can_be_replayed(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    map_account(client, admin, "acme", "cus_rep")
    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_rep")
    real_handler = container.handlers["stripe"]

    def broken(*args: Any) -> Any:
        raise RuntimeError("the handler had a bug")

    container.handlers["stripe"] = broken
    try:
        post_stripe(client, event)
        assert process_pending(container) == ["failed"]
    finally:
        container.handlers["stripe"] = real_handler
    failed = client.get("/api/events?status=failed", headers=admin).json["items"]
    assert [(e["event_id"], e["status"], e["attempts"]) for e in failed] == [(event["id"], "failed", 1)]
    assert "the handler had a bug" in failed[0]["last_error"]
    assert reasons(client, admin, "acme") == []

    replayed = client.post(f"/api/events/stripe/{event['id']}/replay", headers=admin)
    assert replayed.status_code == 202 and replayed.json["status"] == "received"
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin, "acme") == ["non_payment"]
    again = client.post(f"/api/events/stripe/{event['id']}/replay", headers=admin)
    assert again.status_code == 409 and again.json["error"] == "not_replayable"


def test_an_invoice_event_without_a_customer_fails_with_a_clear_error(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer=None))
    assert process_pending(container) == ["failed"]
    (row,) = inbox_rows(container)
    assert row.last_error == "MalformedEvent: The invoice has no customer (neither customer nor customer_account)."


def test_stored_events_left_unprocessed_are_swept_back_onto_the_queue(container: Any, client: Any) -> None:
    from datetime import timedelta

    from services.inbox import sweep

    queued: list[int] = []

    class Recording:
        def process_inbox_event(self, inbox_id: int) -> None:
            queued.append(inbox_id)

    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_sw"))
    (row,) = inbox_rows(container)
    later = container.clock() + timedelta(seconds=120)
    assert sweep(container.uow(), Recording(), older_than=timedelta(seconds=60), now=container.clock()) == 0
    assert sweep(container.uow(), Recording(), older_than=timedelta(seconds=60), now=later) == 1
    assert queued == [row.id]
    # Just re-queued: not again until the age has passed once more.
    assert sweep(container.uow(), Recording(), older_than=timedelta(seconds=60), now=later) == 0
    process_pending(container)
    assert sweep(container.uow(), Recording(), older_than=timedelta(seconds=0), now=later + timedelta(hours=1)) == 0


def test_the_stripe_fixture_directory_is_present() -> None:
    assert Path(FIXTURES, "stripe", "SOURCES.md").exists(), f"shared fixtures not found at {FIXTURES}"


def test_a_row_the_relay_could_not_queue_is_queued_by_its_next_try_without_waiting_for_the_sweep(
    container: Any, client: Any
) -> None:
    from services.inbox import relay_stored

    class BrokerDown:
        def process_inbox_event(self, inbox_id: int) -> None:
            raise ConnectionError("the broker is down")

    queued: list[int] = []

    class Recording:
        def process_inbox_event(self, inbox_id: int) -> None:
            queued.append(inbox_id)

    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_relay"))
    (row,) = inbox_rows(container)
    assert row.queued_at is None  # stored; the web queued nothing
    now = container.clock()
    with pytest.raises(ConnectionError):
        relay_stored(container.uow(), BrokerDown(), now=now)
    (row,) = inbox_rows(container)
    assert row.queued_at is None  # not marked queued: the broker never took it
    assert relay_stored(container.uow(), Recording(), now=now) == 1  # the next try sends it at once
    assert relay_stored(container.uow(), Recording(), now=now) == 0  # and only once
    assert queued == [row.id]
    assert process_pending(container) == ["processed"]
