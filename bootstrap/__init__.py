"""The composition root: settings in, wired services out. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adapters.broker import CeleryPublisher
from adapters.db.engine import make_engine, make_session_factory
from adapters.db.unit_of_work import SqlUnitOfWork
from adapters.policy_file import load_policy
from adapters.provisioning_client import HttpProvisioner, LoggingProvisioner
from bootstrap.celery_app import create_celery
from bootstrap.settings import Settings, load_settings
from domain.policy import HoldPolicy
from services.inbox import Handler
from services.ports import Provisioner, ProvisioningPolicy, Publisher, ServiceContext, StorageUnavailable
from services.stripe_processing import handle_stripe_event


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    """Everything a process needs, built once from its settings."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    celery: Celery
    publisher: Publisher
    policy: HoldPolicy
    provisioner: Provisioner
    clock: Callable[[], datetime] = utc_now
    handlers: dict[str, Handler] = field(default_factory=dict)
    # Failures worth retrying: the database unreachable, a deadlock, a serialization failure.
    transient_errors: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, StorageUnavailable)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.session_factory)

    @property
    def context(self) -> ServiceContext:
        s = self.settings
        return ServiceContext(
            policy=self.policy,
            publisher=self.publisher,
            provisioning=ProvisioningPolicy(
                max_attempts=s.provisioning_max_attempts,
                backoff_seconds=s.provisioning_backoff_seconds,
                stuck_after_seconds=s.provisioning_stuck_seconds,
                batch_size=s.provisioning_batch_size,
            ),
        )


def make_provisioner(settings: Settings) -> Provisioner:
    if not settings.provisioning_url:
        return LoggingProvisioner(utc_now)
    return HttpProvisioner(
        settings.provisioning_url,
        utc_now,
        connect_timeout=settings.provisioning_connect_timeout,
        read_timeout=settings.provisioning_read_timeout,
        pool_size=max(settings.provisioning_threads, 2),
    )


def build(settings: Settings | None = None) -> Container:
    settings = settings or load_settings()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    celery = create_celery(settings)
    return Container(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        celery=celery,
        publisher=CeleryPublisher(celery, settings.provisioning_batch_size),
        policy=load_policy(settings.hold_policy_path),
        provisioner=make_provisioner(settings),
        handlers={"stripe": handle_stripe_event},
    )
