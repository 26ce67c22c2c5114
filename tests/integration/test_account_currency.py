"""An account with no currency takes the one Stripe bills it in: its customer's, or its first invoice's.

Orders are in their account's currency: once the account has one, an order carries it (to the
provisioning API too). A currency that was set is never replaced, and none is taken that the
credit limit cannot be written in.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import finalized_invoice, post_stripe, process_pending, stripe_fixture


def account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def put(client: Any, admin: dict[str, str], account_id: str, **fields: Any) -> None:
    response = client.put(f"/api/accounts/{account_id}", json=fields, headers=admin)
    assert response.status_code in (200, 201), response.json


def timeline(client: Any, admin: dict[str, str], account_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/api/accounts/{account_id}/timeline", headers=admin).json["items"])


def order(client: Any, admin: dict[str, str], account_id: str, order_id: str, amount: str) -> dict[str, Any]:
    response = client.post(
        f"/api/accounts/{account_id}/orders", json={"order_id": order_id, "amount": amount}, headers=admin
    )
    assert response.status_code == 201, response.json
    return dict(response.json)


def invoice(client: Any, container: Any, customer: str, invoice_id: str, currency: str) -> None:
    post_stripe(client, finalized_invoice(customer, invoice_id, 5000, currency=currency))
    assert process_pending(container) == ["processed"]


def test_an_account_without_a_currency_takes_its_first_invoices_and_its_orders_carry_it(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any
) -> None:
    put(client, admin, "acme", name="Acme", stripe_customer_id="cus_eur")
    assert account(client, admin, "acme")["currency"] is None
    invoice(client, container, "cus_eur", "in_eur_1", "eur")
    assert account(client, admin, "acme")["currency"] == "eur"
    [taken] = [e for e in timeline(client, admin, "acme") if e["detail"].get("taken_from")]
    assert (taken["kind"], taken["actor"], taken["detail"]) == (
        "account_updated",
        "stripe",
        {"currency": "eur", "taken_from": "stripe invoice in_eur_1"},
    )
    assert order(client, admin, "acme", "SO-1", "12.50")["currency"] == "eur"


def test_invoices_seen_before_the_mapping_give_the_currency_when_the_customer_is_mapped(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    invoice(client, container, "cus_gbp", "in_gbp_1", "gbp")
    put(client, admin, "globex", name="Globex")
    assert account(client, admin, "globex")["currency"] is None
    put(client, admin, "globex", stripe_customer_id="cus_gbp")
    assert account(client, admin, "globex")["currency"] == "gbp"


def test_an_existing_account_without_a_currency_takes_its_stripe_customers(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    put(client, admin, "initech", name="Initech")
    customer = stripe_fixture(
        "customer.updated.zulip-delinquency.json", id="cus_initech", metadata={"crm_account_id": "initech"}
    )
    customer["data"]["object"]["currency"] = "chf"
    post_stripe(client, customer)
    assert process_pending(container) == ["processed"]
    assert account(client, admin, "initech")["currency"] == "chf"
    assert {"currency": "chf", "taken_from": "stripe customer cus_initech"} in [
        e["detail"] for e in timeline(client, admin, "initech")
    ]


def test_a_currency_that_was_set_is_never_replaced(client: Any, admin: dict[str, str], container: Any) -> None:
    put(client, admin, "acme", name="Acme", currency="usd", stripe_customer_id="cus_mixed")
    invoice(client, container, "cus_mixed", "in_mixed_1", "eur")
    assert account(client, admin, "acme")["currency"] == "usd"
    assert order(client, admin, "acme", "SO-1", "10.00")["currency"] == "usd"


def test_only_the_first_invoice_gives_the_currency(client: Any, admin: dict[str, str], container: Any) -> None:
    put(client, admin, "acme", name="Acme", stripe_customer_id="cus_two")
    invoice(client, container, "cus_two", "in_two_1", "sek")
    invoice(client, container, "cus_two", "in_two_2", "nok")
    assert account(client, admin, "acme")["currency"] == "sek"
    assert [e["detail"].get("currency") for e in timeline(client, admin, "acme") if "taken_from" in e["detail"]] == [
        "sek"
    ]


def test_no_currency_is_taken_that_the_credit_limit_cannot_be_written_in(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    put(client, admin, "acme", name="Acme", credit_limit="100.50", stripe_customer_id="cus_yen")
    invoice(client, container, "cus_yen", "in_yen_1", "jpy")
    shown = account(client, admin, "acme")
    assert shown["currency"] is None and shown["credit_limit"] == "100.50"
