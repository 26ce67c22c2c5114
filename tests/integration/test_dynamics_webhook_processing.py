"""Dynamics 365 webhooks into the real database: authentication, parsing, accounts, credit review, orders."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import (
    DYNAMICS_HEADER,
    DYNAMICS_KEY,
    FIXTURES,
    inbox_rows,
    post_dynamics,
    post_stripe,
    process_pending,
    stripe_fixture,
)
from tests.dynamics_bodies import APP_USER, account_create, account_update, money, reference, salesorder

ACCOUNT = "53c52f26-a89d-ef11-8a69-000d3a30b0c1"


def get_account(client: Any, admin: dict[str, str], account_id: str = ACCOUNT) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def kinds(client: Any, admin: dict[str, str], account_id: str = ACCOUNT) -> list[str]:
    return [e["kind"] for e in client.get(f"/api/accounts/{account_id}/timeline", headers=admin).json["items"]]


def deliver(client: Any, container: Any, body: dict[str, Any]) -> list[str]:
    response = post_dynamics(client, body)
    assert response.status_code == 200, response.json
    return process_pending(container)


DYNAMICS_FIXTURES = sorted(p.name for p in (FIXTURES / "dynamics").glob("*.json"))


@pytest.mark.parametrize("name", DYNAMICS_FIXTURES)
def test_every_recorded_body_is_stored_and_processed_or_ignored(client: Any, container: Any, name: str) -> None:
    body = (FIXTURES / "dynamics" / name).read_bytes()
    response = post_dynamics(client, body)
    assert response.status_code == 200, response.json
    assert response.json == {"received": True, "duplicate": False}
    expected = "processed" if name.startswith("account_") else "ignored"
    assert process_pending(container) == [expected]
    assert post_dynamics(client, body).json == {"received": True, "duplicate": True}


def test_the_recorded_account_create_creates_the_account_with_its_name_as_sent(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    deliver(
        client, container, json.loads((FIXTURES / "dynamics" / "account_create_sync_postoperation.json").read_text())
    )
    account = get_account(client, admin)
    assert account["holds"] == [] and account["name"].startswith("Ð")  # mojibake recorded upstream, kept as is


def test_the_key_may_come_as_code_or_as_the_configured_header(client: Any) -> None:
    body = account_create(str(uuid.uuid4()))
    assert post_dynamics(client, body, key=None, **{DYNAMICS_HEADER[0]: DYNAMICS_HEADER[1]}).status_code == 200
    assert post_dynamics(client, account_create(str(uuid.uuid4()))).status_code == 200


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        (None, {}),
        ("wrong-key", {}),
        ("", {}),
        (None, {DYNAMICS_HEADER[0]: "wrong"}),
        (None, {"X-Other": DYNAMICS_HEADER[1]}),
        (DYNAMICS_KEY.upper(), {}),
    ],
)
def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_stored(
    client: Any, container: Any, key: str | None, headers: dict[str, str]
) -> None:
    response = post_dynamics(client, account_create(str(uuid.uuid4())), key=key, **headers)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized" and response.json["message"].endswith(".")
    assert inbox_rows(container) == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"MessageName": "Create", "Primary', "not valid JSON"),
        (b"[]", "not a Dynamics 365 execution context"),
        (b'{"hello": "world"}', "not a Dynamics 365 execution context"),
        (b"\xff\xfe\x00", "UTF-8"),
    ],
)
def test_a_body_that_is_not_a_context_gets_400_with_a_sentence(
    client: Any, container: Any, body: bytes, fragment: str
) -> None:
    response = post_dynamics(client, body)
    assert response.status_code == 400
    assert response.json["error"] == "malformed_context" and fragment in response.json["message"]
    assert inbox_rows(container) == []


def test_a_context_without_a_target_is_refused(client: Any, container: Any) -> None:
    body = account_update(ACCOUNT, {"name": "x"})
    body["InputParameters"] = []
    response = post_dynamics(client, body)
    assert response.status_code == 400 and "no Target" in response.json["message"]
    assert inbox_rows(container) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"creditonhold": "yes"},
        {"creditlimit": "lots"},
        {"name": 42},
        {"creditlimit": {"__type": "Money:x", "Value": "NaN"}},
    ],
)
def test_columns_of_the_wrong_type_are_refused_at_the_door(
    client: Any, container: Any, changes: dict[str, Any]
) -> None:
    response = post_dynamics(client, account_update(ACCOUNT, changes))
    assert response.status_code == 400, response.json
    assert response.json["error"] == "malformed_context"
    assert inbox_rows(container) == []


def test_an_order_for_a_contact_is_refused(client: Any, container: Any) -> None:
    body = salesorder(str(uuid.uuid4()), None, state=1)
    body["PostEntityImages"][0]["value"]["Attributes"].append(
        {"key": "customerid", "value": reference("contact", str(uuid.uuid4()))}
    )
    response = post_dynamics(client, body)
    assert response.status_code == 400 and "contact" in response.json["message"]


def test_a_body_over_the_limit_gets_413(client: Any, container: Any) -> None:
    response = post_dynamics(client, b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert response.status_code == 413
    assert inbox_rows(container) == []


def test_bodies_of_other_tables_are_stored_and_ignored(client: Any, container: Any) -> None:
    body = json.loads((FIXTURES / "dynamics" / "msdocs_contact_update_async_postoperation.json").read_text())
    assert deliver(client, container, body) == ["ignored"]


def test_story_one_credit_review_parks_orders_until_finance_lifts_it(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any
) -> None:
    deliver(client, container, account_create(ACCOUNT, credit_on_hold=True))
    account = get_account(client, admin)
    assert [h["reason"] for h in account["holds"]] == ["credit_review"]
    assert account["parks_provisioning"] and not account["blocks_changes"]

    order_id = str(uuid.uuid4())
    deliver(client, container, salesorder(order_id, ACCOUNT, state=1, amount="250.00"))
    (waiting,) = client.get(f"/api/provisioning?account_id={ACCOUNT}", headers=admin).json["items"]
    assert (waiting["order_id"], waiting["state"], waiting["waiting_for"]) == (order_id, "awaiting", ["credit_review"])
    assert waiting["amount"] == "250.00"

    deliver(client, container, account_update(ACCOUNT, {"creditonhold": False}))
    assert get_account(client, admin)["holds"] == []
    assert client.get(f"/api/provisioning/{waiting['request_id']}", headers=admin).json["state"] == "queued"


def test_an_api_order_is_accepted_and_waits_during_a_credit_review(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    deliver(client, container, account_create(ACCOUNT, credit_on_hold=True))
    response = client.post(f"/api/accounts/{ACCOUNT}/orders", json={"order_id": "SO-1", "amount": "5"}, headers=admin)
    assert response.status_code == 201 and response.json["waiting_for"] == ["credit_review"]


def test_a_crm_credit_limit_applies_at_once_and_lets_waiting_orders_go(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    deliver(client, container, account_create(ACCOUNT, credit_limit="100.00"))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    deliver(client, container, salesorder(first, ACCOUNT, state=1, amount="80.00"))
    deliver(client, container, salesorder(second, ACCOUNT, state=1, amount="50.00"))
    states = {
        r["order_id"]: (r["state"], r["waiting_for"])
        for r in client.get("/api/provisioning", headers=admin).json["items"]
    }
    assert states == {first: ("queued", []), second: ("awaiting", ["credit_limit"])}
    deliver(client, container, account_update(ACCOUNT, {"creditlimit": money("500.00")}))
    assert get_account(client, admin)["credit_limit"] == "500.00"
    states = {r["order_id"]: r["state"] for r in client.get("/api/provisioning", headers=admin).json["items"]}
    assert states == {first: "queued", second: "queued"}


def test_the_stripe_customer_column_maps_earlier_stripe_events_to_the_account(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_crm"))
    process_pending(container)
    deliver(client, container, account_create(ACCOUNT))
    assert get_account(client, admin)["holds"] == []
    deliver(client, container, account_update(ACCOUNT, {"new_stripecustomerid": "cus_crm"}))
    account = get_account(client, admin)
    assert account["stripe_customer_id"] == "cus_crm"
    assert [h["reason"] for h in account["holds"]] == ["non_payment"]


def test_an_update_older_than_one_applied_changes_nothing(client: Any, admin: dict[str, str], container: Any) -> None:
    now = datetime.now(UTC)
    deliver(client, container, account_create(ACCOUNT, at=now - timedelta(hours=1)))
    deliver(client, container, account_update(ACCOUNT, {"creditlimit": money("900.00"), "name": "New"}, at=now))
    deliver(client, container, account_update(ACCOUNT, {"creditlimit": money("100.00")}, at=now - timedelta(minutes=5)))
    deliver(client, container, account_update(ACCOUNT, {"accountnumber": "ACC-7"}, at=now - timedelta(minutes=1)))
    account = get_account(client, admin)
    assert (account["credit_limit"], account["name"], account["account_number"]) == ("900.00", "New", "ACC-7")


def test_creditonhold_false_releases_only_the_credit_review(client: Any, admin: dict[str, str], container: Any) -> None:
    deliver(client, container, account_create(ACCOUNT, credit_on_hold=True))
    client.post(f"/api/accounts/{ACCOUNT}/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    deliver(client, container, account_update(ACCOUNT, {"creditonhold": False}))
    assert [h["reason"] for h in get_account(client, admin)["holds"]] == ["manual"]
    assert "crm_hold_restored" in kinds(client, admin)


def test_our_own_write_coming_back_is_not_a_finance_decision(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    deliver(client, container, account_create(ACCOUNT))
    with container.uow() as uow:  # as after Holdfast wrote creditonhold = true to the CRM
        state = uow.accounts.crm_state(ACCOUNT)
        state.written_on_hold = True
        uow.accounts.save_crm_state(ACCOUNT, state)
        uow.commit()
    deliver(client, container, account_update(ACCOUNT, {"creditonhold": True}, user=APP_USER))
    assert get_account(client, admin)["holds"] == []
    deliver(client, container, account_update(ACCOUNT, {"creditonhold": True}))  # finance, this time
    assert [h["reason"] for h in get_account(client, admin)["holds"]] == ["credit_review"]


def test_an_order_for_an_account_not_known_yet_waits_for_it(client: Any, admin: dict[str, str], container: Any) -> None:
    order_id = str(uuid.uuid4())
    deliver(client, container, salesorder(order_id, ACCOUNT, state=1, message="Create"))
    (waiting,) = client.get("/api/provisioning", headers=admin).json["items"]
    assert waiting["waiting_for"] == ["account"]
    deliver(client, container, account_create(ACCOUNT, credit_on_hold=True))
    assert client.get(f"/api/provisioning/{waiting['request_id']}", headers=admin).json["waiting_for"] == [
        "credit_review"
    ]


def test_a_canceled_order_is_cancelled_if_not_yet_dispatched(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    deliver(client, container, account_create(ACCOUNT, credit_on_hold=True))
    order_id = str(uuid.uuid4())
    deliver(client, container, salesorder(order_id, ACCOUNT, state=1))
    deliver(client, container, salesorder(order_id, ACCOUNT, state=2))
    (request,) = client.get("/api/provisioning", headers=admin).json["items"]
    assert request["state"] == "cancelled"


def test_an_order_submitted_while_changes_are_blocked_is_refused_on_the_timeline(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    deliver(client, container, account_create(ACCOUNT))
    client.post(f"/api/accounts/{ACCOUNT}/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    deliver(client, container, salesorder(str(uuid.uuid4()), ACCOUNT, state=1))
    (request,) = client.get("/api/provisioning", headers=admin).json["items"]
    assert request["state"] == "cancelled" and "credit hold" in request["failure"]


def test_a_submitted_order_without_customer_or_amount_fails_with_what_to_register(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    assert deliver(client, container, salesorder(str(uuid.uuid4()), None, state=1, post_image=False)) == ["failed"]
    (row,) = inbox_rows(container)
    assert "register a PostImage" in row.last_error


def test_a_stripped_body_without_the_web_api_fails_with_a_clear_error(client: Any, container: Any) -> None:
    body = account_update(ACCOUNT, {"name": "x"})
    del body["InputParameters"]
    response = post_dynamics(client, body, **{"x-ms-dynamics-msg-size-exceeded": "true"})
    assert response.status_code == 200
    assert process_pending(container) == ["failed"]
    (row,) = inbox_rows(container)
    assert "Web API is not configured" in row.last_error


def test_a_modifiedon_far_in_the_future_applies_but_cannot_freeze_later_updates(
    client: Any, admin: dict[str, str], container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = container.clock()
    deliver(client, container, account_create(ACCOUNT, at=now - timedelta(minutes=1)))
    year_2999 = datetime(2999, 1, 1, tzinfo=UTC)
    deliver(
        client,
        container,
        account_update(ACCOUNT, {"name": "Clock gone wrong", "creditlimit": money("100")}, at=year_2999),
    )
    account = get_account(client, admin)
    assert (account["name"], account["credit_limit"]) == ("Clock gone wrong", "100.00")

    later = now + timedelta(minutes=10)  # past the skew allowed to the CRM's clock
    monkeypatch.setattr(container, "clock", lambda: later)
    deliver(client, container, account_update(ACCOUNT, {"name": "Fixed", "creditlimit": money("200")}, at=later))
    account = get_account(client, admin)
    assert (account["name"], account["credit_limit"]) == ("Fixed", "200.00")
