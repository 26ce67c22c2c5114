"""The composition root: settings in, wired services out. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adapters.broker import CeleryPublisher, DurableBrokerWatch, RedisBrokerWatch
from adapters.db.engine import make_engine, make_session_factory
from adapters.db.inbox_store import SqlDeliveryStore
from adapters.db.unit_of_work import SqlUnitOfWork
from adapters.dispatch_locks import make_dispatch_lock
from adapters.dynamics_deliveries import DynamicsDeliveries, DynamicsOptions, DynamicsRowRead
from adapters.dynamics_webapi import DynamicsWebApi, WebApiSettings
from adapters.metrics import CounterStore, FileCounters, RedisCounters, SharedMetrics
from adapters.outgoing_http import HttpSubscriber
from adapters.policy_file import PolicyError, load_policy
from adapters.provisioning_client import HttpProvisioner, LoggingProvisioner
from adapters.stripe_api import StripeApi
from adapters.stripe_deliveries import DisputeCustomerLookup, StripeDeliveries
from bootstrap.celery_app import create_celery
from bootstrap.settings import ConfigurationError, Settings, load_settings
from domain.policy import HoldPolicy
from services import outgoing
from services.crm_processing import crm_handler
from services.inbox import Completion, Handler
from services.ports import (
    DispatchLock,
    OutgoingPolicy,
    PeerUnavailable,
    Provisioner,
    ProvisioningPolicy,
    Publisher,
    ServiceContext,
    StorageUnavailable,
)
from services.stripe_processing import stripe_handler

# Failures worth retrying: the database unreachable, a deadlock, a serialization failure, a peer down.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    StorageUnavailable,
    PeerUnavailable,
)


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
    crm: DynamicsWebApi | None = None
    clock: Callable[[], datetime] = utc_now
    handlers: dict[str, Handler] = field(default_factory=dict)
    # What deliveries of each source may need from its API first (made on that peer's queue).
    completions: dict[str, Completion] = field(default_factory=dict)
    transient_errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS
    stripe_api: StripeApi | None = None
    counters: CounterStore | None = None  # where every process's counts meet (GET /metrics reads them)

    @cached_property
    def metrics(self) -> SharedMetrics:
        """What the services and webhooks count with (services.ports.Metrics)."""
        if self.counters is None:
            self.counters = make_counters(self.settings)
        return SharedMetrics(self.counters)

    def uow(self) -> SqlUnitOfWork:
        """A unit of work whose commit writes the outgoing events of the change it commits (services.outgoing)."""
        return SqlUnitOfWork(self.session_factory, before_commit=self._record_outgoing)

    def _record_outgoing(self, uow: SqlUnitOfWork) -> None:
        outgoing.record_changes(uow, self.context, self.clock())

    @cached_property
    def subscriber(self) -> HttpSubscriber:
        """Sends Holdfast's own events (on the outgoing worker's threads)."""
        return HttpSubscriber(self.settings.outgoing_timeout_seconds, pool_size=16)

    @cached_property
    def deliveries(self) -> SqlDeliveryStore:
        """Where webhooks store deliveries: one statement, one transaction, its own small pool."""
        return SqlDeliveryStore(
            database_engine(self.settings, pool_pre_ping=False, pool_size=4, max_overflow=8)
            if not self.settings.database_url.startswith("sqlite")
            else self.engine
        )

    @cached_property
    def dispatch_lock(self) -> DispatchLock:
        """One sender per account: its own connections on PostgreSQL (one per account being sent; an outgoing
        sender holds two, its lane's and its subscriber's place)."""
        s = self.settings
        threads = max(s.provisioning_threads, 2 * s.outgoing_threads)
        engine = (
            database_engine(s, pool_size=threads + 2, max_overflow=threads)
            if not s.database_url.startswith("sqlite")
            else self.engine
        )
        return make_dispatch_lock(engine, s.instance_dir / "locks")

    @property
    def context(self) -> ServiceContext:
        s = self.settings
        return ServiceContext(
            policy=self.policy,
            publisher=self.publisher,
            provisioning=ProvisioningPolicy(
                max_attempts=s.provisioning_max_attempts,
                backoff_seconds=s.provisioning_backoff_seconds,
                backoff_cap_seconds=s.provisioning_backoff_max_seconds,
                stuck_after_seconds=s.provisioning_stuck_seconds,
                batch_size=s.provisioning_batch_size,
                calls_per_account=s.provisioning_calls_per_account,
            ),
            crm_write_back=self.crm is not None,
            crm_recheck=timedelta(seconds=s.crm_recheck_seconds),
            peer_patience=timedelta(seconds=3 * (s.peer_connect_timeout + s.peer_read_timeout)),
            metrics=self.metrics,
            outgoing=OutgoingPolicy(
                backoff_seconds=s.outgoing_backoff_seconds,
                retry_hours=s.outgoing_retry_hours,
                sends_per_subscriber=s.outgoing_sends_per_subscriber,
            ),
        )

    @property
    def dynamics_options(self) -> DynamicsOptions:
        """How CRM deliveries are read: the Stripe customer column, Holdfast's own CRM user."""
        return dynamics_options(self.settings)


