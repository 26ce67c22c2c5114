"""Counters and histograms shared by every web and worker process, and their Prometheus exposition.

Where the counts live decides whether ``GET /metrics`` is true across processes:

- with ``REDIS_URL``: Redis hashes (``HINCRBYFLOAT``, one pipelined round trip per count), so a
  web dyno sees what worker dynos on other machines counted;
- on the embedded default (one machine, no Redis): prometheus-client's multiprocess files (one
  memory-mapped file per process under the instance directory), summed when scraped.

Counting never fails nor slows the work it counts: a count only adds to memory, a thread sends the
counts every half second (Redis gets short timeouts), an error is logged once, and nothing is
counted inside a transaction.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis
import structlog
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector, CollectorRegistry

log = structlog.get_logger(__name__)

PREFIX = "holdfast_"
# Seconds; an event is applied in milliseconds, one that waits on a lock or a slow database in seconds.
PROCESSING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Series:
    """One family every process adds to: what it means, its labels, and a histogram's buckets."""

    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    @property
    def histogram(self) -> bool:
        return bool(self.buckets)


# The counters and histograms (gauges are read from the database when scraped: see Gauges).
SERIES: Mapping[str, Series] = {
    "webhooks_received": Series("Webhook deliveries stored and answered 200, duplicates included.", ("source",)),
    "events_processed": Series(
        "Stored deliveries that processing finished, by how (processed, ignored, failed).", ("source", "outcome")
    ),
    "provisioning_calls": Series(
        "Calls made to the provisioning API, by what they came to (provisioned, rejected, transient).", ("outcome",)
    ),
    "crm_writes": Series(
        "Writes of creditonhold to the CRM, by what they came to (written, retry, failed).", ("outcome",)
    ),
    "outgoing_deliveries": Series(
        "Attempts to deliver Holdfast's own signed events, by what they came to (delivered, retry, failed).",
        ("outcome",),
    ),
    "event_processing_seconds": Series(
        "Seconds taken to apply one stored delivery (lock, decide, save, commit).", ("source",), PROCESSING_BUCKETS
    ),
}


def field_key(labels: Mapping[str, str], part: str = "") -> str:
    """A label set (and, for a histogram, ``le=…``, ``sum`` or ``count``) as one hash field."""
    return json.dumps([sorted(labels.items()), part], separators=(",", ":"))


def parse_field(key: str) -> tuple[dict[str, str], str]:
    pairs, part = json.loads(key)
    return {str(k): str(v) for k, v in pairs}, str(part)


def bucket_of(value: float, buckets: Sequence[float]) -> str:
    """The smallest bucket holding ``value`` (stored per bucket, made cumulative when scraped)."""
    for bound in buckets:
        if value <= bound:
            return f"le={bound}"
    return "le=+Inf"


Increment = tuple[str, str, float]  # family, field, amount


class CounterStore(Protocol):
    """Where every process adds its counts, and where a scrape reads their sums."""

    def add(self, increments: Sequence[Increment]) -> None: ...

    def read(self) -> dict[str, dict[str, float]]:
        """Every family's fields and their totals over all processes."""


