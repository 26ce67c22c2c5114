"""Today's Stripe: current API versions' invoices and disputes through the real webhook and database.

The fixtures are built from Stripe's own examples (tests/fixtures/stripe/SOURCES.md). What
decides is the body: an invoice is settled only when its status (or, in old shapes, ``paid``)
says so; a dispute's status is looked up in the domain's table, and one Holdfast has never
seen holds like an open dispute without failing the event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from adapters.stripe_api import API_VERSION
from domain.policy import HoldPolicy, NonPaymentPolicy
from tests.conftest import (
    CURRENT_SHAPES,
    current_fixture,
    inbox_rows,
    post_stripe,
    process_pending,
    stripe_fixture,
)

CUSTOMER = "cus_TcurrentShape01"
PAYER_ACCOUNT = "acct_1TcurrentShape01"  # the customer_account of the current-shape payment intent


def account(client: Any, admin: dict[str, str], account_id: str = "acme") -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def reasons(client: Any, admin: dict[str, str], account_id: str = "acme") -> list[str]:
    return [h["reason"] for h in account(client, admin, account_id)["holds"]]


def deliver(client: Any, container: Any, *events: dict[str, Any]) -> list[str]:
    for event in events:
        response = post_stripe(client, event)
        assert response.status_code == 200, response.json
    return process_pending(container)


@pytest.fixture
def acme(client: Any, admin: dict[str, str]) -> None:
    response = client.put("/api/accounts/acme", json={"stripe_customer_id": CUSTOMER}, headers=admin)
    assert response.status_code == 201, response.json


def test_the_fixtures_are_what_build_py_makes_of_stripes_own_examples() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_fixtures", CURRENT_SHAPES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.RESOURCES.exists():
        pytest.skip(f"{module.RESOURCES} is not beside this clone")
    assert module.main(["--check"]) == 0
    assert module.API_VERSION == API_VERSION


# Invoices: the body settles, never the type.


def test_a_partial_payment_does_not_release_whatever_the_events_type_says(
    client: Any, admin: dict[str, str], container: Any, acme: None
) -> None:
    assert deliver(client, container, current_fixture("invoice.payment_failed.attempt_1.json")) == ["processed"]
    assert reasons(client, admin) == ["non_payment"] and account(client, admin)["exposure"] == "500.00"

    partial = current_fixture("invoice.payment_succeeded.partial_payment.json")
    body = partial["data"]["object"]
    assert (body["status"], body["amount_remaining"]) == ("open", 30000)
    paid_type = current_fixture("invoice.payment_succeeded.partial_payment.json")
    paid_type["type"] = "invoice.paid"  # the same partial body under the other paying type
    updated = current_fixture("invoice.updated.partial_payment.json")
    payment = current_fixture("invoice_payment.paid.json")
    assert deliver(client, container, partial, paid_type, updated, payment) == [
        "processed",
        "processed",
        "processed",
        "ignored",
    ]
    state = account(client, admin)
    assert reasons(client, admin) == ["non_payment"] and state["exposure"] == "300.00"

    assert deliver(client, container, current_fixture("invoice.paid.json")) == ["processed"]
    state = account(client, admin)
    assert state["holds"] == [] and state["exposure"] == "0.00"
    assert deliver(client, container, current_fixture("invoice.overpaid.json")) == ["ignored"]


def test_an_old_paid_event_whose_body_is_still_open_settles_nothing(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_old"}, headers=admin)
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_old", id="in_old")
    paid = stripe_fixture(
        "invoice.payment_succeeded.stripe-ruby-mock.json",
        customer="cus_old",
        id="in_old",
        status="open",
        paid=False,
        amount_paid=500,
        amount_remaining=1500,
    )
    paid["created"] = failed["created"] + 60
    assert deliver(client, container, failed, paid) == ["processed", "processed"]
    assert reasons(client, admin) == ["non_payment"] and account(client, admin)["exposure"] == "15.00"


def test_the_second_failed_attempt_and_a_write_off_hold_and_voiding_releases(
    client: Any, admin: dict[str, str], container: Any, acme: None
) -> None:
    container.policy = HoldPolicy(non_payment=NonPaymentPolicy(failed_attempts=2))
    assert deliver(client, container, current_fixture("invoice.payment_failed.attempt_1.json")) == ["processed"]
    assert reasons(client, admin) == []
    second = current_fixture("invoice.payment_failed.attempt_2.json")
    assert deliver(client, container, second) == ["processed"]
    (hold,) = account(client, admin)["holds"]
    assert hold["cause"] == f"stripe:{second['id']}" and "2 failed payment attempt(s)" in hold["note"]
    assert deliver(client, container, current_fixture("invoice.marked_uncollectible.json")) == ["processed"]
    assert reasons(client, admin) == ["non_payment"]
    assert deliver(client, container, current_fixture("invoice.voided.json")) == ["processed"]
    assert account(client, admin)["holds"] == [] and account(client, admin)["exposure"] == "0.00"


def test_an_invoice_sent_for_payment_counts_with_its_due_date(
    client: Any, admin: dict[str, str], container: Any, acme: None
) -> None:
    event = current_fixture("invoice.finalized.send_invoice.json")
    assert deliver(client, container, event) == ["processed"]
    state = account(client, admin)
    assert state["exposure"] == "1200.00"
    # Its due date (2025-12-31) is more than fifteen days (the default policy) behind today's clock.
    assert event["data"]["object"]["due_date"] + 15 * 86400 < container.clock().timestamp()
    (hold,) = state["holds"]
    assert hold["reason"] == "non_payment" and "15 days past due" in hold["note"]


def test_an_invoice_of_a_customer_represented_by_an_account_counts_for_it(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": PAYER_ACCOUNT}, headers=admin)
    failed = current_fixture("invoice.payment_failed.attempt_1.json", customer=None, customer_account=PAYER_ACCOUNT)
    assert deliver(client, container, failed) == ["processed"]
    assert reasons(client, admin) == ["non_payment"]


def test_an_unknown_invoice_status_counts_as_open_once_warned(
    client: Any, admin: dict[str, str], container: Any, acme: None, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(client, container, current_fixture("invoice.payment_failed.attempt_1.json"))
    odd = current_fixture("invoice.payment_failed.attempt_1.json", status="settling_in_2027")
    again = current_fixture("invoice.payment_failed.attempt_1.json", status="settling_in_2027")
    odd["type"] = again["type"] = "invoice.paid"
    with caplog.at_level(logging.WARNING):
        assert deliver(client, container, odd, again) == ["processed", "processed"]
    assert reasons(client, admin) == ["non_payment"]  # paid only when the body says paid
    assert sum("invoice_status_unknown" in r.getMessage() for r in caplog.records) <= 1


# Disputes: statuses as data, unknown ones harmless.


def dispute_status(container: Any, dispute_id: str = "dp_1TcurrentShape01") -> str:
    from adapters.db.tables import DisputeRow

    with container.session_factory() as session:
        row = session.get(DisputeRow, dispute_id)
        assert row is not None
        return str(row.status)


@pytest.fixture
def disputed(client: Any, admin: dict[str, str], stripe_api_stub: Any) -> Any:
    """acme is the customer_account of the current-shape payment intent; its charge names no customer."""
    client.put("/api/accounts/acme", json={"stripe_customer_id": PAYER_ACCOUNT}, headers=admin)
    charge, intent = current_fixture("charge.json"), current_fixture("payment_intent.json")
    assert charge["customer"] is None and "invoice" not in charge
    assert intent["customer"] is None and intent["customer_account"] == PAYER_ACCOUNT
    stripe_api_stub.add_charge(charge["id"], charge)
    stripe_api_stub.add_payment_intent(intent["id"], intent)
    return stripe_api_stub


def test_a_dispute_is_traced_to_the_customer_account_with_the_pinned_api_version(
    client: Any, admin: dict[str, str], container: Any, disputed: Any
) -> None:
    created = current_fixture("charge.dispute.created.json")
    assert deliver(client, container, created) == ["processed"]
    assert reasons(client, admin) == ["dispute"]
    assert disputed.paths() == ["/v1/charges/ch_3TcurrentShape01", "/v1/payment_intents/pi_3TcurrentShape01"]
    assert {r.headers.get("Stripe-Version") for r in disputed.requests} == {API_VERSION}


@pytest.mark.parametrize(
    ("ending", "held"),
    [("closed.won", False), ("closed.prevented", False), ("closed.lost", True)],
)
def test_a_closed_dispute_releases_when_won_or_prevented_and_holds_when_lost(
    client: Any, admin: dict[str, str], container: Any, disputed: Any, ending: str, held: bool
) -> None:
    deliver(client, container, current_fixture("charge.dispute.created.json"))
    assert deliver(client, container, current_fixture(f"charge.dispute.{ending}.json")) == ["processed"]
    assert reasons(client, admin) == (["dispute"] if held else [])


def test_a_warning_closed_dispute_releases(client: Any, admin: dict[str, str], container: Any, disputed: Any) -> None:
    deliver(client, container, current_fixture("charge.dispute.created.json", status="warning_needs_response"))
    assert deliver(client, container, current_fixture("charge.dispute.closed.won.json", status="warning_closed")) == [
        "processed"
    ]
    assert reasons(client, admin) == []


def test_an_appeal_keeps_the_hold_and_finance_can_still_lift_it(
    client: Any, admin: dict[str, str], container: Any, disputed: Any
) -> None:
    steps = ["created", "closed.lost", "updated.appeal_needs_response", "updated.appeal_under_review"]
    events = [current_fixture(f"charge.dispute.{step}.json") for step in steps]
    assert deliver(client, container, *events) == ["processed"] * 4
    (hold,) = account(client, admin)["holds"]
    assert hold["reason"] == "dispute" and hold["cause"] == f"stripe:{events[0]['id']}"
    assert dispute_status(container) == "appeal_under_review"
    lifted = client.delete("/api/accounts/acme/holds/dispute", json={"note": "written off"}, headers=admin)
    assert lifted.status_code == 200 and lifted.json["holds"] == []


def test_an_unknown_dispute_status_holds_as_open_fails_nothing_and_can_be_lifted(
    client: Any, admin: dict[str, str], container: Any, disputed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(client, container, current_fixture("charge.dispute.created.json"))
    with caplog.at_level(logging.WARNING):
        statuses = deliver(
            client,
            container,
            current_fixture("charge.dispute.updated.appeal_under_review.json", status="arbitration_pending"),
            current_fixture("charge.dispute.updated.appeal_under_review.json", status="arbitration_pending"),
        )
    assert statuses == ["processed", "processed"]
    assert all(row.status == "processed" and row.last_error is None for row in inbox_rows(container))
    assert reasons(client, admin) == ["dispute"]
    assert dispute_status(container) == "arbitration_pending"  # recorded as Stripe sent it
    assert sum("dispute_status_unknown" in r.getMessage() for r in caplog.records) <= 1
    lifted = client.delete("/api/accounts/acme/holds/dispute", json={"note": "written off"}, headers=admin)
    assert lifted.status_code == 200 and lifted.json["holds"] == []


def test_a_dispute_under_way_cannot_be_lifted(
    client: Any, admin: dict[str, str], container: Any, disputed: Any
) -> None:
    deliver(client, container, current_fixture("charge.dispute.created.json"))
    refused = client.delete("/api/accounts/acme/holds/dispute", json={"note": "written off"}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"] == "dispute_open"
    assert "under way" in refused.json["message"]


def test_a_dispute_status_that_is_no_status_fails_the_event_with_a_sentence(
    client: Any, admin: dict[str, str], container: Any, disputed: Any
) -> None:
    event = current_fixture("charge.dispute.created.json", status="Needs Response!" * 5)
    assert deliver(client, container, event) == ["failed"]
    (row,) = inbox_rows(container)
    assert row.last_error == "MalformedEvent: The dispute's status is not a status Stripe could send."


# Types Holdfast does not read, and thin events.


@pytest.mark.parametrize("event_type", ["invoice_payment.paid", "invoice.overpaid", "invoice.will_be_due", "x.y.z"])
def test_an_event_type_holdfast_does_not_read_is_stored_and_ignored_with_the_hold_unchanged(
    client: Any, admin: dict[str, str], container: Any, acme: None, event_type: str
) -> None:
    deliver(client, container, current_fixture("invoice.payment_failed.attempt_1.json"))
    other = current_fixture("invoice.paid.json")
    other["type"] = event_type
    assert deliver(client, container, other) == ["ignored"]
    assert reasons(client, admin) == ["non_payment"]


def test_a_thin_event_is_refused_with_a_sentence_that_asks_for_snapshot_events(client: Any, container: Any) -> None:
    thin = json.loads((CURRENT_SHAPES / "v2.core.event.v1.invoice.paid.json").read_text())
    response = post_stripe(client, thin)
    assert response.status_code == 400
    assert response.json["error"] == "thin_event" and "snapshot" in response.json["message"]
    assert inbox_rows(container) == []


# The same event in two shapes: the webhook's endpoint version and the Events API's.


@pytest.mark.parametrize("first", ["webhook", "reconciliation"])
def test_the_same_events_in_two_shapes_make_one_fact_whichever_is_stored_first(
    client: Any, admin: dict[str, str], container: Any, stripe_api_stub: Any, first: str
) -> None:
    from datetime import UTC, datetime, timedelta

    from adapters.stripe_api import StripeApi
    from adapters.stripe_parser import HANDLED_EVENT_TYPES
    from services.reconciliation import reconcile_stripe
    from tests.conftest import STRIPE_API_KEY
    from tests.stripe_shapes import InvoiceStep, render

    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_twoShapes"}, headers=admin)
    now = datetime.now(UTC).replace(microsecond=0)
    start = int(now.timestamp()) - 300
    life = [
        InvoiceStep("evt_two_fail", "invoice.payment_failed", start, "open", 1, 5000, 0),
        InvoiceStep("evt_two_part", "invoice.payment_succeeded", start + 60, "open", 1, 5000, 2000),
    ]
    webhook = [render(step, "2020-08-27", "cus_twoShapes", "in_two_shapes") for step in life]
    listed = [render(step, "2026-10-28.endive", "cus_twoShapes", "in_two_shapes") for step in life]
    stripe_api_stub.add_events(*listed)

    def by_webhook() -> None:
        for event in webhook:
            assert post_stripe(client, event).status_code == 200

    def by_reconciliation() -> None:
        reconcile_stripe(
            container.uow,
            container.deliveries,
            StripeApi(STRIPE_API_KEY, stripe_api_stub.url),
            now=now,
            lookback=timedelta(minutes=15),
            types=sorted(HANDLED_EVENT_TYPES),
            pause_between_pages=0,
        )

    for deliver_now in (by_webhook, by_reconciliation) if first == "webhook" else (by_reconciliation, by_webhook):
        deliver_now()
    process_pending(container)
    rows = inbox_rows(container)
    assert sorted(row.external_id for row in rows) == ["evt_two_fail", "evt_two_part"]  # each stored once
    stored_versions = {json.loads(row.payload)["api_version"] for row in rows}
    assert stored_versions == {"2020-08-27" if first == "webhook" else "2026-10-28.endive"}
    state = account(client, admin)
    assert reasons(client, admin) == ["non_payment"] and state["exposure"] == "30.00"
