"""Counting what the processes do, for GET /metrics: a port, so the services name no adapter.

Counting never fails nor slows the work it counts: an implementation swallows its own errors.
"""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    """Counters and histograms that every web and worker process adds to (see adapters.metrics)."""

    def count(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to counter ``name`` (without the ``holdfast_`` prefix and ``_total``)."""

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation of histogram ``name`` (seconds)."""


class NoMetrics:
    """Counts nothing: the default where nothing was wired (unit tests of the services)."""

    def count(self, name: str, amount: float = 1.0, **labels: str) -> None:
        return None

    def observe(self, name: str, value: float, **labels: str) -> None:
        return None


NO_METRICS = NoMetrics()
