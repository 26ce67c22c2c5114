"""Query strings of the ``/api`` lists: limits outside 1 to 500, cursors the API did not give out, unknown parameters.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.bad_input import NothingChanges, refused

LIST_ROUTES = [
    pytest.param("/api/accounts", id="accounts"),
    pytest.param("/api/accounts/acme/timeline", id="timeline"),
    pytest.param("/api/events", id="events"),
]


@pytest.mark.parametrize("url", LIST_ROUTES)
@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "1.5", "", "1e2", "99999999999999999999"])
def test_a_limit_outside_1_to_500_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, limit: str
) -> None:
    with nothing_changes():
        response = client.get(url, query_string={"limit": limit}, headers=admin)
    assert "limit" in refused(response, 400, "validation_error")["message"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    pytest.param("!!!", id="not-base64"),
    pytest.param("a", id="one-character"),
    pytest.param("YWJj*", id="base64-with-a-stray-character"),
    pytest.param(_b64(b"\xff\xfe"), id="not-utf8"),
    pytest.param(_b64(b"\x00"), id="a-nul"),
    pytest.param(_b64(b"acme\x00"), id="ends-in-a-nul"),
    pytest.param("", id="empty"),
    pytest.param("a" * 501, id="too-long"),
]
BAD_ROW_CURSORS = [  # the timeline and the inbox page by row id
    pytest.param(_b64(b"acme"), id="not-a-number"),
    pytest.param(_b64(b"-5"), id="a-negative-number"),
    pytest.param(_b64("\u00b2".encode()), id="a-superscript-digit"),
    pytest.param(_b64("\u0661\u0662".encode()), id="arabic-indic-digits"),
    pytest.param(_b64(b"9" * 40), id="a-number-beyond-any-id"),
    pytest.param(_b64(b"9223372036854775808"), id="just-beyond-bigint"),
]


@pytest.mark.parametrize("url", LIST_ROUTES)
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_cursor_this_api_did_not_give_out_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, cursor: str
) -> None:
    with nothing_changes():
        response = client.get(url, query_string={"cursor": cursor}, headers=admin)
    assert "cursor" in refused(response, 400)["message"]


@pytest.mark.parametrize("url", [p for p in LIST_ROUTES if p.id != "accounts"])
@pytest.mark.parametrize("cursor", BAD_ROW_CURSORS)
def test_a_row_cursor_that_is_not_a_row_id_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, cursor: str
) -> None:
    with nothing_changes():
        response = client.get(url, query_string={"cursor": cursor}, headers=admin)
    refused(response, 400, "invalid_cursor")


def test_a_cursor_that_was_given_out_pages_through_every_list(client: Any, admin: dict[str, str], seeded: None) -> None:
    for url in ("/api/accounts", "/api/accounts/acme/timeline", "/api/events"):
        first = client.get(url, query_string={"limit": 1}, headers=admin)
        assert first.status_code == 200 and first.json["next_cursor"], (url, first.json)
        second = client.get(url, query_string={"limit": 1, "cursor": first.json["next_cursor"]}, headers=admin)
        assert second.status_code == 200 and second.json["items"] != first.json["items"], url


@pytest.mark.parametrize(
    ("url", "query"),
    [
        pytest.param("/api/accounts", {"on_hold": "maybe"}, id="on-hold-not-a-boolean"),
        pytest.param("/api/accounts", {"on_hold": ""}, id="on-hold-empty"),
        pytest.param("/api/accounts", {"colour": "red"}, id="accounts-unknown-parameter"),
        pytest.param("/api/accounts", {"reason": "late"}, id="accounts-unknown-reason"),
        pytest.param("/api/accounts", {"reason": ""}, id="accounts-empty-reason"),
        pytest.param("/api/accounts", {"reason": "manual", "on_hold": "false"}, id="reason-without-holds"),
        pytest.param("/api/accounts/acme/timeline", {"on_hold": "true"}, id="timeline-unknown-parameter"),
        pytest.param("/api/events", {"status": "lost"}, id="events-unknown-status"),
        pytest.param("/api/events", {"status": ""}, id="events-empty-status"),
        pytest.param("/api/events", {"colour": "red"}, id="events-unknown-parameter"),
    ],
)
def test_a_query_parameter_that_is_unknown_or_of_the_wrong_kind_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, query: dict[str, str]
) -> None:
    with nothing_changes():
        response = client.get(url, query_string=query, headers=admin)
    assert next(iter(query)) in refused(response, 400, "validation_error")["message"]
