"""What-if benchmark: a candidate policy over a book of 100,000 accounts, against a plain SELECT of the same rows.

    .venv/bin/python -m bench.what_if                     # PostgreSQL, 100,000 accounts; --help for the options
    .venv/bin/python -m bench.what_if --backend sqlite    # the embedded default (a SQLite file)

It builds a fresh database with the real Alembic migrations (PostgreSQL: a new database beside
``--pg``, dropped at the end; SQLite: a file in a temporary folder) and fills it directly, not
through the API: on PostgreSQL with ``INSERT ... SELECT FROM generate_series``, on SQLite with
``executemany``. The book, for ``--accounts`` N:

- N accounts, each mapped to its Stripe customer, each with a paid invoice;
- every 10th account: an open invoice of 20.00 with one failed attempt, a ``non_payment`` hold
  and an order awaiting it (what the default policy does to it);
- every 10th account counting from the 5th: an open invoice with two failed attempts and a
  ``non_payment`` hold.

Then, in each round (alternating which goes first):

1. **what-if**: ``services.what_if.what_if`` (what ``POST /api/policy/what-if`` and
   ``policy what-if FILE`` run) of the candidate ``failed_attempts = 2`` against the default
   policy in force, every change in one answer: the accounts read in pages of 500 by the real
   repositories, each evaluated and admitted twice by the pure domain, in a read-only
   transaction rolled back at the end. It must find exactly the N/10 accounts of one failed
   attempt, each releasing ``non_payment`` and one order;
2. **select**: the same rows read by plain ``SELECT``s straight through the driver (accounts,
   holds, customers, invoices, disputes, pending requests), every row fetched.

Medians over the rounds and the ratio what-if/select are printed. Exit status: 0 when the
what-if found what the book holds, 1 when it did not, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import infra
from bench.infra import BenchError

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FAILED_AT = NOW - timedelta(days=3)
PLAIN_READS = (
    "SELECT * FROM accounts ORDER BY account_id",
    "SELECT * FROM holds",
    "SELECT * FROM stripe_customers",
    "SELECT * FROM invoices",
    "SELECT * FROM disputes",
    "SELECT * FROM provisioning_requests WHERE state IN ('awaiting', 'queued', 'provisioning')",
)


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("what_if", __doc__)
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts in the book (100000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of what-if and select, interleaved (3)")
    parser.add_argument(
        "--backend", choices=["postgres", "sqlite"], default="postgres", help="where the book is (postgres)"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("HOLDFAST_BENCH_PG", infra.DEFAULT_PG),
        help="an administrative PostgreSQL URL; a fresh database is created beside it (env HOLDFAST_BENCH_PG)",
    )
    options = parser.parse_args(argv)
    if options.accounts < 10 or options.rounds < 1:
        parser.error("--accounts must be at least 10 and --rounds at least 1")
    return options


# --- the book ---------------------------------------------------------------------------------


def _account(n: int) -> str:
    return f"acct{n:07d}"


def _customer(n: int) -> str:
    return f"cus_{n:07d}"


def _failures(n: int, attempts: int) -> dict[str, Any]:
    return {
        str(a): {"at": (FAILED_AT + timedelta(hours=a)).isoformat(), "event_id": f"evt_fail_{a}_{n}"}
        for a in range(1, attempts + 1)
    }


_PG_BOOK = [
    """INSERT INTO accounts (account_id, name, created_at, updated_at, revision)
       SELECT 'acct' || lpad(g::text, 7, '0'), 'Account ' || g, :now, :now, 1 FROM generate_series(1, :n) g""",
    """INSERT INTO stripe_customers (customer_id, account_id, mapped_at, mapping_cause, created_at)
       SELECT 'cus_' || lpad(g::text, 7, '0'), 'acct' || lpad(g::text, 7, '0'), :now, 'bench', :now
       FROM generate_series(1, :n) g""",
    """INSERT INTO invoices (invoice_id, customer_id, status, currency, amount_remaining, collection_method,
                             due_date, event_id, event_created, failures, uncollectible_since, updated_at)
       SELECT 'in_paid_' || g, 'cus_' || lpad(g::text, 7, '0'), 'paid', 'usd', 0, 'charge_automatically',
              NULL, 'evt_paid_' || g, :failed_at, '{}'::json, NULL, :now
       FROM generate_series(1, :n) g""",
    """INSERT INTO invoices (invoice_id, customer_id, status, currency, amount_remaining, collection_method,
                             due_date, event_id, event_created, failures, uncollectible_since, updated_at)
       SELECT 'in_open_' || g, 'cus_' || lpad(g::text, 7, '0'), 'open', 'usd', 20.00, 'charge_automatically',
              NULL, 'evt_fail_' || (g % 10 / 5 + 1) || '_' || g, :failed_at,
              CASE WHEN g % 10 = 0
                   THEN json_build_object('1', json_build_object('at', CAST(:first_at AS text),
                                                                 'event_id', 'evt_fail_1_' || g))
                   ELSE json_build_object('1', json_build_object('at', CAST(:first_at AS text),
                                                                 'event_id', 'evt_fail_1_' || g),
                                          '2', json_build_object('at', CAST(:second_at AS text),
                                                                 'event_id', 'evt_fail_2_' || g))
              END,
              NULL, :now
       FROM generate_series(1, :n) g WHERE g % 10 IN (0, 5)""",
    """INSERT INTO holds (account_id, reason, since, cause, note)
       SELECT 'acct' || lpad(g::text, 7, '0'), 'non_payment', :failed_at, 'stripe:evt_fail_1_' || g, 'bench'
       FROM generate_series(1, :n) g WHERE g % 10 IN (0, 5)""",
    """INSERT INTO provisioning_requests (request_id, account_id, order_id, amount, currency, description, state,
                                          waiting_for, failure, round_attempts, created_at, updated_at, due_at)
       SELECT 'req_' || g, 'acct' || lpad(g::text, 7, '0'), 'SO-' || g, 10.00, 'usd', NULL, 'awaiting',
              '["non_payment"]'::json, NULL, 0, :failed_at, :failed_at, NULL
       FROM generate_series(1, :n) g WHERE g % 10 = 0""",
]


def _build_postgres(engine: Any, n: int) -> None:
    from sqlalchemy import text

    values = {
        "n": n,
        "now": NOW,
        "failed_at": FAILED_AT,
        "first_at": (FAILED_AT + timedelta(hours=1)).isoformat(),
        "second_at": (FAILED_AT + timedelta(hours=2)).isoformat(),
    }
    with engine.begin() as connection:
        for statement in _PG_BOOK:
            connection.execute(text(statement), values)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def _build_sqlite(engine: Any, n: int) -> None:
    from adapters.db.tables import AccountRow, HoldRow, InvoiceRow, ProvisioningRequestRow, StripeCustomerRow

    numbers = range(1, n + 1)
    failing = [g for g in numbers if g % 10 in (0, 5)]
    invoice = {"currency": "usd", "collection_method": "charge_automatically", "due_date": None}
    invoice |= {"uncollectible_since": None, "updated_at": NOW, "event_created": FAILED_AT}
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            AccountRow,
            [
                {"account_id": _account(g), "name": f"Account {g}", "created_at": NOW, "updated_at": NOW}
                for g in numbers
            ],
        ),
        (
            StripeCustomerRow,
            [
                {"customer_id": _customer(g), "account_id": _account(g), "mapped_at": NOW, "created_at": NOW}
                for g in numbers
            ],
        ),
        (
            InvoiceRow,
            [
                {**invoice, "invoice_id": f"in_paid_{g}", "customer_id": _customer(g), "status": "paid"}
                | {"amount_remaining": 0, "event_id": f"evt_paid_{g}", "failures": {}}
                for g in numbers
            ]
            + [
                {**invoice, "invoice_id": f"in_open_{g}", "customer_id": _customer(g), "status": "open"}
                | {"amount_remaining": 20, "event_id": f"evt_fail_{g}", "failures": _failures(g, 1 + g % 10 // 5)}
                for g in failing
            ],
        ),
        (
            HoldRow,
            [
                {"account_id": _account(g), "reason": "non_payment", "since": FAILED_AT, "cause": f"stripe:evt_{g}"}
                for g in failing
            ],
        ),
        (
            ProvisioningRequestRow,
            [
                {"request_id": f"req_{g}", "account_id": _account(g), "order_id": f"SO-{g}", "amount": 10}
                | {"currency": "usd", "state": "awaiting", "waiting_for": ["non_payment"], "round_attempts": 0}
                | {"created_at": FAILED_AT, "updated_at": FAILED_AT}
                for g in failing
                if g % 10 == 0
            ],
        ),
    ]
    with engine.begin() as connection:
        for row_type, values in rows:
            connection.execute(row_type.__table__.insert(), values)


@contextmanager
def _database(options: argparse.Namespace) -> Iterator[tuple[str, Any]]:
    """A fresh, migrated database (its URL and an engine on it), removed at the end."""
    from adapters.db.engine import make_engine
    from bootstrap.settings import database_url_for_sqlalchemy

    if options.backend == "postgres":
        with infra.fresh_database(options.pg, "holdfast_bench_what_if") as url:
            engine = make_engine(database_url_for_sqlalchemy(url), statement_timeout=None)
            try:
                yield url, engine
            finally:
                engine.dispose()
        return
    with tempfile.TemporaryDirectory(prefix="holdfast-bench-what-if-") as folder:
        url = f"sqlite:///{Path(folder) / 'holdfast.db'}"
        infra.migrate(url)
        engine = make_engine(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


# --- the measures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    variant: str
    round: int
    seconds: float
    rows: int

    @property
    def rate(self) -> float:
        """Rounds per second: ``infra.ratio`` of select over what-if is what-if's time over select's."""
        return 1 / self.seconds


def _what_if(engine: Any, number: int, accounts: int) -> tuple[Measure, str | None]:
    from adapters.db.engine import make_session_factory
    from adapters.db.unit_of_work import SqlUnitOfWork
    from domain.holds import HoldReason
    from domain.policy import HoldPolicy, NonPaymentPolicy
    from services.what_if import what_if

    candidate = HoldPolicy(non_payment=NonPaymentPolicy(failed_attempts=2))
    uow = SqlUnitOfWork(make_session_factory(engine))
    started = time.perf_counter()
    page = what_if(uow, HoldPolicy(), candidate, NOW)
    seconds = time.perf_counter() - started
    expected = [_account(g) for g in range(10, accounts + 1, 10)]
    found = [c.account_id for c in page.changes]
    wrong = None
    if page.accounts_evaluated != accounts:
        wrong = f"{page.accounts_evaluated} accounts evaluated, not {accounts}"
    elif found != expected:
        wrong = f"{len(found)} accounts changed, not the {len(expected)} held by one failed attempt"
    elif any(c.released != (HoldReason.NON_PAYMENT,) or c.orders_released != 1 for c in page.changes):
        wrong = "a change is not the release of non_payment and of one order"
    return Measure("what-if", number, seconds, page.accounts_evaluated), wrong


def _select(engine: Any, number: int) -> Measure:
    with engine.connect() as connection:
        started = time.perf_counter()
        rows = sum(len(connection.exec_driver_sql(query).fetchall()) for query in PLAIN_READS)
        seconds = time.perf_counter() - started
        connection.rollback()
    return Measure("select", number, seconds, rows)


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    infra.begin("what-if")
    measures: list[Measure] = []
    wrong: list[str] = []
    try:
        with _database(options) as (url, engine):
            started = time.perf_counter()
            (_build_postgres if options.backend == "postgres" else _build_sqlite)(engine, options.accounts)
            where = url.rsplit("/", 1)[1]
            print(
                f"book: {options.accounts:,} accounts built in {time.perf_counter() - started:.1f} s on "
                f"{options.backend} ({where}): {options.accounts // 10:,} held by one failed attempt with an "
                f"order waiting, {options.accounts // 10:,} by two"
            )
            for number in range(1, options.rounds + 1):
                first_what_if = number % 2 == 1
                done: list[Measure] = []
                for variant in ("what-if", "select") if first_what_if else ("select", "what-if"):
                    if variant == "select":
                        done.append(_select(engine, number))
                        continue
                    measure, problem = _what_if(engine, number, options.accounts)
                    done.append(measure)
                    if problem:
                        wrong.append(f"round {number}: {problem}")
                by = {m.variant: m for m in done}
                measures += done
                print(
                    f"  round {number}: what-if {by['what-if'].seconds:.2f} s, select {by['select'].seconds:.2f} s "
                    f"({by['select'].rows:,} rows), what-if/select {by['what-if'].seconds / by['select'].seconds:.1f}"
                )
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    what_if_s = statistics.median(m.seconds for m in measures if m.variant == "what-if")
    select_s = statistics.median(m.seconds for m in measures if m.variant == "select")
    times = infra.ratio(measures, "select", "what-if")  # rates: select's over what-if's = what-if's time over select's
    print()
    print(f"medians over {options.rounds} rounds, {options.accounts:,} accounts on {options.backend}:")
    each = what_if_s / options.accounts * 1e6
    print(f"what-if (failed_attempts = 2, every change)  {what_if_s:8.2f} s  ({each:.0f} µs an account)")
    print(f"plain SELECT of the same rows                {select_s:8.2f} s")
    print(f"ratio what-if/select: {times.value:.1f}  (per round: {times.rounds})")
    if wrong:
        print("WRONG: " + "; ".join(wrong))
        return 1
    print(f"every round found the {options.accounts // 10:,} accounts held by one failed attempt, and only them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
