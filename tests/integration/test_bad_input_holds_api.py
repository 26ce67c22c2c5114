"""Bad input on ``/api/accounts/<id>/holds``: only a well-formed manual hold is placed, only an existing one lifted.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input import NothingChanges, get_account, refused


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"reason": "non_payment"}, id="non-payment"),
        pytest.param({"reason": "dispute"}, id="dispute"),
        pytest.param({"reason": "credit_review"}, id="credit-review"),
        pytest.param({"reason": "MANUAL"}, id="manual-in-capitals"),
        pytest.param({"reason": ""}, id="empty"),
        pytest.param({"reason": None}, id="null"),
        pytest.param({"reason": 1}, id="a-number"),
        pytest.param({"reason": ["manual"]}, id="a-list"),
        pytest.param({}, id="missing"),
        pytest.param({"note": "no reason"}, id="note-only"),
        pytest.param({"reason": "manual", "note": 5}, id="note-a-number"),
        pytest.param({"reason": "manual", "note": "x" * 2001}, id="note-too-long"),
        pytest.param({"reason": "manual", "until": "tomorrow"}, id="an-unknown-field"),
    ],
)
def test_a_hold_other_than_a_well_formed_manual_one_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, body: dict[str, Any]
) -> None:
    with nothing_changes():
        response = client.post("/api/accounts/globex/holds", json=body, headers=admin)
    refused(response, 400, "validation_error")


def test_a_hold_with_another_reason_is_refused_with_the_reason_why(
    client: Any, admin: dict[str, str], seeded: None
) -> None:
    response = client.post("/api/accounts/globex/holds", json={"reason": "non_payment"}, headers=admin)
    assert "Only a manual hold" in refused(response, 400, "validation_error")["message"]


def test_a_second_manual_hold_is_a_conflict_and_keeps_the_first(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    before = get_account(client, admin, "acme")
    with nothing_changes():
        response = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "second"}, headers=admin)
    refused(response, 409, "hold_exists")
    assert get_account(client, admin, "acme") == before
    assert [h["note"] for h in before["holds"]] == ["first"]


def test_lifting_a_manual_hold_that_does_not_exist_is_not_found(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.delete("/api/accounts/globex/holds/manual?note=paid", headers=admin)
    refused(response, 404, "hold_not_found")


@pytest.mark.parametrize("reason", ["non_payment", "credit_review", "bogus"])
def test_only_the_manual_and_dispute_holds_can_be_lifted_through_the_api(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, reason: str
) -> None:
    with nothing_changes():
        response = client.delete(f"/api/accounts/acme/holds/{reason}", headers=admin)
    refused(response, 404, "not_found")


def test_lifting_a_dispute_hold_that_does_not_exist_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.delete("/api/accounts/acme/holds/dispute?note=written+off", headers=admin)
    refused(response, 404, "hold_not_found")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"note": "x" * 2001}, id="note-too-long"),
        pytest.param({"reason": "dispute"}, id="an-unknown-parameter"),
    ],
)
def test_lifting_a_hold_with_a_bad_query_is_refused_and_the_hold_stays(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, query: dict[str, str]
) -> None:
    with nothing_changes():
        response = client.delete("/api/accounts/acme/holds/manual", query_string=query, headers=admin)
    refused(response, 400, "validation_error")
    assert get_account(client, admin, "acme")["on_hold"] is True
