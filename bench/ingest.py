"""Ingestion benchmark: POST /webhooks/stripe against two baselines measured in the same run.

    .venv/bin/python -m bench.ingest            # about 2 minutes; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations, flushes a Redis
database, and serves three apps with gunicorn and the production configuration
(``--config bootstrap/gunicorn_conf.py``; only the app, the bind address, 127.0.0.1 instead of
0.0.0.0, and the control socket's path, one per server, differ):

- ``bare``   ``bench.baselines:create_bare()``  reads the body, answers 200 ``{}``
- ``floor``  ``bench.baselines:create_floor()`` verifies the signature, inserts one row, 200
- ``ingest`` ``webhooks:create_app()``           the real webhook (verify, store, answer; the relay queues)

Each is loaded with distinct, freshly signed Stripe events over keep-alive connections,
interleaved over several rounds (the order rotates each round) so that the noise of a shared
machine falls on all three alike; medians are reported. Everything it starts (servers,
database, Redis keys) is stopped, dropped or flushed at the end, on errors and Ctrl-C too.
Exit status: 0 when the target is met, 1 when it is missed, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cpu, infra
from bench.infra import BenchError, Child
from bench.load import LoadResult, build_requests, percentile, run_load

GUNICORN_CONF = infra.ROOT / "bootstrap" / "gunicorn_conf.py"
TEMPLATE = infra.FIXTURES / "stripe" / "invoice.payment_failed.stripe-ruby-mock.json"
TARGET = 0.85  # ingestion throughput / floor throughput, from the issue

VARIANTS: dict[str, str] = {
    "bare": "bench.baselines:create_bare()",
    "floor": "bench.baselines:create_floor()",
    "ingest": "webhooks:create_app()",
}


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("ingest", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three variants (3)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per variant and round (8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement (2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (16)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=40_000,
        help="pre-signed requests per variant and round; a run stops early when they are used up (40000)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset, e.g. 'floor,ingest' while profiling (default: all three)",
    )
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_REDIS", redis_db=13)
    options = parser.parse_args(argv)
    options.variants = [v.strip() for v in options.variants.split(",") if v.strip()]
    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown or not options.variants:
        parser.error(f"--variants: choose among {', '.join(VARIANTS)}")
    if options.warmup + options.duration > 240:
        parser.error("--warmup plus --duration must stay under 240 s: the signatures are made for a 300 s tolerance")
    if options.rounds < 1 or options.duration <= 0 or options.warmup < 0 or options.connections < 1:
        parser.error("--rounds and --connections must be at least 1, --duration positive, --warmup not negative")
    return options


# --- gunicorn servers -------------------------------------------------------------------------


class Server(Child):
    """One gunicorn master (and its workers) serving ``app`` with the production configuration."""

    def __init__(self, name: str, app: str, env: dict[str, str], log_dir: Path) -> None:
        self.port = infra.free_port()
        self._log_offset = 0
        self._boots = 0
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(GUNICORN_CONF),
            "--bind",  # overridden: loopback instead of 0.0.0.0
            f"127.0.0.1:{self.port}",
            "--control-socket",  # and a private control socket, so three masters do not share one
            str(log_dir / f"{name}.ctl"),
            app,
        ]
        super().__init__(f"{name} server", command, {**env, "PORT": str(self.port)}, log_dir / f"{name}.log")

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def boots(self) -> int:
        """Workers booted so far: two at start, then one each time max_requests recycles one."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            chunk = log.read()
        complete = chunk.rfind(b"\n") + 1
        self._log_offset += complete
        self._boots += chunk[:complete].count(b"Booting worker with pid")
        return self._boots

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"the {self.name} exited at start:\n{self.log_tail(15)}")
            try:
                with socket.create_connection(self.address, timeout=2) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"the {self.name} did not answer /healthz within {timeout:.0f} s:\n{self.log_tail(15)}")

    def stop(self, grace: float = 30.0) -> None:
        """gunicorn's graceful stop (TERM) has 30 s before the group is killed."""
        super().stop(grace)


@contextmanager
def servers(names: list[str], env: dict[str, str], log_dir: Path) -> Iterator[dict[str, Server]]:
    with infra.children() as started:
        running: dict[str, Server] = {}
        for name in names:
            running[name] = Server(name, VARIANTS[name], env, log_dir)
            started.append(running[name])
        for server in running.values():
            server.wait_ready()
        yield running


