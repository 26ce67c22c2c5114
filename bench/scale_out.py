"""Scale-out benchmark: two worker machines against one, releasing 100 accounts' 50 orders each at once.

    .venv/bin/python -m bench.scale_out           # about three minutes; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations, flushes a Redis
database and starts the provisioning stand-in. Two variants, alternating over the rounds:

- **one**: the Procfile's worker (``Procfile.worker``: events and peers) once, with the hostname
  of a machine ``a``;
- **two**: the same twice, as machines ``a`` and ``b`` (their Celery node names differ, as on two
  dynos), against the same PostgreSQL and Redis.

Each round (the database emptied first): ``--accounts`` Dynamics accounts created with
``creditonhold: true`` through the real webhook (in this process), ``--orders`` orders each
through the admin API, all parked; then, with the clock started, ``creditonhold: false`` for every
account at once, until every order is provisioned. The stand-in must have seen each request's
idempotency key exactly once (across both machines), and every attempt must be recorded once.
The figure is the release rate of two machines over one's; every variant's PASS requires exactly
once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench import infra
from bench.infra import BenchError, Worker
from bench.release import StandIn, _empty_tables, _exactly_once
from tests import dynamics_bodies

POLL_SECONDS = 0.05


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("scale_out", __doc__)
    parser.add_argument("--accounts", type=int, default=100, help="accounts released at once (100)")
    parser.add_argument("--orders", type=int, default=50, help="orders of each account (50)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of one and two machines (2)")
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_SCALE_REDIS", redis_db=15)
    options = parser.parse_args(argv)
    if options.accounts < 1 or options.orders < 1 or options.rounds < 1:
        parser.error("--accounts, --orders and --rounds must be at least 1")
    return options


@dataclass(frozen=True)
class Measure:
    variant: str
    round: int
    orders: int
    seconds: float
    check: str
    exactly_once: bool

    @property
    def rate(self) -> float:
        return self.orders / self.seconds


class Book:
    def __init__(self, env: dict[str, str]) -> None:
        from bootstrap import build
        from bootstrap.settings import load_settings
        from webhooks import create_app

        self.container = build(load_settings({**env, "LOG_LEVEL": "WARNING"}))
        self.client = create_app(container=self.container).test_client()
        self.code = env["DYNAMICS_WEBHOOK_KEY"]
        self.admin = {"Authorization": f"Bearer {env['ADMIN_API_TOKEN']}"}

    def deliver(self, body: Any) -> None:
        response = self.client.post(
            f"/webhooks/dynamics?code={self.code}", data=dynamics_bodies.encode(body), content_type="application/json"
        )
        if response.status_code != 200:
            raise BenchError(f"the Dynamics webhook answered {response.status_code}")

    def count(self, sql: str) -> int:
        from sqlalchemy import text

        with self.container.engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    def park(self, accounts: int, orders: int, alive: Any) -> tuple[list[str], list[str]]:
        """Accounts under credit review, each with its orders parked; their ids and the request ids."""
        ids = [str(uuid.uuid4()) for _ in range(accounts)]
        for account_id in ids:
            self.deliver(dynamics_bodies.account_create(account_id, name="Scale", credit_on_hold=True))
        self.wait(lambda: self.count("SELECT count(*) FROM holds WHERE reason = 'credit_review'") == accounts, alive)
        keys = []
        for account_id in ids:
            for i in range(orders):
                response = self.client.post(
                    f"/api/accounts/{account_id}/orders",
                    json={"order_id": f"SO-{i:04d}", "amount": "10.00"},
                    headers=self.admin,
                )
                if response.status_code != 201 or response.json["state"] != "awaiting":
                    raise BenchError(f"an order was not parked: {response.status_code} {response.json}")
                keys.append(response.json["request_id"])
        return ids, keys

    def wait(self, done: Any, alive: Any, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or not alive():
                raise BenchError("the workers did not finish (or one died): see the logs")
            time.sleep(POLL_SECONDS)


def _round(
    variant: str, number: int, options: argparse.Namespace, book: Book, env: dict[str, str], log_dir: Any, stand_in: Any
) -> Measure:
    folder = log_dir / f"{variant}-{number}"
    folder.mkdir(exist_ok=True)
    machines = [Worker(env, folder, machine=name) for name in ("a", "b")[: 1 if variant == "one" else 2]]
    try:
        for machine in machines:
            machine.wait_ready(90)

        def alive() -> bool:
            return all(m.alive() for m in machines)

        ids, keys = book.park(options.accounts, options.orders, alive)
        stand_in.reset()
        total = len(keys)
        started = time.monotonic()
        for account_id in ids:
            book.deliver(dynamics_bodies.account_update(account_id, {"creditonhold": False}))
        book.wait(
            lambda: book.count("SELECT count(*) FROM provisioning_requests WHERE state = 'provisioned'") == total, alive
        )
        seconds = time.monotonic() - started
        ok, check = _exactly_once(stand_in.stats(), keys)
        attempts = book.count("SELECT count(*) FROM provisioning_attempts")
        ok = ok and attempts == total
        return Measure(variant, number, total, seconds, f"{check}, {attempts} attempts recorded", ok)
    finally:
        for machine in machines:
            machine.stop()


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    infra.begin("scale-out")
    measures: list[Measure] = []
    with infra.stage("scale_out", options, started="workers and stand-in") as stage:
        stand, url = infra.start_stand_in(stage.run.log_dir)
        stage.started.append(stand)
        env = stage.holdfast_env(PROVISIONING_URL=url)
        book = Book(env)
        stand_in = StandIn(url)
        print(f"database: {stage.database_url.rsplit('/', 1)[1]} (migrated); logs in {stage.run.log_dir}")
        try:
            for number in range(1, options.rounds + 1):
                for variant in ("one", "two") if number % 2 else ("two", "one"):
                    _empty_tables(book.container.engine)
                    m = _round(variant, number, options, book, env, stage.run.log_dir, stand_in)
                    measures.append(m)
                    print(
                        f"  round {number}: {variant} machine(s): {m.orders} orders in {m.seconds:.2f} s = "
                        f"{m.rate:.0f}/s; {m.check}"
                    )
        finally:
            book.container.engine.dispose()
    if stage.run.status is not None:
        return stage.run.status
    ratio = infra.ratio(measures, "two", "one")
    print()
    print(
        f"{options.accounts} accounts x {options.orders} orders released at once, medians over {options.rounds} rounds:"
    )
    for variant in ("one", "two"):
        rate = statistics.median(m.rate for m in measures if m.variant == variant)
        print(f"{variant} machine(s): {rate:7.0f} orders/s")
    print(f"ratio two/one: {ratio.value:.2f}  (per round: {ratio.rounds}); both on the same 2 cores")
    once = all(m.exactly_once for m in measures)
    reasons = [] if once else ["some request was not called exactly once"]
    return infra.verdict(once, "every request called exactly once with one machine and with two", reasons)


if __name__ == "__main__":
    sys.exit(main())
