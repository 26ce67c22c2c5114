"""Flat cost: ingesting and processing an event costs the same on a large book as on a small one.

    .venv/bin/python -m bench.flat_cost            # about 5 minutes; --help for the options

It builds two fresh PostgreSQL databases with the real Alembic migrations and fills them straight
in the database (``bench/large_book.py``: ``generate_series``, not the API):

- ``small``: only the accounts the measured events are for (``--rounds`` x ``--events``), each with
  its Stripe customer, 10 invoice facts, 10 timeline entries and an order; an empty inbox;
- ``large``: the same accounts among ``--accounts`` (100,000) with the same history each, and
  ``--inbox`` (1,000,000) inbox rows that ended long ago, as a year of webhooks leaves them.

So each event does the same work on both; only the size of the tables around it differs. In each
round, on each book (the order alternates), ``--events`` distinct ``invoice.payment_failed``
events of a new invoice, one per account:

1. **ingest**: POSTed to the real webhook (``webhooks.create_app``, in this process through Flask's
   test client: verify, parse, store in one statement), one after the other;
2. **process**: each stored event processed by the service the worker's task calls
   (``services.inbox.process_inbox_event``: the account locked and read, the invoice fact merged,
   the account evaluated from all its facts, the hold placed, the timeline written, follow-ups
   sent to Redis after commit).

The cost of an event is CPU: this process's plus that of the PostgreSQL backends of the book's
database, per event; wall time is shown beside it. The
ratios large/small of the medians must stay at or below 1.2. Then the statements one event makes
(stored, relayed, processed, swept, purged, scraped for /metrics) are captured and explained on
the large book with ``EXPLAIN (ANALYZE, BUFFERS)`` (``EXPLAIN`` for INSERTs, so as not to insert
twice), and a sequential scan of a table of more than 10,000 rows is flagged.

Exit status: 0 when both ratios are within the target and no hot statement scans a large table,
1 when not, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench import cpu, infra, large_book
from bench.infra import BenchError

TARGET = 1.2  # cost per event on the large book / on the small one, from the issue
TEMPLATE = infra.FIXTURES / "stripe" / "invoice.payment_failed.stripe-ruby-mock.json"
BOOKS = ("small", "large")
KINDS = ("ingest", "process")
LARGE_TABLE = 10_000  # rows: a sequential scan of a larger table in a hot statement is flagged


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("flat_cost", __doc__)
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts in the large book (100000)")
    parser.add_argument("--inbox", type=int, default=1_000_000, help="ended inbox rows in the large book (1000000)")
    parser.add_argument("--events", type=int, default=1000, help="events per book, kind and round (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the books' order alternating (3)")
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_REDIS", redis_db=12)
    options = parser.parse_args(argv)
    if options.rounds < 1 or options.events < 1 or options.accounts < options.rounds * options.events:
        parser.error("--rounds and --events must be at least 1, and --accounts at least --rounds x --events")
    return options


# --- the two books ----------------------------------------------------------------------------


@dataclass
class Book:
    name: str
    database: str
    container: Any
    client: Any
    secret: str

    def stop(self) -> None:
        self.container.engine.dispose()
        self.container.deliveries.engine.dispose()


@contextmanager
def _book(name: str, options: argparse.Namespace, run: infra.Run, accounts: int, inbox: int) -> Iterator[Book]:
    from sqlalchemy import create_engine

    from bootstrap import build
    from bootstrap.settings import database_url_for_sqlalchemy, load_settings
    from webhooks import create_app

    with infra.fresh_database(options.pg, prefix=f"holdfast_bench_{name}") as url:
        engine = create_engine(database_url_for_sqlalchemy(url))
        try:
            filled = large_book.fill(engine, accounts=accounts, inbox=inbox)
        finally:
            engine.dispose()
        print(f"{name} book: {filled.describe()}")
        secret = "whsec_bench_" + secrets.token_hex(16)
        env = infra.holdfast_env(
            os.environ,
            database_url=url,
            redis_url=options.redis,
            instance_dir=run.log_dir / f"instance-{name}",
            stripe_secret=secret,
        )
        container = build(load_settings(env))
        app = create_app(container=container)
        book = Book(name, url.rsplit("/", 1)[1], container, app.test_client(), secret)
        try:
            yield book
        finally:
            book.stop()


# --- one measurement --------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    variant: str  # the book
    kind: str
    round: int
    events: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def rate(self) -> float:
        """Events per CPU second (the ratio of two rates is the inverse ratio of the costs)."""
        return self.events / self.cpu_seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.events

    @property
    def wall_ms(self) -> float:
        return self.wall_seconds * 1000 / self.events


@contextmanager
def _measured(book: Book) -> Iterator[dict[str, float]]:
    """CPU of this process and of the PostgreSQL backends of the book's database over the block.

    Not the server's shared processes (WAL writer, checkpointer, autovacuum): on a server shared
    with others they mostly do others' work, and the large book's own fill keeps them busy for
    minutes (both books alike would be charged for it, at random).
    """
    found: dict[str, float] = {}
    own, backends, began = time.process_time(), cpu.backend_seconds(book.database), time.perf_counter()
    yield found
    found["cpu"] = time.process_time() - own + cpu.backend_seconds(book.database) - backends
    found["wall"] = time.perf_counter() - began


def _events(numbers: range, round_number: int) -> list[str]:
    """One invoice.payment_failed of a new invoice per account, as Stripe sends it (pretty-printed)."""
    template: dict[str, Any] = json.loads(TEMPLATE.read_text())
    bodies = []
    for n in numbers:
        event = json.loads(json.dumps(template))
        event["id"] = f"evt_flat{round_number}{n:019d}"
        event["created"] = int(time.time())
        event["data"]["object"].update(customer=large_book.customer_id(n), id=f"in_flat_{round_number}_{n}")
        bodies.append(json.dumps(event, indent=2))
    return bodies


def _ingest(book: Book, bodies: list[str], round_number: int) -> Measure:
    import stripe

    signed = [
        (body, stripe.WebhookSignature.generate_signature_header(body, book.secret, timestamp=int(time.time())))
        for body in bodies
    ]
    with _measured(book) as used:
        for body, signature in signed:
            answer = book.client.post(
                "/webhooks/stripe",
                data=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json; charset=utf-8"},
            )
            if answer.status_code != 200 or answer.json["duplicate"]:
                raise BenchError(f"the webhook answered {answer.status_code} {answer.get_data(as_text=True)[:200]}")
    return Measure(book.name, "ingest", round_number, len(bodies), used["cpu"], used["wall"])


def _waiting(book: Book) -> list[int]:
    from sqlalchemy import select

    from adapters.db.tables import InboxEventRow

    with book.container.session_factory() as session:
        query = select(InboxEventRow.id).where(InboxEventRow.status == "received").order_by(InboxEventRow.id)
        return list(session.execute(query).scalars())


def _process_one(book: Book, inbox_id: int) -> str:
    from services.inbox import process_inbox_event

    c = book.container
    return process_inbox_event(c.uow, inbox_id, c.handlers, c.context, c.clock(), c.transient_errors)


def _process(book: Book, round_number: int) -> Measure:
    ids = _waiting(book)
    with _measured(book) as used:
        outcomes = [_process_one(book, inbox_id) for inbox_id in ids]
    if set(outcomes) != {"processed"}:
        raise BenchError(f"the {book.name} book's events were not all processed: {sorted(set(outcomes))}")
    return Measure(book.name, "process", round_number, len(ids), used["cpu"], used["wall"])


# --- the hot statements, explained ------------------------------------------------------------


def _captured(book: Book, number: int) -> list[tuple[str, str, Any]]:
    """Every statement of one event's way on this book, with the step that made it: stored through the webhook,
    relayed, processed, swept; and a purge batch (rolled back) and a /metrics scrape."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from adapters.db.gauges import read_gauges
    from services import inbox

    c = book.container
    statements: list[tuple[str, str, Any]] = []
    step = ["store"]

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many:
            statements.append((step[0], statement, parameters))

    event.listen(Engine, "before_cursor_execute", listen)
    try:
        _ingest(book, _events(range(number, number + 1), 99), 99)
        step[0] = "relay"
        inbox.relay_stored(c.uow(), c.publisher, now=c.clock())
        step[0] = "process"
        for inbox_id in _waiting(book):
            _process_one(book, inbox_id)
        step[0] = "sweep"
        inbox.sweep(c.uow(), c.publisher, older_than=timedelta(seconds=60), now=c.clock())
        step[0] = "purge"
        with c.uow() as uow:  # one batch, rolled back
            uow.inbox.delete_ended(c.clock() - timedelta(days=large_book.RETENTION_DAYS), 1000)
        step[0] = "metrics"
        read_gauges(c.engine, c.clock())
    finally:
        event.remove(Engine, "before_cursor_execute", listen)
    seen: set[str] = set()
    unique = []
    for step_name, statement, parameters in statements:
        if statement not in seen and re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", statement, re.I):
            seen.add(statement)
            unique.append((step_name, statement, parameters))
    return unique


