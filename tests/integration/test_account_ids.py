"""GUID account ids are one account however they are written (case, braces), on every way in."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import post_dynamics, post_stripe, process_pending, stripe_fixture
from tests.dynamics_bodies import account_create, encode, salesorder

LOWER = "53c52f26-a89d-ef11-8a69-000d3a30b0c1"
BRACED_UPPER = "{53C52F26-A89D-EF11-8A69-000D3A30B0C1}"
UPPER = "53C52F26-A89D-EF11-8A69-000D3A30B0C1"


def account_ids(client: Any, admin: dict[str, str]) -> list[str]:
    return [a["account_id"] for a in client.get("/api/accounts", headers=admin).json["items"]]


def test_an_account_put_with_braces_in_capitals_is_found_in_lower_case(client: Any, admin: dict[str, str]) -> None:
    created = client.put(f"/api/accounts/{BRACED_UPPER}", json={"name": "Acme"}, headers=admin)
    assert created.status_code == 201, created.json
    assert created.json["account_id"] == LOWER
    found = client.get(f"/api/accounts/{LOWER}", headers=admin)
    assert found.status_code == 200 and found.json["name"] == "Acme"
    again = client.put(f"/api/accounts/{UPPER}", json={"name": "Acme Cloud"}, headers=admin)
    assert again.status_code == 200, again.json  # the same account, updated
    assert client.get(f"/api/accounts/%7B{LOWER}%7D", headers=admin).json["name"] == "Acme Cloud"
    assert account_ids(client, admin) == [LOWER]


def test_other_ids_keep_their_case(client: Any, admin: dict[str, str]) -> None:
    assert client.put("/api/accounts/Acme", json={}, headers=admin).status_code == 201
    assert client.get("/api/accounts/acme", headers=admin).status_code == 404
    assert client.get("/api/accounts/Acme", headers=admin).status_code == 200


def test_a_stripe_customer_naming_the_braced_guid_maps_the_account_the_crm_created(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    assert post_dynamics(client, account_create(LOWER)).status_code == 200
    assert process_pending(container) == ["processed"]
    customer = stripe_fixture(
        "customer.updated.zulip-delinquency.json", id="cus_braced", metadata={"crm_account_id": BRACED_UPPER}
    )
    customer["type"] = "customer.created"
    post_stripe(client, customer)
    assert process_pending(container) == ["processed"]
    assert account_ids(client, admin) == [LOWER]
    assert client.get(f"/api/accounts/{LOWER}", headers=admin).json["stripe_customer_id"] == "cus_braced"


def test_the_crm_writing_the_guid_in_capitals_and_braces_reaches_the_same_account(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    assert client.put(f"/api/accounts/{LOWER}", json={"name": "Acme"}, headers=admin).status_code == 201
    create = account_create(BRACED_UPPER, credit_on_hold=True)
    response = post_dynamics(client, encode(create))
    assert response.status_code == 200, response.json
    assert process_pending(container) == ["processed"]
    assert account_ids(client, admin) == [LOWER]
    order_id = str(uuid.uuid4())
    assert post_dynamics(client, salesorder(order_id, BRACED_UPPER, state=1)).status_code == 200
    assert process_pending(container) == ["processed"]
    (request,) = client.get(f"/api/provisioning?account_id={LOWER}", headers=admin).json["items"]
    assert (request["account_id"], request["order_id"], request["waiting_for"]) == (LOWER, order_id, ["credit_review"])


def test_orders_and_holds_go_through_either_spelling(client: Any, admin: dict[str, str]) -> None:
    assert client.put(f"/api/accounts/{LOWER}", json={"currency": "usd"}, headers=admin).status_code == 201
    order = client.post(f"/api/accounts/{BRACED_UPPER}/orders", json={"order_id": "SO-1", "amount": "5"}, headers=admin)
    assert order.status_code == 201, order.json
    assert order.json["account_id"] == LOWER
    for spelling in (LOWER, UPPER, BRACED_UPPER):
        listed = client.get("/api/provisioning", query_string={"account_id": spelling}, headers=admin).json["items"]
        assert [r["order_id"] for r in listed] == ["SO-1"], spelling
    again = client.post(f"/api/accounts/{UPPER}/orders", json={"order_id": "SO-1", "amount": "5"}, headers=admin)
    assert again.status_code == 200  # the same order of the same account

    held = client.post(f"/api/accounts/{UPPER}/holds", json={"reason": "manual", "note": "call us"}, headers=admin)
    assert held.status_code == 201, held.json
    assert [h["reason"] for h in client.get(f"/api/accounts/{LOWER}", headers=admin).json["holds"]] == ["manual"]
    lifted = client.delete(f"/api/accounts/{BRACED_UPPER}/holds/manual", query_string={"note": "paid"}, headers=admin)
    assert lifted.status_code == 200, lifted.json
    assert client.get(f"/api/accounts/{BRACED_UPPER}", headers=admin).json["holds"] == []
    kinds = [e["kind"] for e in client.get(f"/api/accounts/{UPPER}/timeline", headers=admin).json["items"]]
    assert kinds.count("hold_placed") == 1 and kinds.count("hold_released") == 1
    assert account_ids(client, admin) == [LOWER]
