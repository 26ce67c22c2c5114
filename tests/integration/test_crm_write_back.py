"""Writing creditonhold back to the CRM: outcomes recorded on the timeline (local HTTPS authority and Web API)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.dynamics_webapi import DynamicsWebApi, WebApiSettings
from services.crm_write_back import write_back_hold
from tests.https_server import HttpsServer, Reply, local_ca, serve_tenant, token_reply

TENANT = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
ACCOUNT = "8f9e0d1c-2b3a-4c5d-9e6f-7a8b9c0d1e2f"
PATCH = re.compile(r"/api/data/v9\.2/accounts\(.+\)")


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsServer]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(local_ca().ca_path))
    with HttpsServer() as server:
        serve_tenant(server, TENANT, token_reply("tok"))
        yield server


@pytest.fixture
def writer(crm: HttpsServer) -> DynamicsWebApi:
    return DynamicsWebApi(WebApiSettings(crm.url, TENANT, "client-id", "client-secret", authority_url=crm.url))


@pytest.fixture
def held(client: Any, admin: dict[str, str]) -> str:
    client.put(f"/api/accounts/{ACCOUNT}", json={"name": "Acme"}, headers=admin)
    client.post(f"/api/accounts/{ACCOUNT}/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    return ACCOUNT


def timeline(client: Any, admin: dict[str, str]) -> list[dict[str, Any]]:
    return list(client.get(f"/api/accounts/{ACCOUNT}/timeline", headers=admin).json["items"])


def test_a_written_value_is_recorded_and_not_written_again(
    client: Any, admin: dict[str, str], container: Any, crm: HttpsServer, writer: DynamicsWebApi, held: str
) -> None:
    crm.route("PATCH", PATCH, Reply(204))
    ctx = dataclasses.replace(container.context, crm_write_back=True)
    assert write_back_hold(container.uow, ctx, writer, held, container.clock).outcome == "written"
    assert [r.json() for r in crm.received("PATCH", PATCH)] == [{"creditonhold": True}]
    assert timeline(client, admin)[0]["kind"] == "crm_updated"
    assert write_back_hold(container.uow, ctx, writer, held, container.clock).outcome == "unchanged"
    assert len(crm.received("PATCH", PATCH)) == 1


@pytest.mark.parametrize("status", [404, 412])
def test_404_and_412_are_clear_failures_on_the_timeline(
    client: Any, admin: dict[str, str], container: Any, crm: HttpsServer, writer: DynamicsWebApi, held: str, status: int
) -> None:
    crm.route("PATCH", PATCH, Reply(status, {"error": {"code": "0x80040217", "message": "account does not exist"}}))
    ctx = dataclasses.replace(container.context, crm_write_back=True)
    assert write_back_hold(container.uow, ctx, writer, held, container.clock).outcome == "failed"
    failure = timeline(client, admin)[0]
    assert failure["kind"] == "crm_update_failed"
    assert failure["detail"]["status"] == status and str(status) in failure["detail"]["why"]


def test_a_429_is_reported_with_its_retry_after_for_the_task_to_wait(
    container: Any, crm: HttpsServer, writer: DynamicsWebApi, held: str
) -> None:
    crm.route("PATCH", PATCH, Reply(429, {"error": {"message": "slow"}}, {"Retry-After": "7"}))
    ctx = dataclasses.replace(container.context, crm_write_back=True)
    result = write_back_hold(container.uow, ctx, writer, held, container.clock)
    assert (result.outcome, result.retry_after_seconds) == ("retry", 7)


class RecordingPublisher:
    """Where follow-up work would go: recorded, not sent (a message lost with a crashed worker)."""

    def __init__(self) -> None:
        self.write_backs: list[str] = []

    def write_back_hold(self, account_id: str, countdown: float | None = None) -> None:
        self.write_backs.append(account_id)

    def dispatch_provisioning(self, account_ids: Any, countdown: float | None = None) -> None:
        pass


def crm_sync_due(container: Any) -> Any:
    from adapters.db.tables import AccountRow

    with container.session_factory() as session:
        return session.get(AccountRow, ACCOUNT).crm_sync_due_at


def test_a_write_lost_with_its_message_is_sent_again_by_the_sweep_and_then_no_more(
    client: Any, admin: dict[str, str], container: Any, crm: HttpsServer, writer: DynamicsWebApi
) -> None:
    from services.accounts import place_manual_hold
    from services.crm_write_back import converge_crm

    client.put(f"/api/accounts/{ACCOUNT}", json={"name": "Acme"}, headers=admin)
    lost = RecordingPublisher()  # the write-back's message never reaches a worker
    ctx = dataclasses.replace(container.context, crm_write_back=True, publisher=lost)
    now = container.clock()
    place_manual_hold(container.uow(), ACCOUNT, "fraud check", ctx, now, actor="user:maria")
    assert lost.write_backs == [ACCOUNT] and crm_sync_due(container) is not None

    sweeper = RecordingPublisher()
    sweeping = dataclasses.replace(ctx, publisher=sweeper)
    assert converge_crm(container.uow(), sweeping, now) == 0  # not due yet: the write may still be on its way
    assert converge_crm(container.uow(), sweeping, now + timedelta(minutes=3)) == 1
    assert sweeper.write_backs == [ACCOUNT]

    crm.route("PATCH", PATCH, Reply(204))
    assert write_back_hold(container.uow, ctx, writer, ACCOUNT, container.clock).outcome == "written"
    assert crm_sync_due(container) is None  # the CRM shows the effective hold: nothing more to look at
    assert converge_crm(container.uow(), sweeping, now + timedelta(hours=1)) == 0


def test_a_write_that_gives_up_is_on_the_timeline_and_sent_again_later(
    client: Any, admin: dict[str, str], container: Any, crm: HttpsServer, writer: DynamicsWebApi, held: str
) -> None:
    from services.crm_write_back import converge_crm

    crm.route("PATCH", PATCH, Reply(503, {"error": {"message": "unavailable"}}))
    ctx = dataclasses.replace(container.context, crm_write_back=True)
    result = write_back_hold(container.uow, ctx, writer, held, container.clock, last_try=True)
    assert result.outcome == "retry"
    gave_up = timeline(client, admin)[0]
    assert gave_up["kind"] == "crm_update_gave_up" and gave_up["detail"]["creditonhold"] is True
    sweeper = RecordingPublisher()
    assert (
        converge_crm(
            container.uow(), dataclasses.replace(ctx, publisher=sweeper), container.clock() + timedelta(minutes=6)
        )
        == 1
    )
    assert sweeper.write_backs == [held]


def test_a_redirect_from_the_web_api_is_not_followed_and_fails_naming_the_location(
    client: Any, admin: dict[str, str], container: Any, crm: HttpsServer, writer: DynamicsWebApi, held: str
) -> None:
    crm.route("PATCH", PATCH, Reply(307, {}, {"Location": "https://elsewhere.example/api"}))
    ctx = dataclasses.replace(container.context, crm_write_back=True)
    assert write_back_hold(container.uow, ctx, writer, held, container.clock).outcome == "failed"
    failure = timeline(client, admin)[0]
    assert failure["kind"] == "crm_update_failed" and "https://elsewhere.example/api" in failure["detail"]["why"]
    assert len(crm.received("PATCH", PATCH)) == 1  # sent once, not re-sent anywhere
