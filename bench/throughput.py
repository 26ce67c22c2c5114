"""Throughput benchmark: Stripe events processed per second by one worker, against Celery's no-op tasks.

    .venv/bin/python -m bench.throughput            # about two minutes; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations and flushes a Redis
database. In each round:

1. **events**: ``--accounts`` accounts, each mapped to a Stripe customer, and two signed events
   each through the real webhook (in this process, on a container built by ``bootstrap.build``):
   ``invoice.payment_failed`` (the account is held for non-payment) and ``invoice.paid`` (the
   hold is released), half holds and half releases. They are stored with no worker running; then
   the Procfile's events worker starts (its line of ``Procfile.worker``, production settings) and
   its relay queues the backlog. The rate is the events over the time from the first task taken
   to the last one done, read from the worker's own log lines;
2. **no-op**: as many tasks of ``bench.noop_worker`` (the same Celery app, settings, queue and
   worker options, a task that does nothing) queued, then the same worker command started on
   that module; the same measure.

The ratio events/no-op is what processing adds to Celery's own cost per task; the target is
``TARGET``. Worker CPU per event, and PostgreSQL's, are printed beside. ``--profile`` instead
processes the same events in this process under cProfile and prints the statements per event
and where the time goes.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import pstats
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cpu, infra
from bench.infra import BenchError, Child
from bench.latency import _invoice_event
from bench.worker_log import log_lines, task_step

TARGET = 0.5
NOOP = "holdfast.bench.noop"  # bench.noop_worker's task (importing that module starts a worker's app)


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("throughput", __doc__)
    parser.add_argument("--accounts", type=int, default=2000, help="accounts, two events each, per round (2000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of events and no-op (2)")
    parser.add_argument(
        "--profile", action="store_true", help="profile the processing in this process instead (cProfile)"
    )
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_THROUGHPUT_REDIS", redis_db=15)
    options = parser.parse_args(argv)
    if options.accounts < 10 or options.rounds < 1:
        parser.error("--accounts must be at least 10, --rounds at least 1")
    return options


@dataclass(frozen=True)
class Measure:
    variant: str
    round: int
    tasks: int
    seconds: float
    worker_cpu: float
    postgres_cpu: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


def _worker(env: dict[str, str], log: Path, module: str) -> Child:
    """Procfile.worker's events line, its Celery app ``module``'s."""
    command = infra.procfile_line("events", infra.PROCFILE_WORKER).replace("-A tasks.worker", f"-A {module}")
    return infra.start_command(f"events worker ({module})", command, env, log)


def _span(log: Path, task: str, expected: int, worker: Child, timeout: float) -> float:
    """Seconds from the first ``task`` received to the last one succeeded, once ``expected`` have succeeded."""
    deadline = time.monotonic() + timeout
    progress = (-1, time.monotonic())  # tasks done, and since when
    while True:
        first = last = None
        done = 0
        for line in log_lines(log, containing=task):
            step = task_step(line)
            if step is None or step.task != task:
                continue
            at: float = line["at"]
            if step.step == "received" and first is None:
                first = at
            elif step.step == "succeeded":
                done += 1
                last = at
        if done >= expected and first is not None and last is not None:
            return last - first
        if done != progress[0]:
            progress = (done, time.monotonic())
        stalled = time.monotonic() - progress[1] > 30
        if stalled or time.monotonic() > deadline or not worker.alive():
            raise BenchError(f"{done} of {expected} {task} tasks done:\n{worker.log_tail()}")
        time.sleep(0.5)


class Book:
    """Accounts and their Stripe events, through the real API and webhook in this process."""

    def __init__(self, env: dict[str, str]) -> None:
        from bootstrap import build
        from bootstrap.settings import load_settings
        from webhooks import create_app

        self.env = env
        self.container = build(load_settings({**env, "LOG_LEVEL": "WARNING"}))
        self.client = create_app(container=self.container).test_client()
        self.admin = {"Authorization": f"Bearer {env['ADMIN_API_TOKEN']}"}

    def store(self, accounts: int, round_number: int) -> int:
        """``accounts`` new accounts, each held by a failed payment and released by its payment: stored, not run."""
        import stripe

        created = int(time.time()) - 600
        events = []
        for i in range(accounts):
            account_id, customer = f"bench-{round_number}-{i:06d}", f"cus_B{round_number}x{i:06d}"
            mapped = {"name": account_id, "stripe_customer_id": customer}
            response = self.client.put(f"/api/accounts/{account_id}", json=mapped, headers=self.admin)
            if response.status_code != 201:
                raise BenchError(f"the account was refused: {response.get_data(as_text=True)}")
            invoice = f"in_{round_number}_{i:06d}"
            events.append(_invoice_event("invoice.payment_failed", customer, invoice, created, attempts=1))
            events.append(_invoice_event("invoice.paid", customer, invoice, created + 30, attempts=1, paid=True))
        for event in events:
            body = json.dumps(event)
            signature = stripe.WebhookSignature.generate_signature_header(body, self.env["STRIPE_WEBHOOK_SECRET"])
            response = self.client.post(
                "/webhooks/stripe", data=body, headers={"Stripe-Signature": signature}, content_type="application/json"
            )
            if response.status_code != 200:
                raise BenchError(f"the webhook answered {response.status_code}: {response.get_data(as_text=True)}")
        return len(events)

    def check(self, round_number: int, accounts: int) -> str:
        from sqlalchemy import text

        with self.container.engine.connect() as connection:
            held = connection.execute(
                text("SELECT count(*) FROM holds WHERE account_id LIKE :prefix"), {"prefix": f"bench-{round_number}-%"}
            ).scalar_one()
            placed = connection.execute(
                text("SELECT count(*) FROM timeline_entries WHERE kind = 'hold_placed' AND account_id LIKE :prefix"),
                {"prefix": f"bench-{round_number}-%"},
            ).scalar_one()
        if held:
            raise BenchError(f"{held} accounts of round {round_number} are still held: a payment was not applied")
        # A payment processed before its failure (two pool processes) is applied, and never holds.
        return f"{accounts} accounts held and released ({placed} holds placed, none left)"


def _measure(variant: str, number: int, tasks: int, env: dict[str, str], log_dir: Path, queue: Any) -> Measure:
    module, task = ("tasks.worker", "holdfast.inbox.process_event")
    if variant == "no-op":
        module, task = "bench.noop_worker", NOOP
        tasks = queue(tasks)
    log = log_dir / f"{variant}-{number}.log"
    worker = _worker(env, log, module)
    try:
        worker.wait_for(infra.READY, 90)
        group = worker.pgid
        cpu_before, pg_before = cpu.group_seconds([group])[group], cpu.postgres_seconds()
        seconds = _span(log, task, tasks, worker, timeout=60 + tasks / 10)
        cpu_after, pg_after = cpu.group_seconds([group])[group], cpu.postgres_seconds()
    finally:
        worker.stop()
    return Measure(variant, number, tasks, seconds, cpu_after - cpu_before, pg_after - pg_before)


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    if options.profile:
        return profile(options)
    infra.begin("throughput")
    measures: list[Measure] = []
    with infra.stage("throughput", options, started="workers") as stage:
        env = stage.holdfast_env()
        book = Book(env)
        from adapters.broker import QUEUE_EVENTS

        def queue(tasks: int) -> int:
            """Queue ``tasks`` no-op tasks; how many the queue holds (what the worker will run)."""
            with book.container.celery.producer_or_acquire() as producer:
                for _ in range(tasks):
                    book.container.celery.send_task(NOOP, queue=QUEUE_EVENTS, producer=producer)
            waiting = int(stage.redis.llen(QUEUE_EVENTS))
            if waiting != tasks:
                # Seen once in a while in a second round: one message fewer in the list than sent.
                print(f"  note: {waiting} no-op tasks in the queue, not {tasks}; the rate counts those run")
            return waiting

        print(f"database: {stage.database_url.rsplit('/', 1)[1]} (migrated), Redis {options.redis} (flushed)")
        print(f"worker: Procfile.worker's events line, production settings; logs in {stage.run.log_dir}")
        try:
            for number in range(1, options.rounds + 1):
                stored = book.store(options.accounts, number)
                events = _measure("events", number, stored, env, stage.run.log_dir, queue)
                check = book.check(number, options.accounts)
                noop = _measure("no-op", number, stored, env, stage.run.log_dir, queue)
                for m in (events, noop):
                    measures.append(m)
                    each = 1000 / m.tasks
                    print(
                        f"  round {number}: {m.variant:<6} {m.tasks} in {m.seconds:6.2f} s = {m.rate:6.1f}/s; cpu ms "
                        f"each: worker {m.worker_cpu * each:.2f}, postgres {m.postgres_cpu * each:.2f}"
                    )
                print(f"  round {number}: {check}")
        finally:
            book.container.engine.dispose()
    if stage.run.status is not None:
        return stage.run.status
    ratio = infra.ratio(measures, "events", "no-op")
    events_rate = statistics.median(m.rate for m in measures if m.variant == "events")
    noop_rate = statistics.median(m.rate for m in measures if m.variant == "no-op")
    print()
    print(f"medians over {options.rounds} rounds of {options.accounts * 2} tasks each, one events worker:")
    print(f"events processed   {events_rate:7.1f}/s")
    print(f"no-op tasks        {noop_rate:7.1f}/s")
    print(f"ratio events/no-op: {ratio.value:.2f}  (per round: {ratio.rounds})")
    reasons = [] if ratio.value >= TARGET else [f"events run at {ratio.value:.2f} of the no-op rate"]
    return infra.verdict(not reasons, f"events/no-op >= {TARGET}", reasons)


def profile(options: argparse.Namespace) -> int:
    """Process the events in this process under cProfile: statements per event and where the time goes."""
    from sqlalchemy import event, select

    from adapters.db.tables import InboxEventRow
    from services.inbox import process_inbox_event

    infra.begin("throughput (profile)")
    with infra.stage("profile", options, started="nothing") as stage:
        env = stage.holdfast_env()
        book = Book(env)
        c = book.container
        stored = book.store(options.accounts, 1)
        with c.session_factory() as session:
            ids = list(session.execute(select(InboxEventRow.id).order_by(InboxEventRow.id)).scalars())
        statements: collections.Counter[str] = collections.Counter()

        @event.listens_for(c.engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements[" ".join(statement.split()[:4])[:70]] += 1

        def process(inbox_id: int) -> None:
            process_inbox_event(
                c.uow, inbox_id, c.handlers, c.context, c.clock(), c.transient_errors, completions=c.completions
            )

        warm = min(20, len(ids) // 10)
        for inbox_id in ids[:warm]:
            process(inbox_id)
        statements.clear()
        profiler = cProfile.Profile()
        wall, used = time.perf_counter(), time.process_time()
        profiler.enable()
        for inbox_id in ids[warm:]:
            process(inbox_id)
        profiler.disable()
        n = stored - warm
        print(
            f"{n} events in this process: {(time.perf_counter() - wall) / n * 1000:.2f} ms each, "
            f"{(time.process_time() - used) / n * 1000:.2f} ms of CPU (cProfile on: slower than without)"
        )
        print(f"statements per event: {sum(statements.values()) / n:.1f}")
        for text, count in statements.most_common(25):
            print(f"  {count / n:5.2f}  {text}")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"/(services|adapters|domain)/", 30)
        c.engine.dispose()
    return stage.run.status or 0


if __name__ == "__main__":
    sys.exit(main())
