"""The admin API against its own OpenAPI document, with schemathesis: no 5xx, every answer as documented.

Every operation of ``/openapi.json`` is called with data generated from the document (valid and
invalid), through the real app on the test backend (PostgreSQL in the postgres pass); and, on
top, with the inputs that once reached a 500: a NUL character in every text field, query
parameter and path parameter, a 5,000-digit number (and one with 5,000 decimals) in every
numeric field, and an amount with more decimals than its currency has.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_TOKEN

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NUL = "nul\u0000here"
# JSON text put in place of one value at a time (numbers too long for Python's json module to write).
BAD_JSON = {
    "nul": '"nul\\u0000here"',
    "5000-digits": "9" * 5000,
    "5000-decimals": "0." + "1" * 5000,
    "3-decimals": '"10.001"',
    "1e400": "1e400",
}
PLACEHOLDER = "__bad__"


@pytest.fixture
def api_schema(app: Any, client: Any) -> Any:
    """The document the app serves, loaded by schemathesis; an account to act on, so routes get past 404."""
    client.put("/api/accounts/acme", json={"name": "Acme", "currency": "usd", "credit_limit": "100.00"}, headers=AUTH)
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_its_document_says(api_schema: Any, mode: GenerationMode) -> None:
    """Data generated from the document, valid and invalid, for every operation (seeded: CI repeats it)."""
    for operation in _operations(api_schema):
        if mode is GenerationMode.NEGATIVE and not _takes_input(operation):
            continue  # /healthz, /readyz: nothing a caller sends can be invalid (positive mode calls them)

        @given(operation.as_strategy(mode))
        @settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Any) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        answers_as_documented()


def _operations(api_schema: Any) -> Iterator[Any]:
    for result in api_schema.get_all_operations():
        yield result.ok()


def _takes_input(operation: Any) -> bool:
    """Whether the operation reads anything from its caller: parameters, a body or a credential."""
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody") or raw.get("security", True))


def _with_every_string(value: Any, replacement: Any) -> Iterator[Any]:
    """Copies of a JSON value with one string (or number) at a time replaced."""
    if isinstance(value, dict):
        for key in value:
            for replaced in _with_every_string(value[key], replacement):
                changed = copy.copy(value)
                changed[key] = replaced
                yield changed
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield replacement


def _example_body(operation: Any) -> dict[str, Any] | None:
    body = operation.definition.raw.get("requestBody")
    if not body:
        return None
    properties = body["content"]["application/json"]["schema"]
    ref = properties.get("$ref")
    if ref:
        properties = operation.schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return {name: "1" if spec.get("type") != "string" else "x" for name, spec in properties["properties"].items()}


def _path(operation: Any, value: str) -> dict[str, str]:
    return {p.name: value for p in operation.path_parameters} if operation.path_parameters else {}


@pytest.mark.parametrize("bad", list(BAD_JSON))
def test_what_once_reached_a_500_gets_a_documented_4xx_on_every_operation(
    api_schema: Any, client: Any, bad: str
) -> None:
    for operation in _operations(api_schema):
        path = _path(operation, "acme")
        body = _example_body(operation)
        attempts: list[tuple[dict[str, str], dict[str, str], Any]] = []  # path, query, body
        if body is not None:
            attempts += [(path, {}, b) for b in _with_every_string(body, PLACEHOLDER)]
        if bad == "nul":
            if operation.path_parameters:
                attempts.append((_path(operation, NUL), {}, body))
            attempts += [(path, {parameter.name: NUL}, body) for parameter in operation.query]
        for path_parameters, query, sent in attempts:
            with_body = {} if sent is None else {"body": sent, "media_type": "application/json"}
            case = operation.Case(path_parameters=path_parameters, query=query or None, **with_body)
            url = operation.path.format(**{k: quote(v, safe="") for k, v in path_parameters.items()})
            data = None if sent is None else json.dumps(sent).replace(f'"{PLACEHOLDER}"', BAD_JSON[bad])
            response = client.open(
                url,
                method=operation.method.upper(),
                query_string=query,
                data=data,
                headers={**AUTH, **({"Content-Type": "application/json"} if data is not None else {})},
            )
            what = f"{operation.label} {query or ''} {data[:200] if data else ''}"
            assert response.status_code < 500, what
            case.validate_response(response, checks=CHECKS[1:4])  # status, content type and body as documented
