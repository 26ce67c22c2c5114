"""Memory benchmark: resident memory of each web and worker process after sustained work, and its growth.

    .venv/bin/python -m bench.memory             # about six minutes; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations, flushes a Redis
database, and starts what production runs with the production settings: the Procfile's ``web``
line (gunicorn: its workers are the processes that serve), its worker (``Procfile.worker``:
the events worker's pool processes and the peers worker) and the provisioning stand-in. Two
laps, each:

1. ``--events`` signed Stripe events over HTTP to ``POST /webhooks/stripe`` (4 clients at
   once), half ``invoice.payment_failed`` and half ``invoice.paid`` for ``--events / 2``
   accounts, until every one is processed;
2. a release: an account under credit review with ``--orders`` orders taken by the API, then
   ``creditonhold: false`` from Dynamics, until every order is provisioned;

then the resident memory (``VmRSS``) of every process. PASS when, after each lap, every
gunicorn worker is within ``WEB_LIMIT_MB`` and every Celery process within ``WORKER_LIMIT_MB``,
and no process grew by more than ``GROWTH_LIMIT`` over the second lap (a leak shows there, not
in a peak). gunicorn recycles a worker after about 5,000 requests (``max_requests``): a
recycled worker is new in the second lap, which the table says.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import infra
from bench.infra import BenchError, Worker
from bench.latency import Peer, _invoice_event, start_service
from tests import dynamics_bodies

WEB_LIMIT_MB = 150.0
WORKER_LIMIT_MB = 200.0
GROWTH_LIMIT = 0.10  # of the first lap's figure, and at least GROWTH_SLACK_MB
GROWTH_SLACK_MB = 5.0
MB = 1_000_000


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("memory", __doc__)
    parser.add_argument("--events", type=int, default=10_000, help="Stripe events per lap (10000)")
    parser.add_argument("--orders", type=int, default=1_000, help="orders released per lap (1000)")
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_MEMORY_REDIS", redis_db=15)
    options = parser.parse_args(argv)
    if options.events < 2 or options.orders < 1:
        parser.error("--events must be at least 2, --orders at least 1")
    return options


@dataclass(frozen=True)
class Resident:
    pid: int
    role: str
    bytes: int


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def residents(groups: dict[str, int]) -> list[Resident]:
    """Every Python process of each named process group, with its role and resident memory.

    A group is a Procfile line: a shell, its master (gunicorn's or Celery's), and the master's
    children (gunicorn's workers, the events worker's pool processes).
    """
    processes: dict[int, tuple[int, int, str, int]] = {}  # pid -> (ppid, group, comm, rss bytes)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        stat = _read(pid_dir / "stat")
        status = _read(pid_dir / "status")
        rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), None)
        if not stat or rss is None:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        processes[int(pid_dir.name)] = (int(fields[1]), int(fields[2]), comm, int(rss) * 1024)
    found = []
    for name, group in groups.items():
        for pid, (ppid, pgrp, comm, rss) in processes.items():
            if pgrp != group or comm in ("sh", "dash", "bash"):
                continue
            parent = processes.get(ppid)
            child = parent is not None and parent[1] == group and parent[2] not in ("sh", "dash", "bash")
            kind = name.removesuffix(" worker")
            if kind == "web":
                role = "web worker" if child else "web master"
            elif kind == "events":
                role = "events pool" if child else "events master"
            else:
                role = f"{kind} (threads)"
            found.append(Resident(pid, role, rss))
    return sorted(found, key=lambda r: (r.role, r.pid))


class Load:
    """Holdfast's callers over HTTP: Stripe's events and a release of orders."""

    def __init__(self, peers: list[Peer], worker: Worker, poll: Any) -> None:
        self.peers, self.worker, self.poll = peers, worker, poll

    def events(self, count: int, lap: int) -> None:
        accounts = count // 2
        created = int(time.time()) - 600
        peer = self.peers[0]
        work = []
        for i in range(accounts):
            account_id, customer = f"mem-{lap}-{i:06d}", f"cus_M{lap}x{i:06d}"
            peer.api(
                "PUT", f"/api/accounts/{account_id}", 201, json={"name": account_id, "stripe_customer_id": customer}
            )
            invoice = f"in_M{lap}x{i:06d}"
            work.append(_invoice_event("invoice.payment_failed", customer, invoice, created, attempts=1))
            work.append(_invoice_event("invoice.paid", customer, invoice, created + 30, attempts=1, paid=True))
        with ThreadPoolExecutor(len(self.peers)) as pool:
            list(
                pool.map(
                    lambda n: [self.peers[n].stripe(e) for e in work[n :: len(self.peers)]], range(len(self.peers))
                )
            )
        self._until(
            lambda: self.poll("SELECT count(*) FROM inbox_events WHERE processed_at IS NULL") == 0, 60 + count / 20
        )

    def release(self, orders: int) -> None:
        peer, account_id = self.peers[0], str(uuid.uuid4())
        peer.dynamics(dynamics_bodies.account_create(account_id, name="Memory", credit_on_hold=True))
        self._until(lambda: peer.holds(account_id) == ["credit_review"], 60)
        with ThreadPoolExecutor(len(self.peers)) as pool:
            list(
                pool.map(lambda n: [self.peers[n % len(self.peers)].order(account_id) for _ in range(1)], range(orders))
            )
        peer.dynamics(dynamics_bodies.account_update(account_id, {"creditonhold": False}))
        provisioned = (
            f"SELECT count(*) FROM provisioning_requests WHERE account_id = '{account_id}' AND state = 'provisioned'"
        )
        self._until(lambda: self.poll(provisioned) == orders, 60 + orders / 10)

    def _until(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or not self.worker.alive():
                raise BenchError(f"the work of the lap was not done in {timeout:.0f} s:\n{self.worker.log_tail()}")
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    infra.begin("memory")
    laps: list[list[Resident]] = []
    with infra.stage("memory", options, started="web, worker and stand-in") as stage:
        run = stage.run
        service = start_service(stage)
        web, worker = service.web, service.worker
        peers = [service.peer() for _ in range(4)]
        print(f"database: {stage.database_url.rsplit('/', 1)[1]} (migrated); logs in {run.log_dir}")
        groups = {"web": web.pgid, **{part.name: part.pgid for part in worker.parts}}
        laps.append(residents(groups))
        load = Load(peers, worker, _poller(stage.database_url))
        for lap in (1, 2):
            began = time.monotonic()
            load.events(options.events, lap)
            load.release(options.orders)
            laps.append(residents(groups))
            print(
                f"lap {lap}: {options.events} events processed, {options.orders} orders released in "
                f"{time.monotonic() - began:.0f} s"
            )
    if run.status is not None:
        return run.status
    return _report(laps, options)


def _poller(database_url: str) -> Any:
    from sqlalchemy import create_engine, make_url, text

    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))

    def poll(sql: str) -> int:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    return poll


def _report(laps: list[list[Resident]], options: argparse.Namespace) -> int:
    start, first, second = ({r.pid: r for r in lap} for lap in laps)
    print()
    print(
        f"resident memory, MB (10^6 bytes): at start, after lap 1 and lap 2 ({options.events} events and "
        f"{options.orders} orders each)"
    )
    print(f"{'process':<22} {'pid':>7} {'start':>7} {'lap 1':>7} {'lap 2':>7} {'growth':>7}")
    reasons = []
    for pid, last in second.items():
        before = first.get(pid)
        at_start = start.get(pid)
        growth = "new" if before is None else f"{(last.bytes - before.bytes) / MB:+.1f}"
        print(f"{last.role:<22} {pid:>7} {_mb(at_start):>7} {_mb(before):>7} {last.bytes / MB:>7.1f} {growth:>7}")
        limit = WEB_LIMIT_MB if last.role.startswith("web") else WORKER_LIMIT_MB
        for lap, seen in (("1", before), ("2", last)):
            if seen is not None and seen.bytes / MB > limit:
                reasons.append(f"{last.role} {pid} at {seen.bytes / MB:.0f} MB after lap {lap}")
        if before is not None:
            grew = (last.bytes - before.bytes) / MB
            if grew > max(GROWTH_SLACK_MB, GROWTH_LIMIT * before.bytes / MB):
                reasons.append(f"{last.role} {pid} grew {grew:.1f} MB over lap 2")
    target = (
        f"web workers <= {WEB_LIMIT_MB:.0f} MB, Celery processes <= {WORKER_LIMIT_MB:.0f} MB, growth over "
        f"lap 2 <= {GROWTH_LIMIT:.0%} (at least {GROWTH_SLACK_MB:.0f} MB)"
    )
    return infra.verdict(not reasons, target, reasons)


def _mb(resident: Resident | None) -> str:
    return "-" if resident is None else f"{resident.bytes / MB:.1f}"


if __name__ == "__main__":
    sys.exit(main())
