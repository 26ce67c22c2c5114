"""An address that is not a route is 404, and a method a route does not take is 405, both with a sentence.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input import FAILED_EVENT_ID, NothingChanges, refused


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("PATCH", "/api/accounts/acme", id="patch-account"),
        pytest.param("DELETE", "/api/accounts/acme", id="delete-account"),
        pytest.param("GET", "/api/ops/sweep", id="get-sweep"),
        pytest.param("GET", f"/api/events/stripe/{FAILED_EVENT_ID}/replay", id="get-replay"),
    ],
)
def test_a_method_a_route_does_not_accept_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str
) -> None:
    with nothing_changes():
        response = client.open(url, method=method, headers=admin)
    refused(response, 405, "method_not_allowed")


@pytest.mark.parametrize("url", ["/api/nothing-here", "/api/accounts/acme/holds/manual/extra", "/api/ops/nap"])
def test_an_address_that_is_not_a_route_is_not_found(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges, url: str
) -> None:
    with nothing_changes():
        response = client.post(url, headers=admin)
    refused(response, 404, "not_found")
