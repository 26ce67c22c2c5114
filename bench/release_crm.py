"""The two Dynamics 365 webhook bodies ``bench.release`` sends, in exactly the recorded format.

The recorded account Create and Update bodies (``shared/fixtures/dynamics``) are the templates;
only ids, times, the user and the Target's columns change, as in tests/crm_bodies.py (which is
not imported: the benchmark does not depend on the test package).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("HOLDFAST_FIXTURES", ROOT.parent / "shared" / "fixtures"))
CREATE = FIXTURES / "dynamics" / "account_create_sync_postoperation.json"
UPDATE = FIXTURES / "dynamics" / "account_update_sync_postoperation.json"
FINANCE_USER = "df010dad-f103-4589-ba66-76a5a04c2a11"  # the user of the recorded Update
CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"


def _date(at: datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)})/"


def _user(user: str) -> dict[str, Any]:
    return {
        "__type": f"EntityReference:{CONTRACTS}",
        "Id": user,
        "KeyAttributes": [],
        "LogicalName": "systemuser",
        "Name": None,
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


def _stamp(body: dict[str, Any], account_id: str, at: datetime) -> None:
    operation = str(uuid.uuid4())
    body.update(
        OperationId=operation,
        RequestId=operation,
        CorrelationId=str(uuid.uuid4()),
        OperationCreatedOn=_date(at),
        UserId=FINANCE_USER,
        InitiatingUserId=FINANCE_USER,
        PrimaryEntityId=account_id,
    )
    _target(body)["Id"] = account_id


def account_create(account_id: str, *, name: str, credit_on_hold: bool, at: datetime | None = None) -> bytes:
    """The recorded account Create for another account (no credit limit: unlimited)."""
    at = at or datetime.now(UTC)
    body: dict[str, Any] = json.loads(CREATE.read_text(encoding="utf-8"))
    _stamp(body, account_id, at)
    body.pop("ParentContext", None)
    attributes = _target(body)["Attributes"]
    for key, value in (
        ("accountid", account_id),
        ("name", name),
        ("creditonhold", credit_on_hold),
        ("creditlimit", None),
        ("createdon", _date(at)),
        ("modifiedon", _date(at)),
        ("modifiedby", _user(FINANCE_USER)),
    ):
        _set(attributes, key, value)
    for pair in body["OutputParameters"]:
        if pair["key"] == "id":
            pair["value"] = account_id
    return json.dumps(body, ensure_ascii=False).encode()


def account_update(account_id: str, changes: dict[str, Any], *, at: datetime | None = None) -> bytes:
    """The recorded account Update: the Target carries only the changed columns."""
    at = at or datetime.now(UTC)
    body: dict[str, Any] = json.loads(UPDATE.read_text(encoding="utf-8"))
    _stamp(body, account_id, at)
    target = _target(body)
    target["Attributes"] = [
        {"key": "accountid", "value": account_id},
        {"key": "modifiedon", "value": _date(at)},
        {"key": "modifiedby", "value": _user(FINANCE_USER)},
        {"key": "modifiedonbehalfby", "value": None},
    ]
    for key, value in changes.items():
        _set(target["Attributes"], key, value)
    return json.dumps(body, ensure_ascii=False).encode()
