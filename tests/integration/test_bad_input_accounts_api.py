"""Bad input on ``/api/accounts/<id>``: fields of the wrong kind, ids that cannot be ids, unknown accounts.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input import NothingChanges, call, get_account, refused

BAD_ACCOUNT_FIELDS = [
    pytest.param({"credit_limit": [100]}, "credit_limit", id="credit-limit-a-list"),
    pytest.param({"credit_limit": {"amount": 1}}, "credit_limit", id="credit-limit-an-object"),
    pytest.param({"credit_limit": True}, "credit_limit", id="credit-limit-true"),
    pytest.param({"credit_limit": False}, "credit_limit", id="credit-limit-false"),
    pytest.param({"credit_limit": "abc"}, "credit_limit", id="credit-limit-abc"),
    pytest.param({"credit_limit": ""}, "credit_limit", id="credit-limit-empty"),
    pytest.param({"credit_limit": "-1"}, "credit_limit", id="credit-limit-negative-string"),
    pytest.param({"credit_limit": -0.01}, "credit_limit", id="credit-limit-negative-number"),
    pytest.param({"credit_limit": "NaN"}, "credit_limit", id="credit-limit-nan-string"),
    pytest.param({"credit_limit": "sNaN"}, "credit_limit", id="credit-limit-signalling-nan"),
    pytest.param({"credit_limit": "Infinity"}, "credit_limit", id="credit-limit-infinity-string"),
    pytest.param({"credit_limit": "-Infinity"}, "credit_limit", id="credit-limit-minus-infinity"),
    pytest.param({"credit_limit": "1e400"}, "credit_limit", id="credit-limit-huge-exponent"),
    pytest.param({"credit_limit": "1e-400"}, "credit_limit", id="credit-limit-tiny-exponent"),
    pytest.param({"credit_limit": "1000000000000000"}, "credit_limit", id="credit-limit-too-large"),
    pytest.param({"credit_limit": "1.00001"}, "credit_limit", id="credit-limit-too-many-places"),
    pytest.param({"name": 42}, "name", id="name-a-number"),
    pytest.param({"name": ["Acme"]}, "name", id="name-a-list"),
    pytest.param({"name": "x" * 401}, "name", id="name-too-long"),
    pytest.param({"stripe_customer_id": "acme"}, "stripe_customer_id", id="customer-not-cus"),
    pytest.param({"stripe_customer_id": "cus_"}, "stripe_customer_id", id="customer-cus-only"),
    pytest.param({"stripe_customer_id": "cus_a-b"}, "stripe_customer_id", id="customer-bad-character"),
    pytest.param({"stripe_customer_id": "cus_a\n"}, "stripe_customer_id", id="customer-trailing-newline"),
    pytest.param({"stripe_customer_id": "cus_" + "a" * 251}, "stripe_customer_id", id="customer-too-long"),
    pytest.param({"stripe_customer_id": None}, "stripe_customer_id", id="customer-null"),
    pytest.param({"stripe_customer_id": 123}, "stripe_customer_id", id="customer-a-number"),
    pytest.param({"currency": "dollars"}, "currency", id="currency-not-three-letters"),
    pytest.param({"currency": 978}, "currency", id="currency-a-number"),
    pytest.param({"currency": "e\u00fcr"}, "currency", id="currency-non-ascii"),
    pytest.param({"currency": "eur\n"}, "currency", id="currency-trailing-newline"),
    pytest.param({"colour": "red"}, "colour", id="an-unknown-field"),
    pytest.param({"account_id": "other"}, "account_id", id="account-id-in-the-body"),
]


@pytest.mark.parametrize("account_id", ["globex", "newcomer"])
@pytest.mark.parametrize(("changes", "field"), BAD_ACCOUNT_FIELDS)
def test_an_account_with_a_field_of_the_wrong_kind_is_refused(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    changes: dict[str, Any],
    field: str,
    account_id: str,
) -> None:
    with nothing_changes():
        response = client.put(f"/api/accounts/{account_id}", json={"name": "Changed", **changes}, headers=admin)
    assert field in refused(response, 400, "validation_error")["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_credit_limit_of_a_bare_nan_or_infinity_literal_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, literal: str
) -> None:
    body = f'{{"name": "Changed", "credit_limit": {literal}}}'
    with nothing_changes():
        response = client.put("/api/accounts/globex", data=body, content_type="application/json", headers=admin)
    assert "credit_limit" in refused(response, 400, "validation_error")["message"]


def test_an_account_cannot_take_a_stripe_customer_mapped_to_another(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.put("/api/accounts/globex", json={"stripe_customer_id": "cus_acme"}, headers=admin)
    assert "acme" in refused(response, 409, "customer_already_mapped")["message"]


ACCOUNT_ROUTES = [
    pytest.param("PUT", "/api/accounts/{id}", {"name": "x"}, id="put-account"),
    pytest.param("GET", "/api/accounts/{id}", None, id="get-account"),
    pytest.param("POST", "/api/accounts/{id}/holds", {"reason": "manual", "note": "a note"}, id="place-hold"),
    pytest.param("DELETE", "/api/accounts/{id}/holds/manual?note=paid", None, id="lift-hold"),
    pytest.param("GET", "/api/accounts/{id}/timeline", None, id="timeline"),
]


@pytest.mark.parametrize(("method", "url", "body"), ACCOUNT_ROUTES)
@pytest.mark.parametrize(
    "account_id",
    [
        pytest.param("a" * 101, id="101-characters"),
        pytest.param("\u00e9" * 101, id="101-accented-characters"),
        pytest.param("%00", id="a-nul"),
        pytest.param("a%0Ab", id="a-newline"),
        pytest.param("%20%20", id="blank"),
    ],
)
def test_an_account_id_that_cannot_be_one_is_refused(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    body: Any,
    account_id: str,
) -> None:
    with nothing_changes():
        response = call(client, method, url.format(id=account_id), body, admin)
    assert "100" in refused(response, 400, "invalid_account_id")["message"]


def test_an_account_id_of_exactly_100_characters_is_accepted(client: Any, admin: dict[str, str]) -> None:
    account_id = "\u00e9" * 100
    assert client.put(f"/api/accounts/{account_id}", json={"name": "Long"}, headers=admin).status_code == 201
    assert get_account(client, admin, account_id)["account_id"] == account_id


@pytest.mark.parametrize(("method", "url", "body"), [p for p in ACCOUNT_ROUTES if p.id != "put-account"])
def test_an_unknown_account_is_not_found(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str, body: Any
) -> None:
    with nothing_changes():
        response = call(client, method, url.format(id="nobody"), body, admin)
    assert "nobody" in refused(response, 404, "account_not_found")["message"]
