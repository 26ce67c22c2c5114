"""Redis killed during a burst of webhooks and started again empty: every webhook answered 200, every
event processed once, soon after the broker is back, without waiting for the sweep.

Reproduced on the code before: the relay marked rows queued before the publish succeeded, so after
Redis returned only the sweep found them, 500 a minute: 1,200 events took 213 s.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import stripe_fixture
from tests.faults.stack import Stack, until

MAPPED = 20  # accounts whose failed payment must place exactly one hold each
EVENTS = 1200


def failed_payment(customer: str, invoice: str) -> dict[str, Any]:
    return stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer=customer, id=invoice)


def test_events_stored_while_redis_was_down_and_lost_with_it_are_processed_once_when_it_returns(
    stack: Stack,
) -> None:
    stack.start_web()
    # The sweep would re-queue everything after 10 minutes: too late for this test's bound, so
    # only the relay's recovery can pass it.
    slow_sweep = {"SWEEP_INTERVAL_SECONDS": "600", "INBOX_SWEEP_AGE_SECONDS": "600"}
    stack.start_worker(concurrency=2, **slow_sweep)
    stack.start_beat(**slow_sweep)
    for n in range(MAPPED):
        mapped = stack.api("PUT", f"/api/accounts/acct-{n}", json={"stripe_customer_id": f"cus_out{n}"})
        assert mapped.status_code == 201, mapped.text
    events = [failed_payment(f"cus_out{n}", f"in_out_{n}") for n in range(MAPPED)]
    events += [failed_payment(f"cus_free{n}", f"in_free_{n}") for n in range(EVENTS - MAPPED)]

    answers = [stack.post_stripe(event).status_code for event in events[: EVENTS // 3]]
    stack.redis.kill()  # mid-burst: whatever Redis held is gone
    answers += [stack.post_stripe(event).status_code for event in events[EVENTS // 3 :]]
    assert answers == [200] * EVENTS  # the webhook only stores: it answers while the broker is down

    stack.redis.start()  # empty
    processed = "SELECT count(*) FROM inbox_events WHERE status = 'processed'"
    took = until(lambda: stack.rows(processed)[0][0] == EVENTS, timeout=180, what="every event processed", interval=0.5)
    print(f"\n{EVENTS} events processed {took:.1f} s after Redis returned (empty)")

    rows = stack.rows("SELECT status, attempts, count(*) FROM inbox_events GROUP BY status, attempts")
    assert [tuple(r) for r in rows] == [("processed", 1, EVENTS)]  # each processed once, none failed
    held = stack.rows(
        "SELECT account_id, count(*) FROM timeline_entries WHERE kind = 'hold_placed' GROUP BY account_id"
    )
    assert sorted(tuple(r) for r in held) == sorted((f"acct-{n}", 1) for n in range(MAPPED))
