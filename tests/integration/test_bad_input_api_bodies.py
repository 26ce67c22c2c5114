"""Bodies of the ``/api`` routes that take JSON: not JSON, not an object, not sent as JSON, too large.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bad_input import FAILED_EVENT_ID, TWO_MIB, NothingChanges, refused

JSON_ROUTES = [
    pytest.param("PUT", "/api/accounts/globex", id="put-account"),
    pytest.param("PUT", "/api/accounts/newcomer", id="put-new-account"),
    pytest.param("POST", "/api/accounts/globex/holds", id="place-hold"),
]


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"name": "Trunc', id="truncated"),
        pytest.param("{'name': 'x'}", id="python-repr"),
        pytest.param('{"name": "x"} {"name": "y"}', id="two-documents"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="nested-too-deep"),
        pytest.param(b'{"name": "B\xe4d"}', id="not-utf8"),
    ],
)
def test_a_body_that_is_not_json_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str, body: Any
) -> None:
    with nothing_changes():
        response = client.open(url, method=method, data=body, content_type="application/json", headers=admin)
    assert "JSON" in refused(response, 400, "malformed_json")["message"]


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param([{"name": "x"}], id="an-array"),
        pytest.param("name", id="a-string"),
        pytest.param(12, id="a-number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="true"),
    ],
)
def test_a_json_body_that_is_not_an_object_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str, body: Any
) -> None:
    with nothing_changes():
        response = client.open(
            url, method=method, data=json.dumps(body), content_type="application/json", headers=admin
        )
    refused(response, 400, "validation_error")


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_refused_rather_than_ignored(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    content_type: str | None,
) -> None:
    body = json.dumps({"reason": "manual", "name": "Sent as text"})
    with nothing_changes():
        response = client.open(url, method=method, data=body, content_type=content_type, headers=admin)
    assert "JSON" in refused(response, 415, "unsupported_media_type")["message"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        *JSON_ROUTES,
        pytest.param("DELETE", "/api/accounts/acme/holds/manual", id="lift-hold"),
        pytest.param("POST", f"/api/events/stripe/{FAILED_EVENT_ID}/replay", id="replay"),
        pytest.param("POST", "/api/ops/sweep", id="sweep"),
    ],
)
def test_a_two_mebibyte_body_to_an_api_route_is_refused_as_too_large(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str
) -> None:
    body = json.dumps({"reason": "manual", "name": "x" * TWO_MIB})
    with nothing_changes():
        response = client.open(url, method=method, data=body, content_type="application/json", headers=admin)
    refused(response, 413, "payload_too_large")
