"""Bad input on the order and provisioning routes: a clear 4xx with a sentence, and nothing changes.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixture ``nothing_changes``:
tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input import NothingChanges, refused


@pytest.fixture
def acme(client: Any, admin: dict[str, str]) -> str:
    client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin)
    return "acme"


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "SO-1", "amount": "-5.00"},
        {"order_id": "SO-1", "amount": "0"},
        {"order_id": "SO-1", "amount": "lots"},
        {"order_id": "SO-1", "amount": True},
        {"order_id": "SO-1", "amount": [1]},
        {"order_id": "SO-1", "amount": "NaN"},
        {"order_id": "SO-1", "amount": "Infinity"},
        {"order_id": "SO-1", "amount": "1.123456"},
        {"order_id": "", "amount": "5"},
        {"order_id": 17, "amount": "5"},
        {"amount": "5"},
        {"order_id": "SO-1"},
        {"order_id": "SO-1", "amount": "5", "colour": "red"},
        {"order_id": "x" * 256, "amount": "5"},
    ],
)
def test_a_bad_order_is_refused_and_nothing_changes(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges, acme: str, body: dict[str, Any]
) -> None:
    with nothing_changes():
        refused(client.post(f"/api/accounts/{acme}/orders", json=body, headers=admin), 400, "validation_error")


def test_an_order_for_an_unknown_account_is_404(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        refused(
            client.post("/api/accounts/nobody/orders", json={"order_id": "SO-1", "amount": "5"}, headers=admin),
            404,
            "account_not_found",
        )


def test_truncated_json_and_missing_token_are_refused(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges, acme: str
) -> None:
    with nothing_changes():
        refused(
            client.post(
                f"/api/accounts/{acme}/orders", data='{"order_id": "SO', content_type="application/json", headers=admin
            ),
            400,
            "malformed_json",
        )
        refused(
            client.post(f"/api/accounts/{acme}/orders", json={"order_id": "SO-1", "amount": "5"}), 401, "unauthorized"
        )


@pytest.mark.parametrize(
    ("method", "url", "status", "error"),
    [
        ("GET", "/api/provisioning/no-such-request", 404, "not_found"),
        ("POST", "/api/provisioning/no-such-request/retry", 404, "not_found"),
        ("POST", "/api/provisioning/no-such-request/cancel", 404, "not_found"),
        ("GET", "/api/provisioning?state=lost", 400, "validation_error"),
        ("GET", "/api/provisioning?limit=0", 400, "validation_error"),
        ("GET", "/api/provisioning?cursor=!!!", 400, "invalid_cursor"),
        ("GET", "/api/provisioning?account_id=" + "x" * 101, 400, "validation_error"),
    ],
)
def test_bad_provisioning_requests_are_refused(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges, method: str, url: str, status: int, error: str
) -> None:
    with nothing_changes():
        refused(client.open(url, method=method, headers=admin), status, error)


def test_retrying_a_request_that_has_not_failed_is_refused(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges, acme: str
) -> None:
    request_id = client.post(
        f"/api/accounts/{acme}/orders", json={"order_id": "SO-1", "amount": "5"}, headers=admin
    ).json["request_id"]
    with nothing_changes():
        refused(client.post(f"/api/provisioning/{request_id}/retry", headers=admin), 409, "not_retryable")