def _explain(book: Book, number: int) -> tuple[list[str], list[str]]:
    """Each hot statement's plan on this book (rolled back); the sequential scans of large tables."""
    from sqlalchemy import text

    with book.container.engine.connect() as connection:
        sizes = dict(
            connection.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class "
                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                )
            ).all()
        )
    lines: list[str] = []
    flagged: list[str] = []
    raw = book.container.engine.raw_connection()
    try:
        for step, statement, parameters in _captured(book, number):
            inserts = re.match(r"\s*(INSERT|WITH\s+\w+\s+AS\s+\(\s*INSERT)\b", statement, re.I) is not None
            how = "EXPLAIN" if inserts else "EXPLAIN (ANALYZE, BUFFERS)"
            shown = " ".join(statement.split())
            lines.append(f"  [{step}] {shown[:150]}{'…' if len(shown) > 150 else ''}")
            cursor = raw.cursor()
            try:
                cursor.execute(f"{how} {statement}", parameters)
                plan = [row[0] for row in cursor.fetchall()]
            except Exception as error:  # a plan that cannot be made is shown, not fatal
                plan = [f"(not explained: {type(error).__name__}: {str(error).splitlines()[0]})"]
            finally:
                cursor.close()
                raw.rollback()
            for line in plan:
                scanned = re.search(r"Seq Scan on (\w+)", line)
                large = scanned is not None and sizes.get(scanned.group(1), 0) > LARGE_TABLE
                lines.append(f"      {line}{'   <-- SEQ SCAN OF A LARGE TABLE' if large else ''}")
                if large and scanned is not None:
                    flagged.append(f"[{step}] {scanned.group(1)}: {shown[:80]}")
    finally:
        raw.close()
    return lines, flagged


