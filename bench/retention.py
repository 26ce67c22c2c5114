"""Retention: purging a million old inbox rows while webhooks keep arriving, against the same webhooks alone.

    .venv/bin/python -m bench.retention            # about 5 minutes; --help for the options

It builds a fresh PostgreSQL database with the real Alembic migrations and fills it straight in
the database (``bench/large_book.py``): ``--accounts`` accounts with their history and
``--inbox`` (1,000,000) processed or ignored inbox rows received 91 to 455 days ago, plus the rows
a purge must leave alone (1 per 1000 failed, 1 per 100 processed in the last 90 days).

Webhooks are POSTed to the real webhook (``webhooks.create_app`` in this process, through Flask's
test client: verify, parse, store in one statement) by ``--threads`` threads at ``--rate`` a
second in all, each timed from the call to the answer. Three phases, in this order:

1. **before**: ``--baseline`` seconds of webhooks alone;
2. **purge**: the purge beat runs (``services.retention.purge_inbox``, with the default retention of
   90 days, no time budget, batches of 1,000), in a process of its own, while the webhooks go on;
   the phase lasts as long as the purge;
3. **after**: ``--baseline`` seconds of webhooks alone again, on the purged table.

It prints each phase's webhook latencies (p50, p95, max), the ratios purge/before, and the purge's
rows a second; then checks that every old ended row is gone and every other row (failed, recent,
and every webhook stored during the run) is there. Exit status: 0 when the rows are right and no
webhook waited more than ``MAX_WAIT`` seconds (a long lock would show as seconds), 1 when not, 2
when the run could not be made.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import infra, large_book
from bench.infra import BenchError, Child
from bench.load import percentile

MAX_WAIT = 1.0  # seconds: no webhook may wait this long while the purge runs
TEMPLATE = infra.FIXTURES / "stripe" / "invoice.payment_failed.stripe-ruby-mock.json"

# The purge as beat's task runs it, in a process of its own; it prints what it did as JSON.
_PURGE = """
import json, sys, time
from bootstrap import build
from bootstrap.settings import load_settings
from services.retention import purge_inbox
c = build(load_settings())
print("purge starting", flush=True)
began = time.perf_counter()
purged = purge_inbox(c.uow, now=c.clock(), retention_days=c.settings.inbox_retention_days)
seconds = time.perf_counter() - began
print("purged " + json.dumps({"rows": purged.rows, "batches": purged.batches, "seconds": seconds}), flush=True)
"""


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = infra.option_parser("retention", __doc__)
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts in the book (10000)")
    parser.add_argument("--inbox", type=int, default=1_000_000, help="old ended inbox rows to purge (1000000)")
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks a second, in all (50)")
    parser.add_argument("--threads", type=int, default=2, help="threads sending them (2)")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of webhooks alone before and after (20)")
    infra.add_common_options(parser, redis_env="HOLDFAST_BENCH_REDIS", redis_db=12)
    options = parser.parse_args(argv)
    if options.rate <= 0 or options.threads < 1 or options.baseline <= 0 or options.inbox < 1000:
        parser.error("--rate and --baseline must be positive, --threads at least 1, --inbox at least 1000")
    return options


# --- webhooks at a steady rate ---------------------------------------------------------------------


class Webhooks:
    """Threads POSTing distinct signed events at a steady rate; each answer's wait noted with its phase."""

    def __init__(self, app: Any, secret: str, rate: float, threads: int) -> None:
        self.app, self.secret = app, secret
        self.interval = threads / rate
        self.phase = "before"
        self.waits: dict[str, list[float]] = {}
        self.failures: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._template: dict[str, Any] = json.loads(TEMPLATE.read_text())
        self._threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _body(self, thread: int, n: int) -> str:
        event = json.loads(json.dumps(self._template))
        event["id"] = f"evt_keep{thread:02d}{n:018d}"
        event["created"] = int(time.time())
        return json.dumps(event, indent=2)

    def _send(self, thread: int) -> None:
        import stripe

        client = self.app.test_client()
        due = time.perf_counter()
        n = 0
        while not self._stop.is_set():
            body = self._body(thread, n)
            signature = stripe.WebhookSignature.generate_signature_header(body, self.secret, timestamp=int(time.time()))
            phase, began = self.phase, time.perf_counter()
            answer = client.post(
                "/webhooks/stripe",
                data=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json; charset=utf-8"},
            )
            waited = time.perf_counter() - began
            with self._lock:
                self.sent += 1
                self.waits.setdefault(phase, []).append(waited)
                if answer.status_code != 200 and len(self.failures) < 5:
                    self.failures.append(f"{answer.status_code} {answer.get_data(as_text=True)[:120]}")
            n += 1
            due += self.interval
            self._stop.wait(max(due - time.perf_counter(), 0))


@dataclass(frozen=True)
class Phase:
    name: str
    waits: list[float]  # sorted, seconds

    @property
    def p50(self) -> float:
        return percentile(self.waits, 0.50) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.waits, 0.95) * 1000

    @property
    def max(self) -> float:
        return (self.waits[-1] if self.waits else float("nan")) * 1000

    def line(self) -> str:
        return f"{self.name:<7} {len(self.waits):>8} {self.p50:>8.2f} {self.p95:>8.2f} {self.max:>8.2f}"


# --- the run ------------------------------------------------------------------------------------