# --- measuring and reporting ------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    variant: str
    round: int
    result: LoadResult

    @property
    def rate(self) -> float:
        return self.result.completed_in_window / self.result.window

    @property
    def _cpu(self) -> tuple[cpu.CpuSnapshot | None, cpu.CpuSnapshot | None]:
        start, end = self.result.probes
        return (start[0] if start else None), (end[0] if end else None)

    @property
    def recycled(self) -> int:
        """Workers booted during the window (gunicorn's max_requests recycling)."""
        start, end = self.result.probes
        return end[1] - start[1] if start and end else 0

    def _cpu_ms(self, part: str) -> float:
        start, end = self._cpu
        if start is None or end is None or not self.result.completed_in_window:
            return float("nan")
        app = sum(end.groups.values()) - sum(start.groups.values())
        used = app if part == "app" else end.stores - start.stores
        return used * 1000 / self.result.completed_in_window

    @property
    def app_cpu_ms(self) -> float:
        """CPU of the server's processes (gunicorn master and workers) per request."""
        return self._cpu_ms("app")

    @property
    def stores_cpu_ms(self) -> float:
        """CPU per request of Redis, PostgreSQL's shared processes and the backends of the bench's database."""
        return self._cpu_ms("stores")

    @property
    def others_cores(self) -> float:
        """Cores kept busy, on average, by processes outside the benchmark during the window."""
        start, end = self._cpu
        if start is None or end is None:
            return float("nan")
        return end.others_since(start) / self.result.window

    @property
    def p50_ms(self) -> float:
        return percentile(self.result.latencies, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.result.latencies, 0.99) * 1000


def _gunicorn_settings() -> str:
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    threads = os.environ.get("WEB_THREADS", "4")
    level = os.environ.get("LOG_LEVEL") or "INFO"
    return (
        f"gunicorn gthread, {workers} workers x {threads} threads, keepalive 5 s, max_requests 5000 (+jitter), "
        f"access log on; LOG_LEVEL {level}"
    )


def _breakdown(result: LoadResult) -> str:
    odd = {status: n for status, n in sorted(result.statuses.items()) if not 200 <= status < 300}
    return f" ({', '.join(f'{n} x {status}' for status, n in odd.items())})" if odd else ""


def _round_line(m: Measure, total_rounds: int) -> str:
    r = m.result
    extra = "\n      the request pool was used up before the end: raise --max-requests" if r.exhausted else ""
    return (
        f"  round {m.round}/{total_rounds}  {m.variant:<6} {m.rate:8.1f} req/s  p50 {m.p50_ms:6.2f} ms  "
        f"p99 {m.p99_ms:7.2f} ms  non-2xx {r.non_2xx}{_breakdown(r)}  errors {r.errors}\n"
        f"      cpu per request: app {m.app_cpu_ms:.2f} ms, pg+redis {m.stores_cpu_ms:.2f} ms; "
        f"load generator {r.client_cpu:.0%} of a core; other processes {m.others_cores:.2f} cores; "
        f"workers recycled {m.recycled}; reconnects {r.reconnects}{extra}"
    )


def _summary(measures: list[Measure], names: list[str]) -> tuple[str, dict[str, float], bool]:
    header = (
        f"{'variant':<8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'errors':>7}"
        f" {'app cpu ms/req':>15} {'pg+redis cpu ms/req':>20}"
    )
    lines = [header, "-" * len(header)]
    rates: dict[str, float] = {}
    clean = True
    for name in names:
        mine = [m for m in measures if m.variant == name]
        rates[name] = statistics.median(m.rate for m in mine)
        non_2xx = sum(m.result.non_2xx for m in mine)
        errors = sum(m.result.errors for m in mine)
        clean = clean and (non_2xx == errors == 0 if name == "ingest" else True)
        lines.append(
            f"{name:<8} {sum(m.result.completed_in_window for m in mine):>9} {rates[name]:>9.1f} "
            f"{statistics.median(m.p50_ms for m in mine):>8.2f} {statistics.median(m.p99_ms for m in mine):>8.2f} "
            f"{non_2xx:>8} {errors:>7} {statistics.median(m.app_cpu_ms for m in mine):>15.2f}"
            f" {statistics.median(m.stores_cpu_ms for m in mine):>20.2f}"
        )
    return "\n".join(lines), rates, clean


def _relay_everything(env: dict[str, str]) -> int:
    """Run the worker's relay (after the timing) until it has queued every stored delivery."""
    from bootstrap import build
    from bootstrap.settings import load_settings
    from services.inbox import relay_stored

    container = build(load_settings(env))
    try:
        total = 0
        while moved := relay_stored(container.uow(), container.publisher, now=container.clock()):
            total += moved
        return total
    finally:
        container.engine.dispose()


