"""``kill -9`` of the worker, again and again, while events and releases flow, with two beats running.

Afterwards every event is processed once, every order is provisioned once (never two calls of
one order at once), and the CRM's creditonhold equals each account's effective hold: what a
crash lost (a message, a call's record, a CRM write) is found again by the sweep and the
relay's recovery.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import stripe_fixture
from tests.faults.stack import Stack, until
from tests.https_server import HttpsServer, Reply, local_ca, serve_tenant, token_reply

TENANT = "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a"
PATCH = re.compile(r"/api/data/v9\.2/accounts\((?P<id>[0-9a-f-]+)\)")
ACCOUNTS = [str(uuid.UUID(int=0x2000 + n)) for n in range(10)]  # GUIDs: the CRM's ids
KILLS = 8
KILL_EVERY = 2.5  # seconds


@pytest.fixture
def crm() -> Iterator[HttpsServer]:
    with HttpsServer() as server:
        serve_tenant(server, TENANT, token_reply("token-for-holdfast"))
        server.route("PATCH", PATCH, Reply(204))
        yield server


def crm_env(crm: HttpsServer) -> dict[str, str]:
    return {
        "DYNAMICS_API_URL": crm.url,
        "DYNAMICS_TENANT_ID": TENANT,
        "DYNAMICS_CLIENT_ID": "crm-client",
        "DYNAMICS_CLIENT_SECRET": "crm-secret-" + uuid.uuid4().hex,
        "DYNAMICS_AUTHORITY_URL": crm.url,
        "REQUESTS_CA_BUNDLE": str(local_ca().ca_path),
    }


def invoice_event(kind: str, customer: str, invoice: str, created: int) -> dict[str, Any]:
    event = stripe_fixture(f"invoice.{kind}.stripe-ruby-mock.json", customer=customer, id=invoice)
    event["created"] = created
    return event


def actions(stack: Stack) -> list[Any]:
    """Every account is held by a failed payment; even ones are paid (released) and order meanwhile,
    odd ones pay and then fail again (held at the end). Interleaved across accounts."""
    t0 = int(time.time()) - 600  # the events happened in the last ten minutes
    per_account: list[list[Any]] = []
    for n, account in enumerate(ACCOUNTS):
        customer = f"cus_crash{n}"
        steps: list[Any] = []

        def order(k: int, account: str = account) -> None:
            stack.api("POST", f"/api/accounts/{account}/orders", json={"order_id": f"SO-{k}", "amount": "2.00"})

        def stripe(event: dict[str, Any]) -> None:
            assert stack.post_stripe(event).status_code == 200

        if n % 2 == 0:
            steps += [lambda o=order: o(1), lambda o=order: o(2)]
            steps.append(lambda c=customer, n=n: stripe(invoice_event("payment_failed", c, f"in_a{n}", t0)))
            steps += [lambda o=order: o(3)]  # refused or parked, depending on who is faster
            steps.append(lambda c=customer, n=n: stripe(invoice_event("paid", c, f"in_a{n}", t0 + 60)))
            steps += [lambda o=order: o(4)]
        else:
            steps.append(lambda c=customer, n=n: stripe(invoice_event("payment_failed", c, f"in_a{n}", t0)))
            steps.append(lambda c=customer, n=n: stripe(invoice_event("paid", c, f"in_a{n}", t0 + 60)))
            steps.append(lambda c=customer, n=n: stripe(invoice_event("payment_failed", c, f"in_b{n}", t0 + 120)))
        per_account.append(steps)
    interleaved = []
    for i in range(max(len(s) for s in per_account)):
        interleaved += [steps[i] for steps in per_account if i < len(steps)]
    return interleaved


def shows_hold(stack: Stack, account: str) -> bool:
    view = stack.api("GET", f"/api/accounts/{account}").json()
    return bool(view["blocks_changes"] or view["parks_provisioning"])


def last_written(crm: HttpsServer) -> dict[str, bool]:
    written: dict[str, bool] = {}
    for request in crm.received("PATCH", PATCH):
        match = PATCH.search(request.path)
        body = request.json()
        if match is None or not isinstance(body, dict):
            continue  # cut off by a kill before its body arrived: nothing was written
        written[match.group("id")] = bool(body["creditonhold"])
    return written


def test_kill_9_of_the_worker_in_a_loop_loses_nothing_and_doubles_nothing(
    stack: Stack, provisioning: Any, crm: HttpsServer
) -> None:
    stack.env.update(crm_env(crm))
    stack.start_web()
    stack.start_beat()
    stack.start_beat()  # two beats at once: every periodic task twice
    for n, account in enumerate(ACCOUNTS):
        mapped = stack.api("PUT", f"/api/accounts/{account}", json={"stripe_customer_id": f"cus_crash{n}"})
        assert mapped.status_code == 201, mapped.text
    provisioning.answer(200, delay_seconds=0.3)
    worker = stack.start_worker(concurrency=2)

    load = actions(stack)
    errors: list[BaseException] = []

    pause = KILL_EVERY * KILLS / len(load)  # the load runs as long as the kills do

    def run_load() -> None:
        try:
            for step in load:
                step()
                time.sleep(pause)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    flowing = threading.Thread(target=run_load)
    flowing.start()
    for _ in range(KILLS):
        time.sleep(KILL_EVERY)
        worker.kill()  # SIGKILL to the whole group: nothing recorded, nothing acknowledged
        stack.workers.remove(worker)
        worker = stack.start_worker(concurrency=2)
    flowing.join(120)
    assert not flowing.is_alive() and errors == []

    def settled() -> bool:
        undone = stack.rows("SELECT count(*) FROM inbox_events WHERE status <> 'processed'")[0][0]
        pending = stack.rows(
            "SELECT count(*) FROM provisioning_requests WHERE state IN ('awaiting', 'queued', 'provisioning')"
        )[0][0]
        written = last_written(crm)
        crm_true = all(written.get(a) == shows_hold(stack, a) for a in ACCOUNTS)
        return undone == 0 and pending == 0 and crm_true

    took = until(settled, timeout=180, interval=1.0, what="events, orders and the CRM to settle")
    print(f"\n{KILLS} kills; settled {took:.0f} s after the last one")

    events = stack.rows("SELECT status, count(*) FROM inbox_events GROUP BY status")
    stripe_events = sum(2 if n % 2 == 0 else 3 for n in range(len(ACCOUNTS)))
    assert [tuple(r) for r in events] == [("processed", stripe_events)]
    placed = Counter(r[0] for r in stack.rows("SELECT account_id FROM timeline_entries WHERE kind = 'hold_placed'"))
    released = Counter(r[0] for r in stack.rows("SELECT account_id FROM timeline_entries WHERE kind = 'hold_released'"))
    for n, account in enumerate(ACCOUNTS):  # each event's effect once
        expected = (1, 1) if n % 2 == 0 else (2, 1)
        assert (placed[account], released[account]) == expected, account
        assert shows_hold(stack, account) is (n % 2 == 1)

    requests = stack.rows("SELECT request_id, state FROM provisioning_requests")
    assert requests and {r[1] for r in requests} == {"provisioned"}
    provisioned = Counter(
        r[0]
        for r in stack.rows("SELECT detail->>'request_id' FROM timeline_entries WHERE kind = 'request_provisioned'")
    )
    assert set(provisioned) == {r[0] for r in requests} and set(provisioned.values()) == {1}
    assert set(provisioning.keys()) == {r[0] for r in requests}
    assert provisioning.overlapping() == []  # a call was repeated only after the one before it ended
    print(f"{len(requests)} orders, {len(provisioning.keys())} calls, {len(crm.received('PATCH', PATCH))} CRM writes")