# --- the audit trail's size ---------------------------------------------------------------------


def _audit_trail(book: Book, since: Any) -> list[str]:
    """Bytes per timeline entry, provisioning attempt and invoice fact (row, TOAST, indexes) on the large book, and
    the timeline entries this run's events wrote."""
    from sqlalchemy import text

    lines = []
    with book.container.engine.connect() as connection:
        kinds = connection.execute(
            text("SELECT kind, count(*) FROM timeline_entries WHERE at >= :since GROUP BY kind ORDER BY kind"),
            {"since": since},
        ).all()
        written = connection.execute(
            text("SELECT avg(pg_column_size(t.*)) FROM timeline_entries t WHERE at >= :since"), {"since": since}
        ).scalar()
        for table in ("timeline_entries", "provisioning_attempts", "invoices"):
            rows, total, heap, indexes = connection.execute(
                text(
                    f"SELECT count(*), pg_total_relation_size('{table}'), pg_table_size('{table}'), "
                    f"pg_indexes_size('{table}') FROM {table}"
                )
            ).one()
            lines.append(
                f"  {table}: {rows:,} rows, {total / rows:.0f} bytes a row in all "
                f"({heap / rows:.0f} table and TOAST, {indexes / rows:.0f} indexes)"
            )
    lines.append(
        "  timeline entries written by this run's events: "
        + ", ".join(f"{n} {kind}" for kind, n in kinds)
        + (f"; {float(written):.0f} bytes a row on average (pg_column_size)" if written else "")
    )
    return lines


