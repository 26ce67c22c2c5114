"""A slow provisioning API: each request is sent once, and never while its previous call is under way.

Reproduced on the code before the per-account sender: 20 orders released at once against an
API taking 3 s per call with PROVISIONING_STUCK_SECONDS=10 had 16 of 20 keys POSTed twice at
the same moment (the whole batch was marked provisioning when claimed, then sent one by one,
and the sweep re-queued the tail still waiting its turn).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.faults.stack import Stack, until

ORDERS = 50
CALL_SECONDS = 3.0


def test_fifty_orders_released_at_once_against_a_3_second_api_are_each_sent_once_never_overlapping(
    stack: Stack, provisioning: Any
) -> None:
    stack.start_web()
    stack.start_worker(concurrency=2)
    stack.start_beat()  # the sweep every second, PROVISIONING_STUCK_SECONDS=2: shorter than one call
    assert stack.api("PUT", "/api/accounts/acme", json={"name": "Acme", "credit_limit": "0"}).status_code == 201
    ids = [
        stack.api("POST", "/api/accounts/acme/orders", json={"order_id": f"SO-{n}", "amount": "1.00"}).json()[
            "request_id"
        ]
        for n in range(ORDERS)
    ]
    provisioning.answer(200, delay_seconds=CALL_SECONDS)
    released = stack.api("PUT", "/api/accounts/acme", json={"credit_limit": None})  # every order may go now
    assert released.status_code == 200

    def all_provisioned() -> bool:
        states = stack.rows("SELECT state, count(*) FROM provisioning_requests GROUP BY state")
        return dict(states) == {"provisioned": ORDERS}

    took = until(all_provisioned, timeout=ORDERS * CALL_SECONDS + 120, what="every order provisioned", interval=1.0)
    print(f"\n{ORDERS} orders x {CALL_SECONDS:g} s calls provisioned in {took:.0f} s")
    calls = Counter(provisioning.keys())
    assert set(calls) == set(ids)
    assert [key for key, n in calls.items() if n > 1] == []  # each key sent exactly once
    assert provisioning.overlapping() == []
    assert provisioning.keys() == ids  # one account's orders: oldest first
