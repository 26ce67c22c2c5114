"""Amounts with more decimal places than their currency has are refused: 400 with a sentence, nothing changes.

An order is in its account's currency; a credit limit is in the account's currency, or in the
currency given in the same PUT.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input import NothingChanges, refused


@pytest.fixture
def accounts(client: Any, admin: dict[str, str], queued: list[Any]) -> None:
    """usd, jpy, kwd: accounts in those currencies; plain: an account with no currency."""
    for account_id in ("usd", "jpy", "kwd"):
        response = client.put(f"/api/accounts/{account_id}", json={"currency": account_id}, headers=admin)
        assert response.status_code == 201, response.json
    assert client.put("/api/accounts/plain", json={"name": "Plain"}, headers=admin).status_code == 201
    queued.clear()


@pytest.mark.parametrize(
    ("account_id", "amount", "currency"),
    [
        pytest.param("usd", "10.001", "USD", id="usd-three-places"),
        pytest.param("jpy", "10.5", "JPY", id="jpy-one-place"),
        pytest.param("jpy", "0.5", "JPY", id="jpy-half-a-yen"),
        pytest.param("kwd", "10.0001", "KWD", id="kwd-four-places"),
        pytest.param("plain", "10.001", "2", id="no-currency-three-places"),
    ],
)
def test_an_order_with_more_places_than_its_accounts_currency_is_refused(
    client: Any,
    admin: dict[str, str],
    accounts: None,
    nothing_changes: NothingChanges,
    account_id: str,
    amount: str,
    currency: str,
) -> None:
    with nothing_changes():
        response = client.post(
            f"/api/accounts/{account_id}/orders", json={"order_id": "SO-1", "amount": amount}, headers=admin
        )
    message = refused(response, 400, "validation_error")["message"]
    assert "amount" in message and currency in message


def test_an_order_given_as_a_json_number_with_too_many_places_is_refused(
    client: Any, admin: dict[str, str], accounts: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post(
            "/api/accounts/jpy/orders",
            data='{"order_id": "SO-1", "amount": 10.5}',
            content_type="application/json",
            headers=admin,
        )
    refused(response, 400, "validation_error")


@pytest.mark.parametrize(
    ("account_id", "amount", "shown"),
    [
        pytest.param("usd", "10.5", "10.50", id="usd-one-place"),
        pytest.param("jpy", "10", "10.00", id="jpy-whole"),
        pytest.param("jpy", "10.00", "10.00", id="jpy-trailing-zeros"),
        pytest.param("kwd", "10.001", "10.001", id="kwd-three-places"),
    ],
)
def test_an_order_within_its_currencys_places_is_accepted(
    client: Any, admin: dict[str, str], accounts: None, account_id: str, amount: str, shown: str
) -> None:
    response = client.post(
        f"/api/accounts/{account_id}/orders", json={"order_id": "SO-1", "amount": amount}, headers=admin
    )
    assert response.status_code == 201, response.json
    assert response.json["amount"] == shown and response.json["currency"] == account_id


@pytest.mark.parametrize(
    ("account_id", "changes", "currency"),
    [
        pytest.param("usd", {"credit_limit": "100.001"}, "USD", id="usd-limit"),
        pytest.param("jpy", {"credit_limit": "100.5"}, "JPY", id="jpy-limit"),
        pytest.param("plain", {"credit_limit": "100.001"}, "2", id="no-currency-limit"),
        pytest.param("kwd", {"credit_limit": "100.001", "currency": "usd"}, "USD", id="new-currency-and-limit"),
        pytest.param("newcomer", {"credit_limit": "100.5", "currency": "JPY"}, "JPY", id="new-account"),
        pytest.param("newcomer", {"credit_limit": "100.001"}, "2", id="new-account-no-currency"),
    ],
)
def test_a_credit_limit_with_more_places_than_the_currency_is_refused(
    client: Any,
    admin: dict[str, str],
    accounts: None,
    nothing_changes: NothingChanges,
    account_id: str,
    changes: dict[str, str],
    currency: str,
) -> None:
    with nothing_changes():
        response = client.put(f"/api/accounts/{account_id}", json=changes, headers=admin)
    message = refused(response, 400, "validation_error")["message"]
    assert "credit_limit" in message and currency in message


def test_a_currency_the_current_credit_limit_does_not_fit_is_refused(
    client: Any, admin: dict[str, str], accounts: None, nothing_changes: NothingChanges
) -> None:
    assert client.put("/api/accounts/kwd", json={"credit_limit": "100.001"}, headers=admin).status_code == 200
    with nothing_changes():
        response = client.put("/api/accounts/kwd", json={"currency": "usd"}, headers=admin)
    assert "USD" in refused(response, 400, "validation_error")["message"]


@pytest.mark.parametrize(
    ("account_id", "changes", "shown"),
    [
        pytest.param("kwd", {"credit_limit": "100.001"}, "100.001", id="kwd-three-places"),
        pytest.param("jpy", {"credit_limit": "100.00"}, "100.00", id="jpy-trailing-zeros"),
        pytest.param("usd", {"credit_limit": "100.001", "currency": "kwd"}, "100.001", id="new-currency-and-limit"),
        pytest.param("newcomer", {"credit_limit": "100.001", "currency": "bhd"}, "100.001", id="new-account"),
        pytest.param("jpy", {"credit_limit": None}, None, id="unlimited"),
    ],
)
def test_a_credit_limit_within_the_currencys_places_is_accepted(
    client: Any, admin: dict[str, str], accounts: None, account_id: str, changes: dict[str, str], shown: str | None
) -> None:
    response = client.put(f"/api/accounts/{account_id}", json=changes, headers=admin)
    assert response.status_code in (200, 201), response.json
    assert response.json["credit_limit"] == shown
