"""Release benchmark: lift a credit review over 1,000 awaiting orders, against a plain loop.

    .venv/bin/python -m bench.release            # about 100 s; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations, flushes a Redis
database, starts a zero-latency provisioning stand-in (``bench/release_server.py``, its own
process) and one Celery worker with the Procfile's command and the production settings (only
the addresses, the secrets and the Dynamics webhook key are given; every tuning variable is
left at its default). Then, in each round (the database emptied first):

1. a Dynamics account Create with ``creditonhold: true`` goes through the real webhook and the
   worker: the account exists with a ``credit_review`` hold;
2. ``--orders`` orders go through ``POST /api/accounts/<id>/orders`` (the real admin API, in
   this process, on a container built by ``bootstrap.build``): each is ``awaiting``,
   ``waiting_for: ["credit_review"]``;
3. **release**: the clock starts, a Dynamics account Update with ``creditonhold: false`` is
   posted to the webhook, and the worker lifts the hold, admits every order and dispatches
   them; the clock stops when one ``COUNT`` (polled every 20 ms) finds them all
   ``provisioned``. The stand-in must have seen every request's idempotency key exactly once;
4. **plain**: one process, one ``requests.Session``, sends the same bodies with the same
   headers (``adapters.provisioning_client``) to the same stand-in, one after another.

Release and plain alternate which goes first; medians over the rounds are reported. Everything
it starts (worker, stand-in, database, Redis keys) is stopped, dropped or flushed at the end,
on errors and Ctrl-C too. Exit status: 0 when the target is met, 1 when it is missed, 2 when
the run could not be made.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu, infra
from bench.baselines import plain_loop
from bench.infra import BenchError, Child, Worker
from tests import dynamics_bodies

TARGET = 0.5  # release rate / plain loop rate, from the issue
POLL_SECONDS = 0.02
MAX_ROUND_ATTEMPTS = 5  # a round disturbed by bench.ingest starting meanwhile is measured again


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("release", __doc__)
    parser.add_argument("--orders", type=int, default=1000, help="awaiting orders released per round (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of release and plain loop, interleaved (3)")
    parser.add_argument(
        "--warmup-orders",
        type=int,
        default=100,
        help="orders released once, unmeasured, before the rounds, so the worker's processes are warm (100; 0: none)",
    )
    parser.add_argument(
        "--server",
        choices=["fast", "stdlib"],
        default="fast",
        help="the provisioning stand-in: 'fast' (asyncio, hand-parsed HTTP/1.1) or 'stdlib' "
        "(http.server.ThreadingHTTPServer); both clients are measured against the same one (fast)",
    )
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_RELEASE_REDIS", redis_db=12)
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="record the worker's processes with py-spy (pip install py-spy) during each release into "
        "DIR/release-<round>.txt (collapsed stacks, CPU only) and release-<round>-idle.txt (waits too); "
        "slows the worker down, so such a run is for finding where the time goes, not for the figures",
    )
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a running bench.ingest to finish")
    options = parser.parse_args(argv)
    if options.orders < 1 or options.rounds < 1 or options.warmup_orders < 0:
        parser.error("--orders and --rounds must be at least 1, --warmup-orders not negative")
    return options


# --- PostgreSQL and Redis ---------------------------------------------------------------------


def _empty_tables(engine: Any) -> None:
    """A fresh state for the next round: every row deleted, the tables vacuumed and analysed."""
    from sqlalchemy import delete, text

    from adapters.db.tables import metadata

    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(delete(table))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


# --- one round --------------------------------------------------------------------------------


@dataclass
class Measure:
    variant: str  # "release" or "plain"
    round: int
    orders: int
    seconds: float
    exactly_once: bool
    check: str
    phases: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds


class StandIn:
    """The provisioning stand-in's counters, over HTTP."""

    def __init__(self, url: str) -> None:
        import requests

        self.base = url.rsplit("/", 1)[0]
        self.session = requests.Session()

    def reset(self) -> None:
        self.session.post(f"{self.base}/reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self.session.get(f"{self.base}/stats", timeout=10)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats


@contextmanager
def _profiled(folder: Path | None, worker: Worker, number: int) -> Iterator[None]:
    """py-spy on the worker (both its Celery workers, their pools included) while the block runs."""
    if folder is None:
        yield
        return
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder.mkdir(parents=True, exist_ok=True)
    spies = []
    for part, pid in zip(("events", "peers"), worker.pgids, strict=False):
        for suffix, extra in (("", []), ("-idle", ["--idle"])):
            command = [spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "250", "--format", "raw"]
            command += ["--nonblocking", *extra, "--output", str(folder / f"release-{number}-{part}{suffix}.txt")]
            spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # py-spy attaches to every process of the worker before the clock starts
    try:
        yield
    finally:
        for process in spies:
            process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for process in spies:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _exactly_once(stats: dict[str, Any], keys: list[str]) -> tuple[bool, str]:
    seen: dict[str, int] = stats["keys"]
    expected = set(keys)
    missing = len(expected - set(seen))
    extra = len(set(seen) - expected)
    repeated = sum(1 for key in expected if seen.get(key, 0) > 1)
    ok = not missing and not extra and not repeated and stats["calls"] == len(keys)
    text = f"{len(expected) - missing - repeated}/{len(keys)} keys called exactly once"
    if not ok:
        text += f" (missing {missing}, called more than once {repeated}, unknown keys {extra}, calls {stats['calls']})"
    return ok, text


class Release:
    """The account, its awaiting orders and the lift, through the real webhook, API and worker."""

    def __init__(self, client: Any, container: Any, dynamics_key: str, admin_token: str) -> None:
        self.client, self.container = client, container
        self.code = dynamics_key
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.account_id = ""

    def _deliver(self, body: bytes) -> None:
        response = self.client.post(f"/webhooks/dynamics?code={self.code}", data=body, content_type="application/json")
        if response.status_code != 200:
            raise BenchError(f"the Dynamics webhook answered {response.status_code}: {response.get_data(as_text=True)}")

    def _holds(self) -> list[str] | None:
        response = self.client.get(f"/api/accounts/{self.account_id}", headers=self.admin)
        return None if response.status_code == 404 else [h["reason"] for h in response.json["holds"]]

    def prepare(self, orders: int, worker: Worker) -> list[dict[str, Any]]:
        """An account under credit review with ``orders`` awaiting orders; their provisioning bodies."""
        from adapters.provisioning_client import provisioning_body
        from services.orders import list_requests

        self.account_id = str(uuid.uuid4())
        created = dynamics_bodies.account_create(self.account_id, name="Bench Cloud", credit_on_hold=True)
        self._deliver(dynamics_bodies.encode(created))
        deadline = time.monotonic() + 60
        while self._holds() != ["credit_review"]:
            if time.monotonic() > deadline or not worker.alive():
                raise BenchError(f"the worker did not create the held account:\n{worker.log_tail()}")
            time.sleep(0.05)
        for i in range(orders):
            response = self.client.post(
                f"/api/accounts/{self.account_id}/orders",
                json={"order_id": f"SO-{i:05d}", "amount": "10.00", "description": f"10 seats, order {i}"},
                headers=self.admin,
            )
            body = response.json
            if response.status_code != 201 or body["state"] != "awaiting" or body["waiting_for"] != ["credit_review"]:
                raise BenchError(f"order {i} was not parked for the credit review: {response.status_code} {body}")
        requests = list_requests(
            self.container.uow(), state="awaiting", account_id=self.account_id, after=None, limit=orders + 1
        )
        if len(requests) != orders:
            raise BenchError(f"{len(requests)} awaiting requests instead of {orders}")
        return [provisioning_body(r) for r in requests]

    def lift_and_wait(self, orders: int, worker: Worker, poll: Any) -> dict[str, float]:
        """Lift the credit review; return when every request is provisioned (phases in seconds)."""
        timeout = 60 + orders / 10
        lift = dynamics_bodies.encode(dynamics_bodies.account_update(self.account_id, {"creditonhold": False}))
        started = time.monotonic()
        self._deliver(lift)
        posted = time.monotonic()
        admitted = None
        while True:
            counts = poll(self.account_id)
            now = time.monotonic()
            if admitted is None and not counts.get("awaiting"):
                admitted = now
            if counts.get("provisioned", 0) == orders:
                break
            if counts.get("failed"):
                raise BenchError(f"{counts['failed']} requests failed: {counts}\n{worker.log_tail()}")
            if now - started > timeout or not worker.alive():
                raise BenchError(f"not all provisioned after {now - started:.0f} s: {counts}\n{worker.log_tail()}")
            time.sleep(POLL_SECONDS)
        return {"started": started, "posted": posted, "admitted": admitted or now, "done": now}


def _run_round(
    number: int,
    release: Release,
    options: argparse.Namespace,
    url: str,
    stand_in: StandIn,
    worker: Worker,
    server: Child,
    poll: Any,
    attempts: Any,
) -> list[Measure]:
    orders = options.orders
    bodies = release.prepare(orders, worker)
    keys = [b["request_id"] for b in bodies]
    order = ["release", "plain"] if number % 2 else ["plain", "release"]
    measures = []
    for variant in order:
        stand_in.reset()
        cpu_before, pg_before, busy_before = (
            cpu.group_seconds([*worker.pgids, server.pgid]),
            cpu.postgres_seconds(),
            cpu.machine_busy(),
        )
        if variant == "release":
            with _profiled(options.profile, worker, number):
                times = release.lift_and_wait(orders, worker, poll)
            seconds = times["done"] - times["started"]
            stats = stand_in.stats()
            phases = {
                "webhook": times["posted"] - times["started"],
                "admitted": times["admitted"] - times["started"],
                "first_call": stats["first"] - times["started"] if stats.get("first") else float("nan"),
                "last_call": stats["last"] - times["started"] if stats.get("last") else float("nan"),
            }
        else:
            seconds = plain_loop(url, bodies)
            stats = stand_in.stats()
            phases = {}
        cpu_after, pg_after, busy_after = (
            cpu.group_seconds([*worker.pgids, server.pgid]),
            cpu.postgres_seconds(),
            cpu.machine_busy(),
        )
        ok, check = _exactly_once(stats, keys)
        if variant == "release":
            recorded = attempts(release.account_id)
            ok = ok and recorded == orders
            check += f", {recorded} attempts recorded"
        measures.append(
            Measure(
                variant,
                number,
                orders,
                seconds,
                ok,
                check,
                phases,
                {
                    "worker": sum(cpu_after[pgid] - cpu_before[pgid] for pgid in worker.pgids),
                    "server": cpu_after[server.pgid] - cpu_before[server.pgid],
                    "postgres": pg_after - pg_before,
                    "machine": busy_after - busy_before,
                },
            )
        )
    return measures


def _round_line(m: Measure, rounds: int) -> str:
    used = m.cpu
    line = (
        f"  round {m.round}/{rounds}  {m.variant:<7} {m.orders} in {m.seconds:6.3f} s = {m.rate:7.1f} orders/s   "
        f"{m.check}"
    )
    if m.phases:
        p = m.phases
        line += (
            f"\n      webhook answered +{p['webhook']:.3f} s, all admitted +{p['admitted']:.3f} s, "
            f"first call +{p['first_call']:.3f} s, last call +{p['last_call']:.3f} s, all recorded +{m.seconds:.3f} s"
        )
    line += (
        f"\n      cpu seconds: worker {used['worker']:.2f}, stand-in {used['server']:.2f}, "
        f"postgres {used['postgres']:.2f}; "
        f"machine busy {used['machine'] / m.seconds:.2f} of {os.cpu_count()} cores"
    )
    return line


def _summary(measures: list[Measure], orders: int, rounds: int) -> tuple[str, float, bool]:
    med: dict[str, tuple[float, float]] = {}
    for variant in ("release", "plain"):
        mine = [m for m in measures if m.variant == variant]
        med[variant] = (statistics.median(m.seconds for m in mine), statistics.median(m.rate for m in mine))
    to_plain = infra.ratio(measures, "release", "plain")
    all_once = all(m.exactly_once for m in measures)
    releases = [m for m in measures if m.variant == "release"]
    if all(m.exactly_once for m in releases):
        once = f"yes — in each of the {len(releases)} releases, {releases[0].check}"
    else:
        once = "NO — " + "; ".join(f"round {m.round}: {m.check}" for m in releases)
    lines = [
        f"orders per round: {orders}; medians over {rounds} rounds",
        f"{'':<44} {'seconds':>8} {'orders/s':>9}",
        f"{'release (lift -> all provisioned, 1 worker)':<44} {med['release'][0]:>8.3f} {med['release'][1]:>9.1f}",
        f"{'plain loop (1 process, requests.Session)':<44} {med['plain'][0]:>8.3f} {med['plain'][1]:>9.1f}",
        f"ratio release/plain: {to_plain.value:.2f}  (per round: {to_plain.rounds})",
        f"exactly once: {once}",
    ]
    return "\n".join(lines), to_plain.value, all_once


# --- the run ----------------------------------------------------------------------------------


def _other_benchmarks() -> list[str]:
    """Pids of a running ingestion benchmark (it loads the same two cores)."""
    found = subprocess.run(["pgrep", "-f", "bench.ingest"], capture_output=True, text=True)
    return [pid for pid in found.stdout.split() if int(pid) != os.getpid()]


def _wait_for_other_benchmarks() -> None:
    """Do not measure while the ingestion benchmark runs."""
    announced = False
    while others := _other_benchmarks():
        if not announced:
            print(f"waiting for bench.ingest to finish (pids {', '.join(others)})...", flush=True)
            announced = True
        time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    for name in (dynamics_bodies.ACCOUNT_CREATE, dynamics_bodies.ACCOUNT_UPDATE):
        template = dynamics_bodies.FIXTURES / name
        if not template.exists():
            print(f"bench: the Dynamics template {template} is missing (set HOLDFAST_FIXTURES)", file=sys.stderr)
            return 2
    if not options.no_wait:
        _wait_for_other_benchmarks()
    infra.begin("release")
    measures: list[Measure] = []
    with infra.stage("release", options, started="worker and stand-in") as stage:
        run, database_url, started = stage.run, stage.database_url, stage.started
        server, url = infra.start_stand_in(run.log_dir, options.server)
        started.append(server)
        env = stage.holdfast_env(PROVISIONING_URL=url)
        worker = Worker(env, run.log_dir)
        started.append(worker)
        worker.wait_ready(90)
        settings = _settings(env)
        print(
            f"database: {database_url.rsplit('/', 1)[1]} (migrated), Redis {options.redis} (flushed); "
            f"stand-in: {options.server} at {url}"
        )
        print(
            f"worker: Procfile.worker (events: prefork, concurrency {os.cpu_count()}, the default; peers: "
            f"threads), batch size {settings.provisioning_batch_size}, threads {settings.provisioning_threads}, "
            f"LOG_LEVEL {settings.log_level}; logs in {run.log_dir}"
        )
        measures = _run(options, env, url, worker, server)
    if run.status is not None:
        return run.status

    table, to_plain, all_once = _summary(measures, options.orders, options.rounds)
    print()
    print(f"Whole run {run.seconds:.0f} s; stand-in: {options.server}.")
    print(table)
    reasons = []
    if to_plain < TARGET:
        reasons.append(f"the release's rate is {to_plain:.2f} of the plain loop's, below {TARGET}")
    if not all_once:
        reasons.append("some request was not called exactly once")
    return infra.verdict(
        to_plain >= TARGET and all_once, f"release/plain >= {TARGET}, every request called exactly once", reasons
    )


def _settings(env: dict[str, str]) -> Any:
    from bootstrap.settings import load_settings

    return load_settings(env)


def _run(options: argparse.Namespace, env: dict[str, str], url: str, worker: Worker, server: Child) -> list[Measure]:
    from sqlalchemy import text

    from bootstrap import build
    from webhooks import create_app

    # This process is the web side: the real app on a real container (quiet: the worker logs).
    container = build(_settings({**env, "LOG_LEVEL": "WARNING"}))
    app = create_app(container=container)
    release = Release(app.test_client(), container, env["DYNAMICS_WEBHOOK_KEY"], env["ADMIN_API_TOKEN"])
    stand_in = StandIn(url)
    count = text("SELECT state, count(*) FROM provisioning_requests WHERE account_id = :account GROUP BY state")
    count_attempts = text(
        "SELECT count(*) FROM provisioning_attempts WHERE request_id IN "
        "(SELECT request_id FROM provisioning_requests WHERE account_id = :account)"
    )
    poller = container.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def poll(account_id: str) -> dict[str, int]:
        return {state: n for state, n in poller.execute(count, {"account": account_id})}

    def attempts(account_id: str) -> int:
        return int(poller.execute(count_attempts, {"account": account_id}).scalar_one())

    measures: list[Measure] = []
    try:
        if options.warmup_orders:
            release.prepare(options.warmup_orders, worker)
            release.lift_and_wait(options.warmup_orders, worker, poll)
            print(f"warm-up: {options.warmup_orders} orders released (not measured)")
        for number in range(1, options.rounds + 1):
            for attempt in range(1, MAX_ROUND_ATTEMPTS + 1):
                if not options.no_wait:
                    _wait_for_other_benchmarks()
                _empty_tables(container.engine)
                done = _run_round(number, release, options, url, stand_in, worker, server, poll, attempts)
                if not worker.alive():
                    raise BenchError(f"the worker died during the run:\n{worker.log_tail()}")
                if options.no_wait or not _other_benchmarks() or attempt == MAX_ROUND_ATTEMPTS:
                    break
                print(f"  round {number}: bench.ingest started meanwhile; the round is measured again")
            for m in done:
                measures.append(m)
                print(_round_line(m, options.rounds))
    finally:
        poller.close()
        container.engine.dispose()
    return measures


if __name__ == "__main__":
    sys.exit(main())
