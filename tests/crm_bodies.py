"""Dynamics 365 webhook bodies for account and salesorder, built in exactly the recorded format.

The real account Create and Update bodies in ../shared/fixtures/dynamics are the templates:
only ids, times, users and Target columns change; salesorder bodies are the account Update
body with the table renamed and a salesorder's columns in its Target (and PostImage).
``post_dynamics`` sends one to the webhook as Dynamics does.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.conftest import DYNAMICS_KEY, FIXTURES

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
FINANCE_USER = "df010dad-f103-4589-ba66-76a5a04c2a11"  # the user of the recorded Update
APP_USER = "6b4a2f0e-8c1d-4e5f-9a7b-3c2d1e0f9a8b"  # Holdfast's application user in these tests
STRIPE_FIELD = "new_stripecustomerid"


def _template(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "dynamics" / name).read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def date(at: datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)})/"


def money(amount: str | Decimal) -> dict[str, Any]:
    return {"__type": f"Money:{CONTRACTS}", "Value": float(Decimal(amount))}


def option(value: int) -> dict[str, Any]:
    return {"__type": f"OptionSetValue:{CONTRACTS}", "Value": value}


def reference(logical_name: str, row_id: str, name: str | None = None) -> dict[str, Any]:
    return {
        "__type": f"EntityReference:{CONTRACTS}",
        "Id": row_id,
        "KeyAttributes": [],
        "LogicalName": logical_name,
        "Name": name,
        "RowVersion": None,
    }


def _target(body: dict[str, Any]) -> dict[str, Any]:
    for pair in body["InputParameters"]:
        if pair["key"] == "Target":
            target: dict[str, Any] = pair["value"]
            return target
    raise KeyError("Target")


def _set(attributes: list[dict[str, Any]], key: str, value: Any) -> None:
    for pair in attributes:
        if pair["key"] == key:
            pair["value"] = value
            return
    attributes.append({"key": key, "value": value})


def _stamp(body: dict[str, Any], *, operation: str | None, at: datetime, user: str) -> str:
    operation = operation or str(uuid.uuid4())
    body["OperationId"] = operation
    body["RequestId"] = operation
    body["CorrelationId"] = str(uuid.uuid4())
    body["OperationCreatedOn"] = date(at)
    body["UserId"] = user
    body["InitiatingUserId"] = user
    return operation


def account_create(
    account_id: str,
    *,
    name: str = "Acme Cloud",
    credit_on_hold: bool = False,
    credit_limit: str | None = None,
    stripe_customer: str | None = None,
    at: datetime | None = None,
    user: str = FINANCE_USER,
    operation: str | None = None,
) -> dict[str, Any]:
    """The recorded account Create (sync, PostOperation) for another account."""
    at = at or datetime.now(UTC)
    body = _template("account_create_sync_postoperation.json")
    _stamp(body, operation=operation, at=at, user=user)
    body["PrimaryEntityId"] = account_id
    body.pop("ParentContext", None)
    target = _target(body)
    target["Id"] = account_id
    attributes = target["Attributes"]
    for key, value in (
        ("accountid", account_id),
        ("name", name),
        ("creditonhold", credit_on_hold),
        ("creditlimit", None if credit_limit is None else money(credit_limit)),
        ("createdon", date(at)),
        ("modifiedon", date(at)),
        ("modifiedby", reference("systemuser", user)),
    ):
        _set(attributes, key, value)
    if stripe_customer is not None:
        _set(attributes, STRIPE_FIELD, stripe_customer)
    for pair in body["OutputParameters"]:
        if pair["key"] == "id":
            pair["value"] = account_id
    return body


def account_update(
    account_id: str,
    changes: dict[str, Any],
    *,
    at: datetime | None = None,
    user: str = FINANCE_USER,
    operation: str | None = None,
) -> dict[str, Any]:
    """The recorded account Update: the Target carries only the changed columns."""
    at = at or datetime.now(UTC)
    body = _template("account_update_sync_postoperation.json")
    _stamp(body, operation=operation, at=at, user=user)
    body["PrimaryEntityId"] = account_id
    target = _target(body)
    target["Id"] = account_id
    target["Attributes"] = [
        {"key": "accountid", "value": account_id},
        {"key": "modifiedon", "value": date(at)},
        {"key": "modifiedby", "value": reference("systemuser", user)},
        {"key": "modifiedonbehalfby", "value": None},
    ]
    for key, value in changes.items():
        _set(target["Attributes"], key, value)
    return body


def salesorder(
    order_id: str,
    account_id: str | None,
    *,
    state: int,
    amount: str | None = "100.00",
    message: str = "Update",
    name: str = "Order for 10 seats",
    at: datetime | None = None,
    user: str = FINANCE_USER,
    operation: str | None = None,
    post_image: bool = True,
) -> dict[str, Any]:
    """A salesorder Create or Update in the recorded format, with its columns in a PostImage too."""
    at = at or datetime.now(UTC)
    body = _template("account_update_sync_postoperation.json")
    _stamp(body, operation=operation, at=at, user=user)
    body["MessageName"] = message
    body["PrimaryEntityName"] = "salesorder"
    body["PrimaryEntityId"] = order_id
    body["OwningExtension"]["Name"] = f"Holdfast: {message} of salesorder"
    target = _target(body)
    target["LogicalName"] = "salesorder"
    target["Id"] = order_id
    columns = [
        {"key": "salesorderid", "value": order_id},
        {"key": "statecode", "value": option(state)},
        {"key": "modifiedon", "value": date(at)},
        {"key": "modifiedby", "value": reference("systemuser", user)},
    ]
    image_columns = [*columns, {"key": "name", "value": name}]
    if account_id is not None:
        image_columns.append({"key": "customerid", "value": reference("account", account_id)})
    if amount is not None:
        image_columns.append({"key": "totalamount", "value": money(amount)})
    target["Attributes"] = image_columns if message == "Create" else columns
    if post_image:
        body["PostEntityImages"] = [
            {
                "key": "PostImage",
                "value": {
                    "__type": f"Entity:{CONTRACTS}",
                    "Attributes": image_columns,
                    "EntityState": None,
                    "FormattedValues": [],
                    "Id": order_id,
                    "KeyAttributes": [],
                    "LogicalName": "salesorder",
                    "RelatedEntities": [],
                    "RowVersion": None,
                },
            }
        ]
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def post_dynamics(client: Any, body: dict[str, Any] | bytes, *, key: str | None = DYNAMICS_KEY, **headers: str) -> Any:
    """POST a body to the Dynamics webhook with the WebhookKey as ``?code=`` (``key=None``: without it)."""
    data = body if isinstance(body, bytes) else encode(body)
    url = "/webhooks/dynamics" + (f"?code={key}" if key is not None else "")
    return client.post(url, data=data, headers={"Content-Type": "application/json", **headers})