def _counts(engine: Any, now: datetime) -> dict[str, int]:
    from sqlalchemy import text

    with engine.connect() as connection:
        return dict(
            connection.execute(
                text(
                    "SELECT CASE WHEN external_id LIKE 'evt_keep%' THEN 'webhooks of the run' "
                    "WHEN status IN ('processed', 'ignored') AND received_at < :cutoff THEN 'old ended' "
                    "WHEN status = 'failed' THEN 'failed' ELSE 'recent ended' END, count(*) "
                    "FROM inbox_events GROUP BY 1"
                ),
                {"cutoff": now.replace() - large_book.timedelta(days=large_book.RETENTION_DAYS)},
            ).all()
        )


def _purge(env: dict[str, str], run: infra.Run, webhooks: Webhooks) -> dict[str, Any]:
    """Run the purge in a process of its own while the webhooks go on; what it printed."""
    with infra.children() as started:
        child = Child("purge", [sys.executable, "-c", _PURGE], env, run.log_dir / "purge.log")
        started.append(child)
        child.wait_for("purge starting", 120)
        webhooks.phase = "purge"
        while child.alive():
            time.sleep(0.05)
        webhooks.phase = "after"
        line = next((x for x in child.log_text().splitlines() if x.startswith("purged ")), None)
        if line is None:
            raise BenchError(f"the purge failed:\n{child.log_tail()}")
        found: dict[str, Any] = json.loads(line.removeprefix("purged "))
        return found


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy import create_engine

    from bootstrap import build
    from bootstrap.settings import database_url_for_sqlalchemy, load_settings
    from webhooks import create_app

    options = _options(argv)
    if not TEMPLATE.exists():
        print(f"bench: the event template {TEMPLATE} is missing (set HOLDFAST_FIXTURES)", file=sys.stderr)
        return 2
    infra.begin("retention")
    print(
        f"webhooks: {options.rate:g} a second from {options.threads} threads through the real webhook (in this "
        f"process); {options.baseline:g} s alone, then during the purge, then {options.baseline:g} s alone again"
    )
    purged: dict[str, Any] = {}
    with (
        infra.logged_run("holdfast-bench-", options.keep_logs, started="the purge") as run,
        infra.fresh_database(options.pg, prefix="holdfast_bench_retention") as url,
        infra.flushed_redis(options.redis),
    ):
        engine = create_engine(database_url_for_sqlalchemy(url))
        try:
            book = large_book.fill(engine, accounts=options.accounts, inbox=options.inbox)
            print(f"book: {book.describe()}")
            before = _counts(engine, datetime.now(UTC))
            secret = "whsec_bench_" + secrets.token_hex(16)
            env = infra.holdfast_env(
                os.environ,
                database_url=url,
                redis_url=options.redis,
                instance_dir=run.log_dir / "instance",
                stripe_secret=secret,
            )
            container = build(load_settings(env))
            webhooks = Webhooks(create_app(container=container), secret, options.rate, options.threads)
            webhooks.start()
            try:
                time.sleep(options.baseline)
                purged = _purge(env, run, webhooks)
                time.sleep(options.baseline)
            finally:
                webhooks.stop()
                container.engine.dispose()
                container.deliveries.engine.dispose()
            after = _counts(engine, datetime.now(UTC))
        finally:
            engine.dispose()
    if run.status is not None:
        return run.status

    phases = {name: Phase(name, sorted(webhooks.waits.get(name, []))) for name in ("before", "purge", "after")}
    print()
    print(f"rows before: {before}")
    print(f"rows after:  {after}")
    rate = purged["rows"] / purged["seconds"]
    print(
        f"purge: {purged['rows']:,} rows in {purged['batches']:,} batches, {purged['seconds']:.1f} s: "
        f"{rate:,.0f} rows/s ({purged['seconds'] * 1000 / purged['batches']:.1f} ms a batch on average)"
    )
    print()
    print(f"Webhook waits (whole run {run.seconds:.0f} s), ms:")
    header = f"{'phase':<7} {'webhooks':>8} {'p50':>8} {'p95':>8} {'max':>8}"
    print("\n".join([header, "-" * len(header), *(phase.line() for phase in phases.values())]))
    baseline = Phase("alone", sorted(phases["before"].waits + phases["after"].waits))
    print(
        f"\npurge/alone (before and after together)  p50 {phases['purge'].p50 / baseline.p50:.2f}  "
        f"p95 {phases['purge'].p95 / baseline.p95:.2f}  max {phases['purge'].max / baseline.max:.2f}"
    )
    reasons = []
    if after.get("old ended", 0) != 0 or purged["rows"] != before.get("old ended"):
        reasons.append(f"{after.get('old ended', 0)} old ended rows left, {purged['rows']} purged")
    if after.get("failed") != before.get("failed") or after.get("recent ended") != before.get("recent ended"):
        reasons.append("a failed or recent row was purged")
    if after.get("webhooks of the run") != webhooks.sent or webhooks.failures:
        reasons.append(f"{webhooks.sent} webhooks sent, {after.get('webhooks of the run')} stored: {webhooks.failures}")
    if phases["purge"].max / 1000 > MAX_WAIT:
        reasons.append(f"a webhook waited {phases['purge'].max:.0f} ms during the purge")
    return infra.verdict(
        not reasons, f"every old ended row purged, every other kept, no webhook waiting {MAX_WAIT:g} s or more", reasons
    )


if __name__ == "__main__":
    sys.exit(main())