class RedisCounters:
    """One hash per family (``holdfast:metrics:<family>``) in the broker's Redis."""

    KEY = "holdfast:metrics:"

    def __init__(self, url: str, *, verify_tls: bool = True, timeout: float = 0.5) -> None:
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if url.startswith("rediss://") and not verify_tls:
            options["ssl_cert_reqs"] = "none"
        self.client = redis.Redis.from_url(url, **options)

    def add(self, increments: Sequence[Increment]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for family, key, amount in increments:
            pipe.hincrbyfloat(self.KEY + family, key, amount)
        pipe.execute()

    def read(self) -> dict[str, dict[str, float]]:
        pipe = self.client.pipeline(transaction=False)
        for family in SERIES:
            pipe.hgetall(self.KEY + family)
        result: dict[str, dict[str, float]] = {}
        for family, values in zip(SERIES, pipe.execute(), strict=True):
            result[family] = {k.decode(): float(v) for k, v in values.items()}
        return result


class FileCounters:
    """prometheus-client's multiprocess files: one memory-mapped file per process, summed when read.

    A process that forked (a prefork worker) opens its own file on its first count. (MmapedDict,
    the file prometheus-client's multiprocess mode writes, is untyped: hence the ignores below.)
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forked)
        self._pid: int | None = None
        self._file: MmapedDict | None = None
        self._values: dict[str, float] = {}

    def _forked(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been held by its sending thread

    def _own_file(self) -> MmapedDict:
        pid = os.getpid()
        if self._file is None or self._pid != pid:
            # One file per process and store (two stores writing one file would overwrite each other).
            self._file = MmapedDict(str(self.directory / f"counter_{pid}_{id(self):x}.db"))  # type: ignore[no-untyped-call]
            self._values = {key: value for key, value, _ in self._file.read_all_values()}  # type: ignore[no-untyped-call]
            self._pid = pid
        return self._file

    def add(self, increments: Sequence[Increment]) -> None:
        with self._lock:
            own = self._own_file()
            now = time.time()
            for family, key, amount in increments:
                name = json.dumps([family, key])
                self._values[name] = self._values.get(name, 0.0) + amount
                own.write_value(name, self._values[name], now)  # type: ignore[no-untyped-call]

    def read(self) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = defaultdict(dict)
        for path in glob.glob(str(self.directory / "counter_*.db")):
            for name, value, _, _ in MmapedDict.read_all_values_from_file(path):  # type: ignore[no-untyped-call]
                family, key = json.loads(name)
                result[family][key] = result[family].get(key, 0.0) + value
        return dict(result)


class SharedMetrics:
    """The ``services.ports.Metrics`` of every process: counts in memory, sent to the store in the background.

    Counting only adds to a dict (microseconds, never I/O on the path of the work); a thread of the
    process sends what was counted every ``interval`` seconds in one pipelined round trip (and at
    exit). An error (Redis unreachable) is logged once and what it could not send is dropped: the
    work never waits for, nor fails because of, its counting. A scrape sends its own process's
    counts first (``flush``), so what a process counted shows in what it answers.
    """

    def __init__(self, store: CounterStore, *, interval: float = 0.5) -> None:
        self.store, self.interval = store, interval
        self._logged = False
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a lock held by the parent's thread is not ours
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], float] = {}
        self._thread: threading.Thread | None = None

    def count(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._add([(name, field_key(labels), amount)])

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = SERIES[name].buckets if name in SERIES else ()
        self._add(
            [
                (name, field_key(labels, bucket_of(value, buckets)), 1.0),
                (name, field_key(labels, "sum"), value),
                (name, field_key(labels, "count"), 1.0),
            ]
        )

    def _add(self, increments: Sequence[Increment]) -> None:
        with self._lock:
            for family, key, amount in increments:
                self._pending[(family, key)] = self._pending.get((family, key), 0.0) + amount
            if self._thread is None:
                self._thread = threading.Thread(target=self._send_every_interval, name="metrics", daemon=True)
                self._thread.start()

    def _send_every_interval(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        """Send what this process counted since the last time; never raises."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self.store.add([(family, key, amount) for (family, key), amount in pending.items()])
        except Exception as error:
            if not self._logged:
                self._logged = True
                log.warning("metrics_not_counted", error=f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class Gauges:
    """What the database says at scrape time."""

    oldest_unprocessed_seconds: float
    accounts_on_hold: Mapping[str, int] = field(default_factory=dict)
    requests: Mapping[str, int] = field(default_factory=dict)


class _Snapshot(Collector):
    def __init__(self, counts: Mapping[str, Mapping[str, float]], gauges: Gauges) -> None:
        self.counts, self.gauges = counts, gauges

    def collect(self) -> Iterable[Metric]:
        yield from _gauge_families(self.gauges)
        for family, series in SERIES.items():
            values = self.counts.get(family, {})
            yield _histogram(family, series, values) if series.histogram else _counter(family, series, values)


def _gauge_families(gauges: Gauges) -> Iterator[Metric]:
    oldest = GaugeMetricFamily(
        PREFIX + "inbox_oldest_unprocessed_seconds",
        "Age in seconds of the oldest stored delivery not yet processed (0: none waits).",
        value=gauges.oldest_unprocessed_seconds,
    )
    yield oldest
    on_hold = GaugeMetricFamily(
        PREFIX + "accounts_on_hold",
        "Accounts with a hold recorded, by reason (paused ones included).",
        labels=["reason"],
    )
    for reason, number in sorted(gauges.accounts_on_hold.items()):
        on_hold.add_metric([reason], number)
    yield on_hold
    requests = GaugeMetricFamily(PREFIX + "requests", "Provisioning requests, by state.", labels=["state"])
    for state, number in sorted(gauges.requests.items()):
        requests.add_metric([state], number)
    yield requests


def _counter(family: str, series: Series, values: Mapping[str, float]) -> Metric:
    metric = CounterMetricFamily(PREFIX + family, series.help, labels=list(series.labels))
    for key, value in sorted(values.items()):
        labels, _ = parse_field(key)
        metric.add_metric([labels.get(name, "") for name in series.labels], value)
    return metric


def _histogram(family: str, series: Series, values: Mapping[str, float]) -> Metric:
    metric = HistogramMetricFamily(PREFIX + family, series.help, labels=list(series.labels))
    per_labels: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for key, value in values.items():
        labels, part = parse_field(key)
        per_labels[tuple(labels.get(name, "") for name in series.labels)][part] = value
    for label_values, parts in sorted(per_labels.items()):
        cumulative, buckets = 0.0, []
        for bound in [*(str(b) for b in series.buckets), "+Inf"]:
            cumulative += parts.get(f"le={bound}", 0.0)
            buckets.append((bound, cumulative))
        metric.add_metric(list(label_values), buckets, parts.get("sum", 0.0))
    return metric


def exposition(counts: Mapping[str, Mapping[str, float]], gauges: Gauges) -> bytes:
    """Every series, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(counts, gauges))
    return generate_latest(registry)
