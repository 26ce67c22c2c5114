"""A large book filled straight into a migrated PostgreSQL database, in seconds rather than hours.

Not through the API: ``INSERT ... SELECT FROM generate_series``, one statement per table, then
``VACUUM ANALYZE``, so that the planner sees the sizes production would. For ``accounts`` N and
``inbox`` M (the defaults of the scale benchmarks: 100,000 and 1,000,000):

- N accounts (``acct0000001``...), each mapped to its Stripe customer (``cus_0000001``...), each
  with ``INVOICES_PER_ACCOUNT`` invoice facts (all paid but the newest, open and not yet due),
  ``TIMELINE_PER_ACCOUNT`` timeline entries, and one provisioned order with its one attempt;
- M inbox rows that ended (97 % processed, 3 % ignored), received between 455 and 91 days ago, so
  all of them are past the default retention of 90 days; each a real recorded Stripe event
  (the 4.8 KB ``invoice.payment_failed`` body, pretty-printed as Stripe sends it) under a
  fresh id, stored as the webhook stores it (PostgreSQL compresses it the same way);
- M/1000 failed inbox rows as old, and M/100 processed ones from the last 90 days: the rows a
  purge must leave alone.

``fill(engine, accounts=T, inbox=0)`` gives the small book of only the first T accounts, with
the same history each: what the scale benchmarks compare the large one with.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import infra

TEMPLATE = infra.FIXTURES / "stripe" / "invoice.payment_failed.stripe-ruby-mock.json"
INVOICES_PER_ACCOUNT = 10
TIMELINE_PER_ACCOUNT = 10
RETENTION_DAYS = 90
_ID_MARK = "evt_HOLDFAST_LARGE_BOOK_ID__"


def account_id(n: int) -> str:
    return f"acct{n:07d}"


def customer_id(n: int) -> str:
    return f"cus_{n:07d}"


@dataclass(frozen=True)
class Book:
    """What was filled, and when the book's "now" is (the inbox's ages count from it)."""

    accounts: int
    inbox_ended_old: int
    inbox_failed_old: int
    inbox_recent: int
    now: datetime
    seconds: float

    @property
    def inbox_rows(self) -> int:
        return self.inbox_ended_old + self.inbox_failed_old + self.inbox_recent

    def describe(self) -> str:
        return (
            f"{self.accounts:,} accounts with their Stripe customers, {self.accounts * INVOICES_PER_ACCOUNT:,} invoice "
            f"facts, {self.accounts * TIMELINE_PER_ACCOUNT:,} timeline entries, {self.accounts:,} orders and attempts; "
            f"{self.inbox_rows:,} inbox rows ({self.inbox_ended_old:,} processed or ignored and older than "
            f"{RETENTION_DAYS} days, {self.inbox_failed_old:,} failed, {self.inbox_recent:,} recent); "
            f"filled in {self.seconds:.0f} s"
        )


_BOOK = [
    """INSERT INTO accounts (account_id, name, currency, created_at, updated_at, revision, announced_enforcement)
       SELECT 'acct' || lpad(g::text, 7, '0'), 'Account ' || g, 'usd', :born, :born, 1, ''
       FROM generate_series(1, :n) g""",
    """INSERT INTO stripe_customers (customer_id, account_id, mapped_at, mapping_cause, created_at)
       SELECT 'cus_' || lpad(g::text, 7, '0'), 'acct' || lpad(g::text, 7, '0'), :born, 'stripe:evt_map_' || g, :born
       FROM generate_series(1, :n) g""",
    """INSERT INTO invoices (invoice_id, customer_id, status, currency, amount_remaining, collection_method,
                             due_date, event_id, event_created, failures, uncollectible_since, updated_at)
       SELECT 'in_' || g || '_' || k, 'cus_' || lpad(g::text, 7, '0'),
              CASE WHEN k = :per THEN 'open' ELSE 'paid' END, 'usd',
              CASE WHEN k = :per THEN 120.00 ELSE 0 END, 'charge_automatically',
              CASE WHEN k = :per THEN CAST(:now AS timestamptz) + interval '20 days' END,
              'evt_inv_' || g || '_' || k, CAST(:born AS timestamptz) + k * interval '30 days', '{}'::json, NULL,
              CAST(:born AS timestamptz) + k * interval '30 days'
       FROM generate_series(1, :n) g, generate_series(1, :per) k""",
    """INSERT INTO timeline_entries (account_id, at, kind, actor, cause, detail)
       SELECT 'acct' || lpad(g::text, 7, '0'), CAST(:born AS timestamptz) + k * interval '30 days',
              CASE WHEN k % 2 = 1 THEN 'hold_placed' ELSE 'hold_released' END, 'stripe',
              'stripe:evt_tl_' || g || '_' || k,
              json_build_object('reason', 'non_payment', 'invoice_id', 'in_' || g || '_' || k)
       FROM generate_series(1, :n) g, generate_series(1, :timeline) k""",
    """INSERT INTO provisioning_requests (request_id, account_id, order_id, amount, currency, description, state,
                                          waiting_for, failure, round_attempts, created_at, updated_at, due_at)
       SELECT 'req_' || g, 'acct' || lpad(g::text, 7, '0'), 'SO-' || g, 10.00, 'usd', 'Seat licence', 'provisioned',
              '[]'::json, NULL, 1, :born, :born, NULL
       FROM generate_series(1, :n) g""",
    """INSERT INTO provisioning_attempts (request_id, at, status, error, note, duration_ms)
       SELECT 'req_' || g, :born, 200, NULL, NULL, 120 FROM generate_series(1, :n) g""",
]

# The inbox: ended and old (processed, every 33rd ignored), failed and old, processed and recent.
_INBOX = """
INSERT INTO inbox_events (source, external_id, event_type, payload, status, attempts, last_error, account_id,
                          received_at, queued_at, processed_at, meta, occurred_at)