# --- the run ------------------------------------------------------------------------------------


def _summary(measures: list[Measure]) -> list[str]:
    header = f"{'kind':<8} {'book':<6} {'events':>7} {'cpu ms/event':>13} {'wall ms/event':>14}   per round (cpu ms)"
    lines = [header, "-" * len(header)]
    for kind in KINDS:
        for book in BOOKS:
            mine = [m for m in measures if m.kind == kind and m.variant == book]
            lines.append(
                f"{kind:<8} {book:<6} {sum(m.events for m in mine):>7} "
                f"{statistics.median(m.cpu_ms for m in mine):>13.2f} "
                f"{statistics.median(m.wall_ms for m in mine):>14.2f}"
                f"   {', '.join(f'{m.cpu_ms:.2f}' for m in mine)}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    if not TEMPLATE.exists():
        print(f"bench: the event template {TEMPLATE} is missing (set HOLDFAST_FIXTURES)", file=sys.stderr)
        return 2
    targets = options.rounds * options.events
    infra.begin("flat cost")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the second book's migrations, once logging is set up
    print(
        f"events: {options.rounds} rounds x {options.events} invoice.payment_failed per book, ingested through the "
        f"webhook then processed by the worker's service, in this process, one at a time"
    )
    measures: list[Measure] = []
    plan: list[str] = []
    flagged: list[str] = []
    audit: list[str] = []
    with (
        infra.logged_run("holdfast-bench-", options.keep_logs, started="nothing") as run,
        infra.flushed_redis(options.redis),
        _book("small", options, run, targets, 0) as small,
        _book("large", options, run, options.accounts, options.inbox) as large,
    ):
        began = large.container.clock()
        books = {"small": small, "large": large}
        for round_number in range(1, options.rounds + 1):
            numbers = range((round_number - 1) * options.events + 1, round_number * options.events + 1)
            order = BOOKS if round_number % 2 else tuple(reversed(BOOKS))
            for name in order:
                for step in (_ingest, _process):
                    book = books[name]
                    measure = (
                        _ingest(book, _events(numbers, round_number), round_number)
                        if step is _ingest
                        else _process(book, round_number)
                    )
                    measures.append(measure)
                    print(
                        f"  round {round_number}/{options.rounds}  {measure.kind:<7} {name:<5}  "
                        f"{measure.cpu_ms:6.2f} ms cpu/event  {measure.wall_ms:6.2f} ms wall/event  "
                        f"load average {os.getloadavg()[0]:.2f}"
                    )
        audit = _audit_trail(large, began)
        plan, flagged = _explain(large, targets)
    if run.status is not None:
        return run.status

    print()
    print(f"Medians over {options.rounds} rounds (whole run {run.seconds:.0f} s):")
    print("\n".join(_summary(measures)))
    print()
    print("The statements of one event's way, explained on the large book:")
    print("\n".join(plan))
    print()
    print("The audit trail on the large book (kept for ever):")
    print("\n".join(audit))
    print()
    reasons = []
    for kind in KINDS:
        mine = [m for m in measures if m.kind == kind]
        value = infra.ratio(mine, "small", "large")  # events per CPU second: small/large = cost large/small
        print(f"{kind} cost large/small  {value.value:.2f}   (per round: {value.rounds})")
        if value.value > TARGET:
            reasons.append(f"{kind} costs {value.value:.2f} x as much on the large book")
    if flagged:
        reasons.append("sequential scans of large tables: " + "; ".join(flagged))
    target = f"cost per event large/small <= {TARGET}, no sequential scan of a large table"
    return infra.verdict(not reasons, target, reasons)


if __name__ == "__main__":
    sys.exit(main())
