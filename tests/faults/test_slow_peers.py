"""A slow or failing peer stalls nothing else: the Dataverse Web API answering 429 (Retry-After: 60) for a
minute and Stripe's API hanging, while holds for other accounts are placed and released within seconds.

The events worker never calls a peer: a dispute (whose customer only Stripe's API knows) waits on
the Stripe queue, the CRM's writes wait out their Retry-After on the CRM queue.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import stripe_fixture
from tests.faults.stack import Stack, until
from tests.faults.test_worker_crashes import crm_env
from tests.https_server import HttpsServer, Recorded, Reply, serve_tenant, token_reply

TENANT = "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a"
PATCH = re.compile(r"/api/data/v9\.2/accounts\((?P<id>[0-9a-f-]+)\)")
THROTTLED_SECONDS = 60
DISPUTED = str(uuid.UUID(int=0x3000))
OTHERS = [str(uuid.UUID(int=0x3001 + n)) for n in range(4)]


class ThrottlingCrm:
    """The Dataverse Web API answering 429 (Retry-After: 60) for a minute, then accepting writes."""

    def __init__(self, server: HttpsServer) -> None:
        self.server = server
        self.started = time.monotonic()
        self.accepted: dict[str, bool] = {}  # creditonhold as the CRM holds it, per account
        self.throttled = 0

    def answer(self, request: Recorded) -> Reply:
        if time.monotonic() - self.started < THROTTLED_SECONDS:
            self.throttled += 1
            return Reply(429, {"error": {"message": "Number of requests exceeded the limit"}}, {"Retry-After": "60"})
        match = PATCH.search(request.path)
        assert match is not None
        self.accepted[match.group("id")] = bool(request.json()["creditonhold"])
        return Reply(204)


@pytest.fixture
def throttling_crm() -> Iterator[ThrottlingCrm]:
    with HttpsServer() as server:
        serve_tenant(server, TENANT, token_reply("token-for-holdfast"))
        crm = ThrottlingCrm(server)
        server.route("PATCH", PATCH, crm.answer)
        yield crm


def holds(stack: Stack, account: str) -> list[str]:
    return [h["reason"] for h in stack.api("GET", f"/api/accounts/{account}").json()["holds"]]


def test_holds_are_placed_and_released_within_seconds_while_the_crm_throttles_and_stripe_hangs(
    stack: Stack, provisioning: Any, stripe_api_stub: Any, throttling_crm: ThrottlingCrm
) -> None:
    stack.env.update({**crm_env(throttling_crm.server), "DYNAMICS_TENANT_ID": TENANT})
    stack.start_web()
    stack.start_worker(concurrency=2)
    stack.start_beat()
    for n, account in enumerate([DISPUTED, *OTHERS]):
        assert stack.api("PUT", f"/api/accounts/{account}", json={"stripe_customer_id": f"cus_peer{n}"}).ok
    stripe_api_stub.add_charge("ch_peer", {"id": "ch_peer", "object": "charge", "customer": "cus_peer0"})
    stripe_api_stub.hang()
    dispute = stripe_fixture("charge.dispute.created.stripe-sync-engine.json", id="dp_peer", charge="ch_peer")
    assert stack.post_stripe(dispute).status_code == 200  # its look-up hangs on the Stripe queue

    created = int(time.time()) - 600
    timings = []
    for n, account in enumerate(OTHERS, start=1):
        failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer=f"cus_peer{n}", id=f"in_p{n}")
        failed["created"] = created
        paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer=f"cus_peer{n}", id=f"in_p{n}")
        paid["created"] = created + 60
        stack.post_stripe(failed)
        placed = until(lambda a=account: holds(stack, a) == ["non_payment"], timeout=15, what="the hold placed")
        stack.post_stripe(paid)
        released = until(lambda a=account: holds(stack, a) == [], timeout=15, what="the hold released")
        timings.append((placed, released))
        time.sleep(5)  # spread over the minute of throttling
    print("\nplaced / released after (s):", ", ".join(f"{p:.1f}/{r:.1f}" for p, r in timings))
    assert holds(stack, DISPUTED) == []  # the dispute still waits for Stripe
    assert throttling_crm.throttled > 0 and throttling_crm.accepted == {}  # asked, and answered 429

    stripe_api_stub.hang(False)  # Stripe answers again: the dispute's look-up completes
    until(lambda: holds(stack, DISPUTED) == ["dispute"], timeout=60, what="the dispute hold")

    def crm_shows_effective_holds() -> bool:
        # The others' holds came and went while the CRM refused every write: a write decided when
        # it runs finds nothing to change, so their creditonhold is never set (nor left) true.
        accepted = throttling_crm.accepted
        return accepted.get(DISPUTED) is True and all(accepted.get(a) is not True for a in OTHERS)

    # Before the minute is over every write was refused; the CRM converges once it answers again.
    try:
        until(crm_shows_effective_holds, timeout=THROTTLED_SECONDS + 90, interval=1.0, what="the CRM to converge")
    except AssertionError:
        for account in [DISPUTED, *OTHERS]:
            entries = stack.api("GET", f"/api/accounts/{account}/timeline").json()["items"]
            print(account, throttling_crm.accepted.get(account), [(e["at"][11:19], e["kind"]) for e in entries])
        print(stack.rows("SELECT account_id, crm_on_hold, crm_written_on_hold, crm_sync_due_at FROM accounts"))
        print("\n".join(stack.workers[0].lines[-60:]))
        raise