def _check_storage(
    database_url: str, redis_client: Any, measures: list[Measure], env: dict[str, str]
) -> tuple[str, bool]:
    """Every 2xx answer of the real webhook is a stored row, and once the relay runs, one queued message."""
    from sqlalchemy import create_engine, text

    from bootstrap.settings import database_url_for_sqlalchemy

    relayed = _relay_everything(env)
    answered = sum(m.result.statuses.get(200, 0) for m in measures if m.variant == "ingest")
    engine = create_engine(database_url_for_sqlalchemy(database_url))
    try:
        with engine.connect() as connection:
            rows = dict(
                (source, count)
                for source, count in connection.execute(
                    text("SELECT source, count(*) FROM inbox_events GROUP BY source")
                )
            )
    finally:
        engine.dispose()
    queued = sum(
        redis_client.llen(key) for key in redis_client.scan_iter(match="holdfast*") if redis_client.type(key) == b"list"
    )
    stored = rows.get("stripe", 0)
    ok = answered == stored == queued
    return (
        f"storage check: ingest answered 200 to {answered} events; inbox_events holds {stored} "
        f"of them (+{rows.get('floor', 0)} floor rows); the relay queued {relayed}; {queued} messages in Redis"
        + ("" if ok else "  MISMATCH: every acknowledged event must be stored and queued once")
    ), ok


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    if not TEMPLATE.exists():
        print(f"bench: the event template {TEMPLATE} is missing (set HOLDFAST_FIXTURES)", file=sys.stderr)
        return 2
    secret = "whsec_bench_" + secrets.token_hex(16)
    names = [name for name in VARIANTS if name in options.variants]
    infra.begin("ingestion")
    print(f"server: {_gunicorn_settings()} (bootstrap/gunicorn_conf.py), bound to 127.0.0.1")
    print(
        f"load: {options.connections} keep-alive connections, {options.rounds} rounds x {len(names)} variants, "
        f"{options.warmup:g} s warm-up + {options.duration:g} s measured each; event template {TEMPLATE.name}"
    )
    measures: list[Measure] = []
    stored_ok = True
    with (
        infra.logged_run("holdfast-bench-", options.keep_logs, started="servers") as run,
        infra.fresh_database(options.pg) as database_url,
        infra.flushed_redis(options.redis) as redis_client,
    ):
        env = infra.holdfast_env(
            os.environ,
            database_url=database_url,
            redis_url=options.redis,
            instance_dir=run.log_dir / "instance",
            stripe_secret=secret,
        )
        database_name = database_url.rsplit("/", 1)[1]
        print(f"database: {database_name} (migrated), Redis {options.redis} (flushed)")
        with servers(names, env, run.log_dir) as running:
            print(f"servers ready (logs in {run.log_dir})")
            for round_number in range(1, options.rounds + 1):
                shift = (round_number - 1) % len(names)
                for name in names[shift:] + names[:shift]:
                    server = running[name]
                    pool = build_requests(TEMPLATE, secret, f"127.0.0.1:{server.port}", options.max_requests, tag=name)

                    def probe(s: Server = server) -> tuple[cpu.CpuSnapshot | None, int]:
                        return cpu.snapshot([s.pgid], database_name), s.boots()

                    result = run_load(
                        server.address,
                        pool,
                        connections=options.connections,
                        warmup=options.warmup,
                        duration=options.duration,
                        probe=probe,
                    )
                    measure = Measure(name, round_number, result)
                    measures.append(measure)
                    print(_round_line(measure, options.rounds), flush=True)
                    for sample in result.error_samples:
                        print(f"      error: {sample}")
                    if result.non_2xx or result.errors:
                        run.keep_logs = True  # the servers' logs say why
                    if not server.alive():
                        raise BenchError(f"the {name} server died during the run:\n{server.log_tail(15)}")
        if "ingest" in names:
            report, stored_ok = _check_storage(database_url, redis_client, measures, env)
            print(report)
    if run.status is not None:
        return run.status

    table, rates, clean = _summary(measures, names)
    print()
    print(
        f"Medians over {options.rounds} rounds ({options.duration:g} s each, {options.connections} connections; "
        f"whole run {run.seconds:.0f} s):"
    )
    print(table)
    others = [m.others_cores for m in measures if m.others_cores == m.others_cores]  # not nan
    if others:
        print(
            f"other processes on the machine kept {statistics.median(others):.2f} cores busy during the measured "
            f"windows (median; from {min(others):.2f} to {max(others):.2f})"
        )
    if not {"ingest", "floor"} <= set(names):
        return 0
    to_floor = infra.ratio(measures, "ingest", "floor")
    print()
    print(f"ingest/floor  {to_floor.value:.2f}   (per round: {to_floor.rounds})")
    if "bare" in rates:
        print(f"ingest/bare   {rates['ingest'] / rates['bare']:.2f}")
        print(f"floor/bare    {rates['floor'] / rates['bare']:.2f}")
    clean = clean and stored_ok
    reasons = []
    if to_floor.value < TARGET:
        reasons.append(f"throughput {to_floor.value:.2f} of the floor's is below {TARGET}")
    if not clean:
        reasons.append("the webhook gave non-2xx answers or errors, or acknowledged events that were not stored")
    return infra.verdict(
        to_floor.value >= TARGET and clean, f"ingest/floor >= {TARGET} with no non-2xx answers", reasons
    )


if __name__ == "__main__":
    sys.exit(main())
