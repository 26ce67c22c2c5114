"""The Celery application, built from the same settings as the web app."""

from __future__ import annotations

import ssl
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from adapters.broker import (
    QUEUE_EVENTS,
    QUEUES,
    TASK_PURGE_INBOX,
    TASK_QUEUES,
    TASK_RECONCILE_STRIPE,
    TASK_SWEEP_INBOX,
    TASK_SWEEP_OUTGOING,
    TASK_TICK,
)
from bootstrap.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker waits out a broker outage instead of exiting
        # A worker without -Q consumes every queue; `-Q holdfast.provisioning` (and so on) splits them.
        # Each queue bound to an exchange of its own by its own name: a message reaches one queue only.
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in QUEUES],  # type: ignore[no-untyped-call]
        "task_default_queue": QUEUE_EVENTS,
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "beat_schedule": {
            "sweep-inbox": {"task": TASK_SWEEP_INBOX, "schedule": settings.sweep_interval_seconds},
            "sweep-outgoing": {"task": TASK_SWEEP_OUTGOING, "schedule": settings.sweep_interval_seconds},
            "tick": {"task": TASK_TICK, "schedule": settings.tick_interval_seconds},
            "reconcile-stripe": {"task": TASK_RECONCILE_STRIPE, "schedule": settings.reconcile_interval_seconds},
            "purge-inbox": {"task": TASK_PURGE_INBOX, "schedule": settings.purge_interval_seconds},
        },
        "beat_schedule_filename": str(settings.instance_dir / "celerybeat-schedule"),
    }
    if settings.broker_is_filesystem:
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
        }
    else:
        config["broker_transport_options"] = {"visibility_timeout": 3600}
        config["broker_pool_limit"] = 10
        if settings.broker_url.startswith("rediss://"):
            config["broker_use_ssl"] = {
                "ssl_cert_reqs": ssl.CERT_REQUIRED if settings.redis_tls_verify else ssl.CERT_NONE
            }
    return config


def create_celery(settings: Settings) -> Celery:
    app = Celery("holdfast")
    app.conf.update(celery_config(settings))
    return app