def database_engine(settings: Settings, **overrides: Any) -> Engine:
    """An engine with the configured connect and statement timeouts."""
    return make_engine(
        settings.database_url,
        connect_timeout=settings.database_connect_timeout,
        statement_timeout=settings.database_statement_timeout,
        **overrides,
    )


def make_broker_watch(settings: Settings) -> RedisBrokerWatch | DurableBrokerWatch:
    """What tells the relay that the broker may have lost its messages (Redis restarted empty, or down)."""
    if settings.broker_is_filesystem:
        return DurableBrokerWatch()
    return RedisBrokerWatch(settings.broker_url, verify_tls=settings.redis_tls_verify)


def make_counters(settings: Settings) -> CounterStore:
    """Redis when there is one (processes on several machines meet there); else files under the instance dir."""
    if settings.broker_is_filesystem:
        return FileCounters(settings.instance_dir / "metrics")
    return RedisCounters(settings.broker_url, verify_tls=settings.redis_tls_verify)


def make_provisioner(settings: Settings) -> Provisioner:
    if not settings.provisioning_url:
        return LoggingProvisioner(utc_now)
    return HttpProvisioner(
        settings.provisioning_url,
        utc_now,
        connect_timeout=settings.provisioning_connect_timeout,
        read_timeout=settings.provisioning_read_timeout,
        pool_size=max(settings.provisioning_threads, 2),
        auth_header=settings.provisioning_auth_header,
    )


def dynamics_options(settings: Settings) -> DynamicsOptions:
    return DynamicsOptions(settings.dynamics_stripe_customer_field, settings.dynamics_app_user_id)


def make_dynamics_api(settings: Settings) -> DynamicsWebApi | None:
    if not settings.dynamics_api_url:
        return None
    assert settings.dynamics_tenant_id and settings.dynamics_client_id and settings.dynamics_client_secret
    return DynamicsWebApi(
        WebApiSettings(
            api_url=settings.dynamics_api_url,
            tenant_id=settings.dynamics_tenant_id,
            client_id=settings.dynamics_client_id,
            client_secret=settings.dynamics_client_secret,
            authority_url=settings.dynamics_authority_url,
            timeout=(settings.peer_connect_timeout, settings.peer_read_timeout),
        )
    )


def build(settings: Settings | None = None) -> Container:
    """Wire a process; a configuration that cannot work raises ConfigurationError with a sentence."""
    settings = settings or load_settings()
    try:
        policy = load_policy(settings.hold_policy_path)
    except PolicyError as error:
        raise ConfigurationError(str(error)) from None
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    engine = database_engine(settings)
    celery = create_celery(settings)
    crm = make_dynamics_api(settings)
    options = dynamics_options(settings)
    stripe_api = (
        StripeApi(
            settings.stripe_api_key,
            settings.stripe_api_base,
            timeout=(settings.peer_connect_timeout, settings.peer_read_timeout),
        )
        if settings.stripe_api_key
        else None
    )
    completions: dict[str, Completion] = {}
    if stripe_api is not None:
        completions["stripe"] = DisputeCustomerLookup(stripe_api)
    if crm is not None:
        completions["dynamics"] = DynamicsRowRead(crm)
    return Container(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        celery=celery,
        publisher=CeleryPublisher(celery, settings.provisioning_batch_size),
        policy=policy,
        provisioner=make_provisioner(settings),
        crm=crm,
        stripe_api=stripe_api,
        handlers={
            "stripe": stripe_handler(StripeDeliveries()),
            "dynamics": crm_handler(DynamicsDeliveries(options)),
        },
        completions=completions,
        counters=make_counters(settings),
    )
