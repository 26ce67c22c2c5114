"""Text the database cannot store and numbers too long to be money: 400 with a sentence, nothing changes.

PostgreSQL refuses a NUL character in text, and neither backend can store a lone surrogate (it
is not UTF-8); Python refuses to turn a JSON integer of thousands of digits into an int. Each
of these once reached the database or the JSON parser and came back as a 500. Run on both
backends: NUL only ever failed on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bad_input import NothingChanges, post_webhook, refused
from tests.conftest import post_dynamics, post_stripe, sign
from tests.dynamics_bodies import account_create, encode

HUGE = "9" * 5000  # a JSON integer beyond Python's int conversion limit (4300 digits)

UNSTORABLE_TEXT = [
    pytest.param("\u0000", id="a-nul"),
    pytest.param("Acme\u0000Corp", id="a-nul-inside"),
    pytest.param("Acme \ud800", id="a-lone-surrogate"),
]

# Every text field of every body the admin API reads, with a body that is otherwise valid.
TEXT_FIELDS = [
    pytest.param("PUT", "/api/accounts/globex", {"name": "Renamed"}, "name", id="account-name"),
    pytest.param("PUT", "/api/accounts/newcomer", {"name": "New"}, "name", id="new-account-name"),
    pytest.param("PUT", "/api/accounts/globex", {}, "stripe_customer_id", id="account-stripe-customer"),
    pytest.param("PUT", "/api/accounts/globex", {}, "currency", id="account-currency"),
    pytest.param("POST", "/api/accounts/globex/holds", {"reason": "manual"}, "note", id="hold-note"),
    pytest.param("POST", "/api/accounts/globex/holds", {}, "reason", id="hold-reason"),
    pytest.param(
        "PUT", "/api/accounts/acme/enforcement-pause", {"until": "2999-01-01T00:00:00Z"}, "note", id="pause-note"
    ),
    pytest.param("POST", "/api/accounts/globex/orders", {"amount": "5"}, "order_id", id="order-id"),
    pytest.param(
        "POST", "/api/accounts/globex/orders", {"order_id": "SO-1", "amount": "5"}, "description", id="description"
    ),
]


@pytest.mark.parametrize("text", UNSTORABLE_TEXT)
@pytest.mark.parametrize(("method", "url", "body", "field"), TEXT_FIELDS)
def test_text_that_cannot_be_stored_is_refused_in_every_body_field(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    body: dict[str, Any],
    field: str,
    text: str,
) -> None:
    with nothing_changes():
        response = client.open(url, method=method, json={**body, field: text}, headers=admin)
    assert field in refused(response, 400, "validation_error")["message"]


# Every text query parameter of the admin API (a query string cannot carry a lone surrogate).
QUERY_PARAMETERS = [
    pytest.param("DELETE", "/api/accounts/acme/holds/manual", "note", id="lift-hold-note"),
    pytest.param("GET", "/api/accounts", "cursor", id="accounts-cursor"),
    pytest.param("GET", "/api/accounts/acme/timeline", "cursor", id="timeline-cursor"),
    pytest.param("GET", "/api/events", "status", id="events-status"),
    pytest.param("GET", "/api/events", "cursor", id="events-cursor"),
    pytest.param("GET", "/api/provisioning", "account_id", id="provisioning-account-id"),
    pytest.param("GET", "/api/provisioning", "state", id="provisioning-state"),
    pytest.param("GET", "/api/provisioning", "cursor", id="provisioning-cursor"),
]


@pytest.mark.parametrize("text", ["\u0000", "acme\u0000"])
@pytest.mark.parametrize(("method", "url", "parameter"), QUERY_PARAMETERS)
def test_a_nul_in_a_query_parameter_is_refused(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    parameter: str,
    text: str,
) -> None:
    with nothing_changes():
        response = client.open(url, method=method, query_string={parameter: text}, headers=admin)
    assert parameter in refused(response, 400)["message"]


# Path parameters, percent-encoded as a client sends them.
PATHS_WITH_A_NUL = [
    pytest.param("GET", "/api/provisioning/%00", id="request"),
    pytest.param("GET", "/api/provisioning/abc%00def", id="request-nul-inside"),
    pytest.param("POST", "/api/provisioning/%00/retry", id="retry"),
    pytest.param("POST", "/api/provisioning/%00/cancel", id="cancel"),
    pytest.param("POST", "/api/accounts/%00/orders", id="orders"),
    pytest.param("PUT", "/api/accounts/acme%00/enforcement-pause", id="pause"),
    pytest.param("DELETE", "/api/accounts/acme%00/enforcement-pause", id="end-pause"),
    pytest.param("DELETE", "/api/accounts/acme%00/holds/dispute", id="lift-dispute"),
]


@pytest.mark.parametrize(("method", "url"), PATHS_WITH_A_NUL)
def test_a_nul_in_a_path_parameter_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str
) -> None:
    body = {"until": "2999-01-01T00:00:00Z"} if url.endswith("pause") and method == "PUT" else None
    with nothing_changes():
        response = client.open(url, method=method, json=body, headers=admin)
    refused(response, 400)


# --- numbers too long to be money ------------------------------------------------------------

HUGE_NUMBERS = [
    pytest.param(HUGE, id="5000-digits"),
    pytest.param("-" + HUGE, id="minus-5000-digits"),
    pytest.param(HUGE + ".5", id="5000-digits-and-a-fraction"),
    pytest.param("0." + HUGE, id="5000-decimals"),
]


@pytest.mark.parametrize("number", HUGE_NUMBERS)
@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        pytest.param("PUT", "/api/accounts/globex", {"name": "x"}, "credit_limit", id="credit-limit"),
        pytest.param("PUT", "/api/accounts/newcomer", {"name": "x"}, "credit_limit", id="new-credit-limit"),
        pytest.param("POST", "/api/accounts/globex/orders", {"order_id": "SO-1"}, "amount", id="amount"),
        pytest.param("PUT", "/api/accounts/globex", {}, "name", id="name"),
        pytest.param("POST", "/api/accounts/globex/holds", {"reason": "manual"}, "note", id="hold-note"),
        pytest.param("POST", "/api/accounts/globex/holds", {}, "reason", id="hold-reason"),
        pytest.param("PUT", "/api/accounts/acme/enforcement-pause", {"note": "x"}, "until", id="pause-until"),
        pytest.param("POST", "/api/accounts/globex/orders", {"amount": "5"}, "order_id", id="order-id"),
        pytest.param("PUT", "/api/accounts/globex", {"name": "x"}, "colour", id="an-unknown-field"),
    ],
)
def test_a_number_too_long_to_be_money_is_refused_in_any_field(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    body: dict[str, Any],
    field: str,
    number: str,
) -> None:
    raw = json.dumps(body)[:-1] + (", " if body else "") + f'"{field}": {number}}}'
    with nothing_changes():
        response = client.open(url, method=method, data=raw, content_type="application/json", headers=admin)
    refused(response, 400, "validation_error")


def test_a_number_too_long_to_be_money_is_refused_deep_inside_the_body(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    raw = f'{{"name": "x", "extra": {{"list": [1, 2, {HUGE}]}}}}'
    with nothing_changes():
        response = client.put("/api/accounts/globex", data=raw, content_type="application/json", headers=admin)
    refused(response, 400, "validation_error")


@pytest.mark.parametrize("number", ["1e-400", "0.00001", "1E-5"])
def test_a_json_number_with_more_places_than_money_has_is_refused_not_rounded(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, number: str
) -> None:
    raw = f'{{"credit_limit": {number}}}'
    with nothing_changes():
        response = client.put("/api/accounts/globex", data=raw, content_type="application/json", headers=admin)
    assert "credit_limit" in refused(response, 400, "validation_error")["message"]


def test_a_json_number_as_a_credit_limit_is_kept_exactly(client: Any, admin: dict[str, str], seeded: None) -> None:
    raw = '{"credit_limit": 2154.32}'
    response = client.put("/api/accounts/globex", data=raw, content_type="application/json", headers=admin)
    assert response.status_code == 200, response.json
    assert response.json["credit_limit"] == "2154.32"


# --- the webhooks ----------------------------------------------------------------------------


def test_a_signed_stripe_event_with_a_number_too_long_is_refused(client: Any, nothing_changes: NothingChanges) -> None:
    body = json.dumps({"id": "evt_huge", "object": "event", "type": "invoice.paid", "created": 1, "data": {}})
    body = body.replace('"created": 1', f'"created": {HUGE}')
    with nothing_changes():
        response = post_webhook(client, body, sign(body))
    message = refused(response, 400, "malformed_event")["message"]
    assert "sys." not in message  # a sentence for the sender, not Python's advice to itself


def test_a_stripe_event_with_a_number_too_long_deep_in_its_object_is_refused(
    client: Any, nothing_changes: NothingChanges
) -> None:
    event = {"id": "evt_huge2", "object": "event", "type": "invoice.paid", "created": 1, "data": {"object": {}}}
    body = json.dumps(event).replace('"object": {}', f'"object": {{"amount_due": {HUGE}}}')
    with nothing_changes():
        response = post_stripe(client, body)
    refused(response, 400, "malformed_event")


@pytest.mark.parametrize("number", [HUGE, "-" + HUGE])
def test_a_dynamics_context_with_a_number_too_long_is_refused(
    client: Any, nothing_changes: NothingChanges, number: str
) -> None:
    body = encode(account_create("53c52f26-a89d-ef11-8a69-000d3a30b0c9")).replace(
        b'"Depth": 1', b'"Depth": ' + number.encode()
    )
    assert number.encode() in body
    with nothing_changes():
        response = post_dynamics(client, body)
    message = refused(response, 400, "malformed_context")["message"]
    assert "digits" in message and "sys." not in message


def test_every_string_field_the_api_reads_is_text_that_can_be_stored() -> None:
    """A body or query field added later as a plain String would let a NUL reach PostgreSQL again."""
    from marshmallow import fields

    from webhooks.api import order_schemas, schemas

    def input_schemas(cls: type) -> list[type]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *input_schemas(sub)]
        return found

    found = input_schemas(schemas.StrictSchema)
    assert order_schemas.OrderCreateSchema in found and schemas.HoldLiftQuerySchema in found
    plain = [
        f"{schema.__name__}.{name}"
        for schema in found
        for name, field in schema._declared_fields.items()  # type: ignore[attr-defined]
        if isinstance(field, fields.String) and not isinstance(field, schemas.Text)
    ]
    assert plain == []


# --- NUL inside the content of a webhook: a name is kept without it, an id is refused -------------


def test_a_nul_in_a_stripe_customer_name_is_dropped_and_the_event_applies(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    from tests.conftest import process_pending, stripe_fixture

    event = stripe_fixture("customer.updated.zulip-delinquency.json", id="cus_nul")
    event["data"]["object"].update(name="Acme\u0000 Corp", metadata={"crm_account_id": "acme-nul"})
    assert post_stripe(client, event).status_code == 200
    assert process_pending(container) == ["processed"]
    assert client.get("/api/accounts/acme-nul", headers=admin).json["name"] == "Acme Corp"


def test_a_nul_in_a_stripe_id_fails_the_event_with_a_sentence(client: Any, container: Any) -> None:
    from tests.conftest import inbox_rows, process_pending, stripe_fixture

    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_\u0000x"))
    assert process_pending(container) == ["failed"]
    (row,) = inbox_rows(container)
    assert row.last_error == "MalformedEvent: An id in the event contains a NUL character."


def test_a_nul_in_a_crm_account_name_is_dropped_and_one_in_its_id_is_refused_at_the_door(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    from tests.conftest import process_pending

    account = "3c1b0d2e-5f4a-4b6c-8d7e-9f0a1b2c3d4e"
    assert post_dynamics(client, account_create(account, name="Contoso\u0000 Ltd")).status_code == 200
    assert process_pending(container) == ["processed"]
    assert client.get(f"/api/accounts/{account}", headers=admin).json["name"] == "Contoso Ltd"
    refused_body = post_dynamics(client, account_create("acme\u0000evil", name="Evil"))
    assert refused(refused_body, 400, "malformed_context")["message"]
