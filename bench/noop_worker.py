"""The worker's own Celery app with one task that does nothing: bench.throughput's baseline.

``celery -A bench.noop_worker worker …`` is the Procfile's events worker with the same app,
settings, queue and options; what a task of it costs is what Celery itself costs per task.
"""

from __future__ import annotations

from bench.throughput import NOOP
from tasks.worker import app


@app.task(name=NOOP)
def noop() -> None:
    """Nothing: the cost of a task is Celery's alone."""
