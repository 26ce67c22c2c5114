"""Bad input on ``/api/events/<source>/<id>/replay``: unknown events, ids that cannot be ids, events not failed.

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
    ("source", "event_id"),
    [
        pytest.param("stripe", "evt_unknown", id="unknown-event"),
        pytest.param("dynamics", FAILED_EVENT_ID, id="other-source"),
        pytest.param("bogus", "evt_1", id="unknown-source"),
        pytest.param("stripe", "evt_" + "x" * 300, id="event-id-too-long"),
        pytest.param("s" * 40, "evt_1", id="source-too-long"),
    ],
)
def test_replaying_an_event_that_is_not_stored_is_not_found(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, source: str, event_id: str
) -> None:
    with nothing_changes():
        response = client.post(f"/api/events/{source}/{event_id}/replay", headers=admin)
    refused(response, 404, "event_not_found")


@pytest.mark.parametrize(
    ("source", "event_id"),
    [
        pytest.param("stripe", "evt_%00", id="event-id-with-a-nul"),
        pytest.param("str%00ipe", "evt_1", id="source-with-a-nul"),
        pytest.param("stripe", "evt_%0A", id="event-id-with-a-newline"),
    ],
)
def test_replaying_an_event_id_that_cannot_be_one_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, source: str, event_id: str
) -> None:
    with nothing_changes():
        response = client.post(f"/api/events/{source}/{event_id}/replay", headers=admin)
    refused(response, 400)


def test_replaying_an_event_that_has_not_failed_is_a_conflict(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post("/api/events/stripe/evt_done_0001/replay", headers=admin)
    assert "processed" in refused(response, 409, "not_replayable")["message"]
