"""Dataverse webhook bodies for tests: the recorded fixtures, and bodies built from them."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "dynamics"
if not FIXTURES.exists():  # a clone elsewhere: shared/ beside the repository, as in tests/conftest.py
    _SHARED = Path(os.environ.get("HOLDFAST_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
    FIXTURES = _SHARED / "dynamics"

ENTITY_TYPE = "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
REFERENCE_TYPE = "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts"
MONEY_TYPE = "Money:http://schemas.microsoft.com/xrm/2011/Contracts"


def fixture_names() -> list[str]:
    return sorted(path.name for path in FIXTURES.glob("*.json"))


def recorded(name: str) -> bytes:
    """A fixture's bytes exactly as recorded."""
    return (FIXTURES / name).read_bytes()


def document(name: str) -> dict[str, Any]:
    """A fixture as a JSON document to change (a fresh copy each time)."""
    loaded: dict[str, Any] = json.loads(recorded(name))
    return copy.deepcopy(loaded)


def encode(body: Any) -> bytes:
    """A document as a Dataverse body: UTF-8, non-ASCII text unescaped."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def target_attributes(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The Target's key/value attribute list, to change in place."""
    for pair in body["InputParameters"]:
        if pair["key"] == "Target":
            attributes: list[dict[str, Any]] = pair["value"]["Attributes"]
            return attributes
    raise KeyError("Target")


def set_attribute(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set (or add) one Target column, as the wire format spells it."""
    attributes = target_attributes(body)
    for pair in attributes:
        if pair["key"] == key:
            pair["value"] = value
            return body
    attributes.append({"key": key, "value": value})
    return body


def account_create(name: str) -> bytes:
    """The recorded account Create, with the account's name (Target and ParentContext) replaced."""
    body = document("account_create_sync_postoperation.json")
    set_attribute(body, "name", name)
    set_attribute(body["ParentContext"], "name", name)
    return encode(body)


def account_delete() -> bytes:
    """An account Delete: the Target is an EntityReference (built from the recorded Update)."""
    body = document("account_update_sync_postoperation.json")
    reference = {
        "__type": REFERENCE_TYPE,
        "Id": body["PrimaryEntityId"],
        "KeyAttributes": [],
        "LogicalName": "account",
        "Name": None,
        "RowVersion": None,
    }
    body["MessageName"] = "Delete"
    body["InputParameters"] = [{"key": "Target", "value": reference}]
    body["ParentContext"] = None
    return encode(body)


def with_parents(name: str, levels: int) -> bytes:
    """A recorded body whose ParentContext chain is ``levels`` contexts longer."""
    base = document(name)
    body = base
    for _ in range(levels):
        body = dict(base, ParentContext=body)
    return encode(body)