SELECT 'stripe', 'evt_' || :tag || lpad(g::text, 22, '0'), 'invoice.payment_failed',
       replace(:template, :mark, 'evt_' || :tag || lpad(g::text, 22, '0')),
       CASE WHEN :status = 'processed' AND g % 33 = 0 THEN 'ignored' ELSE :status END, 1,
       CASE WHEN :status = 'failed' THEN 'ValueError: bench' END,
       'acct' || lpad((g % :n + 1)::text, 7, '0'),
       t, t, t + interval '1 second', NULL, t
FROM generate_series(1, :rows) g,
     LATERAL (SELECT CAST(:oldest AS timestamptz) + (g - 1) * CAST(:step AS interval) AS t) received
"""


def _template() -> str:
    event: dict[str, Any] = json.loads(TEMPLATE.read_text())
    event["id"] = _ID_MARK
    return json.dumps(event, indent=2)


def fill(engine: Any, *, accounts: int, inbox: int, now: datetime | None = None) -> Book:
    """Fill an empty migrated database (see the module's docstring); ``VACUUM ANALYZE`` it."""
    from sqlalchemy import text

    began = time.monotonic()
    now = now or datetime.now(UTC)
    born = now - timedelta(days=30 * (INVOICES_PER_ACCOUNT + 1))
    values = {"n": accounts, "per": INVOICES_PER_ACCOUNT, "timeline": TIMELINE_PER_ACCOUNT, "born": born, "now": now}
    template = _template()
    with engine.begin() as connection:
        for statement in _BOOK:
            connection.execute(text(statement), values)
        old_span, recent_span = timedelta(days=365), timedelta(days=RETENTION_DAYS - 3)
        oldest = now - timedelta(days=RETENTION_DAYS + 1) - old_span
        parts = [
            ("o", "processed", inbox, oldest, old_span),
            ("f", "failed", inbox // 1000, oldest, old_span),
            ("r", "processed", inbox // 100, now - timedelta(days=RETENTION_DAYS - 1), recent_span),
        ]
        for tag, status, rows, start, span in parts:
            if rows:
                connection.execute(
                    text(_INBOX),
                    {"tag": tag, "status": status, "rows": rows, "n": accounts, "oldest": start}
                    | {"step": span / rows, "template": template, "mark": _ID_MARK},
                )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
        # Written out now, not by the checkpointer while the benchmark measures (needs a superuser;
        # without one the checkpointer does it in its own time).
        with suppress(Exception):
            connection.execute(text("CHECKPOINT"))
    return Book(accounts, inbox, inbox // 1000, inbox // 100, now, time.monotonic() - began)


def table_sizes(engine: Any, tables: list[str]) -> dict[str, tuple[int, int]]:
    """Each table's rows and its whole size in bytes (heap, TOAST and indexes)."""
    from sqlalchemy import text

    sizes = {}
    with engine.connect() as connection:
        for table in tables:
            rows = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            size = connection.execute(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table})
            sizes[table] = (int(rows), int(size.scalar_one()))
    return sizes
