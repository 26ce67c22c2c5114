"""Dynamics 365 (Dataverse) webhook bodies, built on the recorded ones in ../shared/fixtures/dynamics.

The recorded account Create and Update bodies are the templates: only ids, times, users and Target
columns change. A salesorder body is the account Update with the table renamed and a salesorder's
columns in its Target (and PostImage); a Delete is the Update with an EntityReference for Target.
The recorded bodies themselves are here too, as bytes or as documents to change.

Only the standard library is imported: ``bench.release`` builds its bodies here as well.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_SHARED = _ROOT.parent / "shared" / "fixtures"
if not _SHARED.exists():  # a clone elsewhere: shared/ beside the repository, as in tests/conftest.py
    _SHARED = Path(os.environ.get("HOLDFAST_FIXTURES", _ROOT / "shared" / "fixtures"))
FIXTURES = _SHARED / "dynamics"
ACCOUNT_CREATE = "account_create_sync_postoperation.json"
ACCOUNT_UPDATE = "account_update_sync_postoperation.json"

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
ENTITY_TYPE = f"Entity:{CONTRACTS}"
REFERENCE_TYPE = f"EntityReference:{CONTRACTS}"
MONEY_TYPE = f"Money:{CONTRACTS}"
FINANCE_USER = "df010dad-f103-4589-ba66-76a5a04c2a11"  # the user of the recorded Update
APP_USER = "6b4a2f0e-8c1d-4e5f-9a7b-3c2d1e0f9a8b"  # Holdfast's application user in the tests
STRIPE_FIELD = "new_stripecustomerid"


# The recorded bodies


def fixture_names() -> list[str]:
    return sorted(path.name for path in FIXTURES.glob("*.json"))


def recorded(name: str) -> bytes:
    """A fixture's bytes exactly as recorded."""
    return (FIXTURES / name).read_bytes()


def document(name: str) -> dict[str, Any]:
    """A fixture as a JSON document to change (a fresh one each time)."""
    loaded: dict[str, Any] = json.loads(recorded(name))
    return loaded


def encode(body: Any) -> bytes:
    """A document as a Dataverse body: UTF-8, non-ASCII text unescaped."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


# Values in the wire format


def date(at: datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)})/"


def money(amount: str | Decimal) -> dict[str, Any]:
    return {"__type": MONEY_TYPE, "Value": float(Decimal(amount))}


def option(value: int) -> dict[str, Any]:
    return {"__type": f"OptionSetValue:{CONTRACTS}", "Value": value}


def reference(logical_name: str, row_id: str, name: str | None = None) -> dict[str, Any]:
    return {
        "__type": REFERENCE_TYPE,
        "Id": row_id,
        "KeyAttributes": [],
        "LogicalName": logical_name,
        "Name": name,
        "RowVersion": None,
    }


# The Target and its columns


def target(body: dict[str, Any]) -> dict[str, Any]:
    """The Target of a body (an Entity, or an EntityReference for a Delete), to change in place."""
    for pair in body["InputParameters"]:
        if pair["key"] == "Target":
            value: dict[str, Any] = pair["value"]
            return value
    raise KeyError("Target")


def target_attributes(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The Target's key/value attribute list, to change in place."""
    attributes: list[dict[str, Any]] = target(body)["Attributes"]
    return attributes


def set_attribute(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set (or add) one Target column, as the wire format spells it."""
    _set(target_attributes(body), key, value)
    return body


def _set(attributes: list[dict[str, Any]], key: str, value: Any) -> None:
    for pair in attributes:
        if pair["key"] == key:
            pair["value"] = value
            return
    attributes.append({"key": key, "value": value})


def _for_row(name: str, row_id: str, *, at: datetime | None, user: str, operation: str | None) -> dict[str, Any]:
    """A recorded body made another operation (``user``'s, at ``at``, now by default) on the row ``row_id``."""
    at = at or datetime.now(UTC)
    body = document(name)
    operation = operation or str(uuid.uuid4())
    body["OperationId"] = operation
    body["RequestId"] = operation
    body["CorrelationId"] = str(uuid.uuid4())
    body["OperationCreatedOn"] = date(at)
    body["UserId"] = user
    body["InitiatingUserId"] = user
    body["PrimaryEntityId"] = row_id
    target(body)["Id"] = row_id
    return body


# Bodies for other rows


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
    body = _for_row(ACCOUNT_CREATE, account_id, at=at, user=user, operation=operation)
    body.pop("ParentContext", None)
    attributes = target_attributes(body)
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
    body = _for_row(ACCOUNT_UPDATE, account_id, at=at, user=user, operation=operation)
    target(body)["Attributes"] = [
        {"key": "accountid", "value": account_id},
        {"key": "modifiedon", "value": date(at)},
        {"key": "modifiedby", "value": reference("systemuser", user)},
        {"key": "modifiedonbehalfby", "value": None},
    ]
    for key, value in changes.items():
        set_attribute(body, key, value)
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
    body = _for_row(ACCOUNT_UPDATE, order_id, at=at, user=user, operation=operation)
    body["MessageName"] = message
    body["PrimaryEntityName"] = "salesorder"
    body["OwningExtension"]["Name"] = f"Holdfast: {message} of salesorder"
    order = target(body)
    order["LogicalName"] = "salesorder"
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
    order["Attributes"] = image_columns if message == "Create" else columns
    if post_image:
        body["PostEntityImages"] = [
            {
                "key": "PostImage",
                "value": {
                    "__type": ENTITY_TYPE,
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


# The recorded rows, changed


def account_create_named(name: str) -> bytes:
    """The recorded account Create as it is, but for the account's name (Target and ParentContext)."""
    body = document(ACCOUNT_CREATE)
    set_attribute(body, "name", name)
    set_attribute(body["ParentContext"], "name", name)
    return encode(body)


def account_delete() -> bytes:
    """The recorded Update's account deleted: the Target is an EntityReference."""
    body = document(ACCOUNT_UPDATE)
    body["MessageName"] = "Delete"
    body["InputParameters"] = [{"key": "Target", "value": reference("account", body["PrimaryEntityId"])}]
    body["ParentContext"] = None
    return encode(body)


def with_parents(name: str, levels: int) -> bytes:
    """A recorded body whose ParentContext chain is ``levels`` contexts longer."""
    base = document(name)
    body = base
    for _ in range(levels):
        body = dict(base, ParentContext=body)
    return encode(body)
