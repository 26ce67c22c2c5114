"""The schema. Alembic's migrations are generated from (and checked against) these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(20, 4)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata


class InboxEventRow(Base):
    """A webhook delivery stored raw before anything else happens to it."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_inbox_events_source_external_id"),
        Index("ix_inbox_events_status_queued_at", "status", "queued_at"),
        Index("ix_inbox_events_source_occurred_at", "source", "occurred_at"),
        # Retention's purge finds the oldest deliveries that ended; only those rows are in it, so a
        # delivery is indexed here once it is processed or ignored, not as the webhook stores it.
        Index(
            "ix_inbox_events_ended_received_at",
            "received_at",
            postgresql_where=text("status IN ('processed', 'ignored')"),
            sqlite_where=text("status IN ('processed', 'ignored')"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the relay (or the sweep) last handed it to the broker; None: not yet.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What the delivery's headers said that processing needs (Dynamics: the body was stripped).
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # When the source says the event happened (Stripe's created): reconciliation starts from the newest.
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AccountRow(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(400), nullable=True)
    account_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    credit_limit: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    enforcement_paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pause_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    paused_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    next_evaluation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credit_review_cause: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The last decision the good-standing allowance made (domain.account.note_allowance): written once.
    allowance_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The CRM's view: per-column modifiedon of the values applied, creditonhold as the CRM
    # shows it, and the value Holdfast last wrote there (to recognise its echo).
    crm_versions: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    crm_on_hold: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    crm_written_on_hold: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # When to look again whether the CRM shows the effective hold (a write pending, lost or given up).
    crm_sync_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    # One more at every save: a sender compares it before each call to see whether the account changed.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What subscribers were last told the account's holds do (domain.outgoing.Enforcement); NULL:
    # an account from before outgoing events (taken as told at its next change, without an event).
    announced_enforcement: Mapped[str | None] = mapped_column(String(64), nullable=True, default="")


class StripeCustomerRow(Base):
    """A Stripe customer and the account it maps to; the lock point for that customer's facts."""

    __tablename__ = "stripe_customers"

    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(
        String(100), ForeignKey("accounts.account_id"), nullable=True, unique=True
    )
    # Source time of the mapping in force (a Stripe event's created, or the API call's time).
    mapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mapping_cause: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HoldRow(Base):
    __tablename__ = "holds"

    account_id: Mapped[str] = mapped_column(String(100), ForeignKey("accounts.account_id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    placed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)


class TimelineRow(Base):
    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_entries_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(100), ForeignKey("accounts.account_id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(120))
    cause: Mapped[str | None] = mapped_column(String(300), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InvoiceRow(Base):
    """The merged fact about one Stripe invoice (see domain.invoices)."""

    __tablename__ = "invoices"

    invoice_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount_remaining: Mapped[Decimal] = mapped_column(Money)
    collection_method: Mapped[str] = mapped_column(String(32))
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    event_id: Mapped[str] = mapped_column(String(255))
    event_created: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    uncollectible_since: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProvisioningRequestRow(Base):
    """An order to provision, with its state and what it waits for."""

    __tablename__ = "provisioning_requests"
    __table_args__ = (
        UniqueConstraint("account_id", "order_id", name="uq_provisioning_requests_account_id_order_id"),
        Index("ix_provisioning_requests_account_id_state", "account_id", "state"),
        Index("ix_provisioning_requests_state_due_at", "state", "due_at"),
        Index("ix_provisioning_requests_order_id", "order_id"),
    )

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    waiting_for: Mapped[list[str]] = mapped_column(JSON, default=list)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # queued: when the next attempt is due; provisioning: when the current attempt began
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ProvisioningAttemptRow(Base):
    __tablename__ = "provisioning_attempts"
    __table_args__ = (Index("ix_provisioning_attempts_request_id_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), ForeignKey("provisioning_requests.request_id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class DisputeRow(Base):
    """The merged fact about one Stripe dispute (chargeback)."""

    __tablename__ = "disputes"

    dispute_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    event_id: Mapped[str] = mapped_column(String(255))
    event_created: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_event_id: Mapped[str] = mapped_column(String(255))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # NULL: rows before 0007
    # finance lifted the hold of a lost dispute: it holds no more
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconciliationCursorRow(Base):
    """How far reconciliation with a source's event list got (one row per source)."""

    __tablename__ = "reconciliation_cursors"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    reached: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """A token of the admin API: its name, role and the SHA-256 of its secret (never the secret)."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        # A name is unique among tokens not revoked (a revoked name may be given again).
        Index(
            "ix_api_tokens_active_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
        Index("ix_api_tokens_created_at_token_id", "created_at", "token_id"),
    )

    token_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SubscriptionRow(Base):
    """A subscriber of Holdfast's own events: where to send which types, and the secret that signs them.

    The secret is kept as given out (``whsec_`` + base64): signing needs it, a hash would not do.
    """

    __tablename__ = "subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutgoingEventRow(Base):
    """The outbox: an event written in the transaction of the change it reports, its body as sent."""

    __tablename__ = "outgoing_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)  # {"type", "timestamp", "data"}: the same bytes on every retry


class OutgoingDeliveryRow(Base):
    """One event to one subscription: pending until delivered or failed for good.

    A subscription's deliveries of one account go in order: only the oldest pending one is sent.
    """

    __tablename__ = "outgoing_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", name="uq_outgoing_deliveries_webhook_id"),
        Index("ix_outgoing_deliveries_lane", "subscription_id", "account_id", "status", "id"),
        Index("ix_outgoing_deliveries_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(Id, ForeignKey("outgoing_events.id"))
    subscription_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscriptions.subscription_id"))
    account_id: Mapped[str] = mapped_column(String(100))
    webhook_id: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the next attempt may be made
    # When the attempt under way began (None: none is): a sender that died leaves it set.
    sending_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutgoingAttemptRow(Base):
    """One attempt at a delivery: the subscriber's HTTP status, or what went wrong."""

    __tablename__ = "outgoing_attempts"
    __table_args__ = (Index("ix_outgoing_attempts_subscription_id_id", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(Id, ForeignKey("outgoing_deliveries.id"))
    subscription_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
