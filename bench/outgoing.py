"""Outgoing benchmark: a subscriber hanging on every account against holds placed for others.

    .venv/bin/python -m bench.outgoing            # about a minute; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations, flushes a Redis database
and starts the Procfile's worker (events and peers, by ``Procfile.worker``) and its ``outgoing``
worker, each with the production settings (only the addresses, the secrets, the Dynamics webhook
key and ``OUTGOING_ALLOW_HTTP``, for the local subscribers, are given). Two subscribers run in
this process: one answers 200 at once, the other holds every request until Holdfast gives up
on it (``OUTGOING_TIMEOUT_SECONDS``, 10 s by default).

Each sample puts one account on hold: a Dynamics Update with ``creditonhold: true`` through the
real webhook (in this process, on a container built by ``bootstrap.build``), which the worker
turns into a ``credit_review`` hold. From the webhook's answer, the sample measures when the
hold is stored (polled every 2 ms) and when the answering subscriber receives its
``account.hold_placed``. Two variants, in the same run:

- **quiet**: only the answering subscriber;
- **hanging**: the hanging subscriber subscribed too, first given holds of ``--busy`` accounts
  (more lanes than the outgoing worker has threads), then hanging on each sample's account as
  well.

The figures are the p50, p95 and largest of both times per variant, and the hanging variant's
over the quiet one's. PASS when, with the subscriber hanging, holds are stored as fast as
without (p95 within ``HOLD_TARGET`` of quiet's, or within 50 ms: the poll and the machine's
noise) and the answering subscriber hears within a second at p95 (a hang holds a thread for 10 s:
anything near that means the hanging subscriber took the threads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import infra
from bench.infra import BenchError, Child, Worker
from tests import dynamics_bodies
from tests.subscriber_server import HANG, SubscriberServer, running_subscriber

HOLD_TARGET = 1.5  # hanging/quiet p95 of the time to store a hold
HOLD_SLACK_SECONDS = 0.05
DELIVERY_TARGET_SECONDS = 1.0  # p95 of the answering subscriber's delivery while the other hangs
POLL_SECONDS = 0.002


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("outgoing", __doc__)
    parser.add_argument("--samples", type=int, default=30, help="holds placed per variant (30)")
    parser.add_argument(
        "--busy", type=int, default=12, help="accounts the hanging subscriber hangs on before the samples (12)"
    )
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between samples: light load (0.2)")
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_OUTGOING_REDIS", redis_db=15)
    options = parser.parse_args(argv)
    if options.samples < 2 or options.busy < 0 or options.gap < 0:
        parser.error("--samples must be at least 2, --busy and --gap not negative")
    return options


@dataclass(frozen=True)
class Sample:
    variant: str
    stored: float  # seconds from the webhook's answer to the hold stored
    delivered: float  # seconds from the webhook's answer to the answering subscriber's delivery


class Holds:
    """Accounts put on hold through the real Dynamics webhook and the worker."""

    def __init__(self, client: Any, code: str, admin_token: str, stored: Callable[[str], bool], worker: Any) -> None:
        self.client, self.code, self.stored, self.worker = client, code, stored, worker
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    def deliver(self, body: bytes) -> None:
        response = self.client.post(f"/webhooks/dynamics?code={self.code}", data=body, content_type="application/json")
        if response.status_code != 200:
            raise BenchError(f"the Dynamics webhook answered {response.status_code}: {response.get_data(as_text=True)}")

    def create(self) -> str:
        account_id = str(uuid.uuid4())
        self.deliver(dynamics_bodies.encode(dynamics_bodies.account_create(account_id, name="Bench Cloud")))
        self._wait(lambda: self.client.get(f"/api/accounts/{account_id}", headers=self.admin).status_code == 200)
        return account_id

    def hold(self, account_id: str) -> float:
        """Put the account on hold; the monotonic time the webhook answered."""
        self.deliver(dynamics_bodies.encode(dynamics_bodies.account_update(account_id, {"creditonhold": True})))
        return time.monotonic()

    def wait_stored(self, account_id: str) -> float:
        self._wait(lambda: self.stored(account_id), poll=POLL_SECONDS)
        return time.monotonic()

    def _wait(self, done: Callable[[], bool], poll: float = 0.02, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or not self.worker.alive():
                raise BenchError(f"the worker did not store what was sent:\n{self.worker.log_tail()}")
            time.sleep(poll)

    def subscribe(self, url: str) -> str:
        response = self.client.post(
            "/api/subscriptions", json={"url": url, "events": ["account.hold_placed"]}, headers=self.admin
        )
        if response.status_code != 201:
            raise BenchError(f"the subscription was refused: {response.get_data(as_text=True)}")
        return str(response.json["subscription_id"])


def _delivered_at(subscriber: SubscriberServer, account_id: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in subscriber.received():
            if delivery.account_id == account_id:
                return delivery.at
        time.sleep(POLL_SECONDS)
    raise BenchError(f"the answering subscriber never received account {account_id}'s hold")


def _sample(variant: str, holds: Holds, answering: SubscriberServer) -> Sample:
    account_id = holds.create()
    answered = holds.hold(account_id)
    stored = holds.wait_stored(account_id)
    delivered = _delivered_at(answering, account_id)
    return Sample(variant, stored - answered, delivered - answered)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{name:<36} {statistics.median(ms):>8.1f} {_percentile(ms, 0.95):>8.1f} {max(ms):>8.1f}"


def _run(options: argparse.Namespace, env: dict[str, str], worker: Worker, outgoing: Child) -> list[Sample]:
    from sqlalchemy import text

    from bootstrap import build
    from bootstrap.settings import load_settings
    from webhooks import create_app

    container = build(load_settings({**env, "LOG_LEVEL": "WARNING"}))
    client = create_app(container=container).test_client()
    poller = container.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    held = text("SELECT 1 FROM holds WHERE account_id = :account AND reason = 'credit_review'")

    def stored(account_id: str) -> bool:
        return poller.execute(held, {"account": account_id}).first() is not None

    samples: list[Sample] = []
    try:
        with running_subscriber() as answering, running_subscriber() as hanging:
            hanging.answer(HANG, hang_seconds=600)  # until Holdfast's timeout closes the request
            holds = Holds(client, env["DYNAMICS_WEBHOOK_KEY"], env["ADMIN_API_TOKEN"], stored, worker)
            holds.subscribe(answering.url)
            for _ in range(3):  # warm-up, not measured
                _sample("warm-up", holds, answering)
            for variant in ("quiet", "hanging"):
                if variant == "hanging":
                    holds.subscribe(hanging.url)
                    for _ in range(options.busy):
                        holds.hold(holds.create())
                    deadline = time.monotonic() + 60
                    while len(hanging.received()) < min(options.busy, 1):
                        if time.monotonic() > deadline:
                            raise BenchError("the hanging subscriber never received a delivery")
                        time.sleep(0.05)
                    print(f"hanging subscriber: holding {len(hanging.received())} requests open")
                for _ in range(options.samples):
                    samples.append(_sample(variant, holds, answering))
                    time.sleep(options.gap)
                if not worker.alive() or not outgoing.alive():
                    raise BenchError(f"a worker died during the run:\n{worker.log_tail()}\n{outgoing.log_tail()}")
                print(f"{variant}: {options.samples} holds placed and delivered")
            print(f"the hanging subscriber received {len(hanging.received())} requests and answered none")
    finally:
        poller.close()
        container.engine.dispose()
    return samples


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    infra.begin("outgoing")
    samples: list[Sample] = []
    with infra.stage("outgoing", options, started="workers") as stage:
        run, database_url, started = stage.run, stage.database_url, stage.started
        env = stage.holdfast_env(OUTGOING_ALLOW_HTTP="true")
        env = {k: v for k, v in env.items() if not k.startswith("OUTGOING_") or k == "OUTGOING_ALLOW_HTTP"}
        worker = Worker(env, run.log_dir)
        started.append(worker)
        outgoing = infra.start_line("outgoing", env, run.log_dir / "outgoing.log")
        started.append(outgoing)
        worker.wait_ready(90)
        print(
            f"database: {database_url.rsplit('/', 1)[1]} (migrated), Redis {options.redis} (flushed); "
            f"logs in {run.log_dir}"
        )
        print("workers: Procfile.worker (events, peers) and the Procfile's outgoing line, production settings")
        samples = _run(options, env, worker, outgoing)
    if run.status is not None:
        return run.status
    return _report(samples, options)


def _report(samples: list[Sample], options: argparse.Namespace) -> int:
    by = {v: [s for s in samples if s.variant == v] for v in ("quiet", "hanging")}
    print()
    print(
        f"{options.samples} holds per variant, {options.gap} s apart; hanging: {options.busy} accounts held open first"
    )
    print(f"{'milliseconds after the webhook answered':<36} {'p50':>8} {'p95':>8} {'max':>8}")
    for variant, mine in by.items():
        print(_row(f"{variant}: hold stored", [s.stored for s in mine]))
        print(_row(f"{variant}: other subscriber heard", [s.delivered for s in mine]))
    quiet_p95 = _percentile([s.stored for s in by["quiet"]], 0.95)
    hanging_p95 = _percentile([s.stored for s in by["hanging"]], 0.95)
    heard_p95 = _percentile([s.delivered for s in by["hanging"]], 0.95)
    stored_ratio = hanging_p95 / quiet_p95
    heard_ratio = heard_p95 / _percentile([s.delivered for s in by["quiet"]], 0.95)
    print(f"hanging/quiet p95: hold stored {stored_ratio:.2f}, other subscriber heard {heard_ratio:.2f}")
    reasons = []
    if stored_ratio > HOLD_TARGET and hanging_p95 - quiet_p95 > HOLD_SLACK_SECONDS:
        reasons.append(f"holds were stored {stored_ratio:.2f}x slower at p95 while a subscriber hung")
    if heard_p95 > DELIVERY_TARGET_SECONDS:
        reasons.append(f"the answering subscriber heard after {heard_p95:.1f} s at p95")
    return infra.verdict(
        not reasons,
        f"hold stored hanging/quiet p95 <= {HOLD_TARGET} (or within {HOLD_SLACK_SECONDS * 1000:.0f} ms), "
        f"the other subscriber heard within {DELIVERY_TARGET_SECONDS:.0f} s at p95",
        reasons,
    )


if __name__ == "__main__":
    sys.exit(main())
