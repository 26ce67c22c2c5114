"""GET /metrics' text: every series, counts summed over processes, histograms cumulative."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics import FileCounters, Gauges, SharedMetrics, exposition

GAUGES = Gauges(
    oldest_unprocessed_seconds=12.5,
    accounts_on_hold={"non_payment": 2, "dispute": 0},
    requests={"awaiting": 3, "provisioned": 7},
)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    result: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            result[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return result


def families(text: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def test_every_series_of_the_contract_is_exported_even_before_anything_was_counted() -> None:
    found = families(exposition({}, Gauges(oldest_unprocessed_seconds=0.0)))
    assert {name: family.type for name, family in found.items()} == {
        "holdfast_webhooks_received": "counter",
        "holdfast_events_processed": "counter",
        "holdfast_inbox_oldest_unprocessed_seconds": "gauge",
        "holdfast_accounts_on_hold": "gauge",
        "holdfast_requests": "gauge",
        "holdfast_provisioning_calls": "counter",
        "holdfast_crm_writes": "counter",
        "holdfast_outgoing_deliveries": "counter",
        "holdfast_event_processing_seconds": "histogram",
    }


def test_gauges_are_what_the_database_said() -> None:
    found = samples(exposition({}, GAUGES))
    assert found[("holdfast_inbox_oldest_unprocessed_seconds", ())] == 12.5
    assert found[("holdfast_accounts_on_hold", (("reason", "non_payment"),))] == 2
    assert found[("holdfast_accounts_on_hold", (("reason", "dispute"),))] == 0
    assert found[("holdfast_requests", (("state", "awaiting"),))] == 3
    assert found[("holdfast_requests", (("state", "provisioned"),))] == 7


def test_counts_of_several_processes_are_summed(tmp_path: Path) -> None:
    web, worker = SharedMetrics(FileCounters(tmp_path)), SharedMetrics(FileCounters(tmp_path))
    web.count("webhooks_received", source="stripe")
    web.count("webhooks_received", source="stripe")
    web.count("webhooks_received", source="dynamics")
    worker.count("events_processed", source="stripe", outcome="processed")
    worker.count("provisioning_calls", outcome="provisioned")
    worker.count("crm_writes", outcome="retry")
    web.flush()
    worker.flush()

    found = samples(exposition(FileCounters(tmp_path).read(), GAUGES))

    assert found[("holdfast_webhooks_received_total", (("source", "stripe"),))] == 2
    assert found[("holdfast_webhooks_received_total", (("source", "dynamics"),))] == 1
    assert found[("holdfast_events_processed_total", (("outcome", "processed"), ("source", "stripe")))] == 1
    assert found[("holdfast_provisioning_calls_total", (("outcome", "provisioned"),))] == 1
    assert found[("holdfast_crm_writes_total", (("outcome", "retry"),))] == 1


def test_a_store_opened_again_by_the_same_process_adds_to_what_its_file_holds(tmp_path: Path) -> None:
    store = FileCounters(tmp_path)
    metrics = SharedMetrics(store)
    metrics.count("crm_writes", outcome="written")
    metrics.flush()
    store._file = None  # as after a fork: the file is opened again
    metrics.count("crm_writes", outcome="written")
    metrics.flush()
    assert samples(exposition(store.read(), GAUGES))[("holdfast_crm_writes_total", (("outcome", "written"),))] == 2


def test_the_histogram_is_cumulative_with_its_sum_and_count(tmp_path: Path) -> None:
    metrics = SharedMetrics(FileCounters(tmp_path))
    for seconds in (0.003, 0.02, 0.02, 40.0):
        metrics.observe("event_processing_seconds", seconds, source="stripe")
    metrics.flush()

    found = samples(exposition(FileCounters(tmp_path).read(), GAUGES))

    def bucket(le: str) -> float:
        return found[("holdfast_event_processing_seconds_bucket", (("le", le), ("source", "stripe")))]

    assert bucket("0.005") == 1
    assert bucket("0.025") == 3
    assert bucket("30.0") == 3
    assert bucket("+Inf") == 4
    assert found[("holdfast_event_processing_seconds_count", (("source", "stripe"),))] == 4
    assert found[("holdfast_event_processing_seconds_sum", (("source", "stripe"),))] == 40.043


class _Unreachable:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def add(self, increments: Any) -> None:
        self.sent.append(increments)
        raise ConnectionError("Redis is down")

    def read(self) -> dict[str, dict[str, float]]:
        return {}


def test_counting_only_adds_in_memory_and_a_store_that_fails_fails_nothing() -> None:
    store = _Unreachable()
    metrics = SharedMetrics(store, interval=3600)
    metrics.count("webhooks_received", source="stripe")
    metrics.count("webhooks_received", source="stripe")
    metrics.observe("event_processing_seconds", 0.1, source="stripe")
    assert store.sent == []  # nothing on the path of the work
    metrics.flush()
    metrics.flush()  # nothing left to send: what could not be sent was dropped
    assert len(store.sent) == 1
    assert sorted((family, amount) for family, _, amount in store.sent[0]) == [
        ("event_processing_seconds", 0.1),
        ("event_processing_seconds", 1.0),
        ("event_processing_seconds", 1.0),
        ("webhooks_received", 2.0),
    ]
