"""Configuration read once from the environment (twelve-factor).

Everything the processes need is named here; nothing else reads ``os.environ``.
With neither ``DATABASE_URL`` nor ``REDIS_URL`` set, Holdfast runs on its embedded
default: a SQLite file and a filesystem broker under ``instance/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import limits

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_DIR = PROJECT_ROOT / "instance"
# kombu's filesystem transport, with a host named: without one, kombu warns "No hostname was
# supplied. Reverting to default 'localhost'" at every connection (the folders are set apart).
EMBEDDED_BROKER_URL = "filesystem://localhost/"


class ConfigurationError(RuntimeError):
    """The environment does not describe a service that can start."""


def _split_secrets(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative.")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}.") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative.")
    return value


def database_url_for_sqlalchemy(url: str) -> str:
    """Turn Heroku's ``postgres://`` form into the URL SQLAlchemy's psycopg driver wants."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    """The service's whole configuration, resolved and validated."""

    database_url: str = field(repr=False)
    broker_url: str = field(repr=False)
    embedded: bool
    instance_dir: Path
    stripe_webhook_secrets: tuple[str, ...] = field(repr=False)
    admin_api_token: str = field(repr=False)
    # Signs the dashboard's session cookie; None: a key derived from admin_api_token (older deployments).
    session_secret: str | None = field(default=None, repr=False)
    signin_rate_limit: str = "10 per minute"  # failed dashboard sign-ins per client address
    forwarded_for_hops: int = 0  # proxies in front whose X-Forwarded-For is trusted (Heroku's router: 1)
    database_connect_timeout: int = 5  # seconds (PostgreSQL); 0: no limit
    database_statement_timeout: float = 30.0  # seconds (PostgreSQL); 0: no limit
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    # Stripe's API and the Dataverse Web API: short timeouts, the tasks retry with backoff.
    peer_connect_timeout: float = 3.05
    peer_read_timeout: float = 10.0
    stripe_signature_tolerance_seconds: int = 300
    max_body_bytes: int = 1024 * 1024
    inbox_sweep_age_seconds: int = 60
    sweep_interval_seconds: float = 60.0
    tick_interval_seconds: float = 60.0
    reconcile_interval_seconds: float = 900.0
    # Processed and ignored deliveries older than this are purged (0: kept for ever); how often beat purges.
    inbox_retention_days: int = 90
    purge_interval_seconds: float = 3600.0
    reconcile_lookback_seconds: int = 900
    task_max_retries: int = 8
    hold_policy_path: str | None = None
    provisioning_url: str | None = None
    provisioning_auth_header: tuple[str, str] | None = field(default=None, repr=False)
    provisioning_max_attempts: int = 20
    provisioning_backoff_seconds: float = 2.0
    provisioning_backoff_max_seconds: float = 3600.0
    provisioning_connect_timeout: float = 3.05
    provisioning_read_timeout: float = 10.0
    provisioning_stuck_seconds: float = 30.0
    provisioning_batch_size: int = 50
    provisioning_threads: int = 8
    provisioning_calls_per_account: int = 1
    dynamics_webhook_key: str | None = field(default=None, repr=False)
    dynamics_webhook_header: tuple[str, str] | None = field(default=None, repr=False)
    dynamics_stripe_customer_field: str | None = None
    dynamics_api_url: str | None = None
    dynamics_tenant_id: str | None = None
    dynamics_client_id: str | None = None
    dynamics_client_secret: str | None = field(default=None, repr=False)
    dynamics_authority_url: str = "https://login.microsoftonline.com"
    dynamics_app_user_id: str | None = None
    crm_recheck_seconds: float = 120.0
    # Holdfast's own events: the first retry delay (doubling, with jitter), how long to keep trying,
    # whether http URLs may subscribe (local use), and each POST's timeout.
    outgoing_backoff_seconds: float = 10.0
    outgoing_retry_hours: float = 72.0
    outgoing_allow_http: bool = False
    outgoing_timeout_seconds: float = 10.0
    outgoing_sends_per_subscriber: int = 4
    outgoing_threads: int = 8  # the Procfile's outgoing worker reads OUTGOING_THREADS too
    redis_tls_verify: bool = True
    log_level: str = "INFO"

    @property
    def dynamics_webhooks_enabled(self) -> bool:
        return bool(self.dynamics_webhook_key or self.dynamics_webhook_header)

    @property
    def dynamics_web_api_enabled(self) -> bool:
        return bool(self.dynamics_api_url)

    @property
    def broker_is_filesystem(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.instance_dir / "broker"


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    """A rate limit as flask-limiter reads it ("10 per minute", "10/minute;50/hour")."""
    raw = (env.get(name) or "").strip() or default
    try:
        rates = limits.parse_many(raw)
    except ValueError:
        rates = []
    if not rates or any(rate.amount < 1 for rate in rates):
        raise ConfigurationError(
            f"{name} must be a rate like '10 per minute' (or several, ';'-separated), not {raw!r}."
        )
    return raw


def _header(env: Mapping[str, str], variable: str, what: str) -> tuple[str, str] | None:
    """An HTTP header given as ``Name: value``; None when the variable is not set."""
    raw = (env.get(variable) or "").strip()
    if not raw:
        return None
    name, sep, value = raw.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name.strip()) or not value.strip():
        raise ConfigurationError(f"{variable} must be 'Name: value' ({what}).")
    return name.strip(), value.strip()


def _dynamics_settings(env: Mapping[str, str], embedded: bool) -> dict[str, Any]:
    def get(name: str) -> str | None:
        value = (env.get(name) or "").strip()
        return value or None

    header = _header(env, "DYNAMICS_WEBHOOK_HEADER", "the HttpHeader key registered for the webhook")
    api_url = get("DYNAMICS_API_URL")
    if api_url is not None:
        missing = [n for n in ("DYNAMICS_TENANT_ID", "DYNAMICS_CLIENT_ID", "DYNAMICS_CLIENT_SECRET") if not get(n)]
        if missing:
            raise ConfigurationError(
                f"DYNAMICS_API_URL is set but {', '.join(missing)} is not: the Web API needs all of them."
            )
        if not api_url.startswith("https://"):
            raise ConfigurationError("DYNAMICS_API_URL must be an https:// address.")
    key = get("DYNAMICS_WEBHOOK_KEY")
    in_use = api_url or get("DYNAMICS_STRIPE_CUSTOMER_FIELD") or get("DYNAMICS_APP_USER_ID")
    if in_use and not (key or header) and not embedded:
        raise ConfigurationError(
            "Dynamics 365 is configured but POST /webhooks/dynamics has no authentication: set DYNAMICS_WEBHOOK_KEY "
            "(WebhookKey, sent as ?code=) or DYNAMICS_WEBHOOK_HEADER ('Name: value', HttpHeader)."
        )
    authority_url = get("DYNAMICS_AUTHORITY_URL") or "https://login.microsoftonline.com"
    if not authority_url.startswith("https://"):
        raise ConfigurationError("DYNAMICS_AUTHORITY_URL must be an https:// address: tokens are asked for there.")
    app_user = get("DYNAMICS_APP_USER_ID")
    return {
        "dynamics_webhook_key": key,
        "dynamics_webhook_header": header,
        "dynamics_stripe_customer_field": get("DYNAMICS_STRIPE_CUSTOMER_FIELD"),
        "dynamics_api_url": api_url.rstrip("/") if api_url else None,
        "dynamics_tenant_id": get("DYNAMICS_TENANT_ID"),
        "dynamics_client_id": get("DYNAMICS_CLIENT_ID"),
        "dynamics_client_secret": get("DYNAMICS_CLIENT_SECRET"),
        "dynamics_authority_url": authority_url.rstrip("/"),
        "dynamics_app_user_id": app_user.lower() if app_user else None,
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the configuration; raise ConfigurationError with a sentence if it is wrong."""
    env = os.environ if env is None else env
    instance_dir = Path(env.get("HOLDFAST_INSTANCE_DIR") or DEFAULT_INSTANCE_DIR)

    raw_db = env.get("DATABASE_URL", "").strip()
    raw_redis = env.get("REDIS_URL", "").strip()
    embedded = not raw_db and not raw_redis
    database_url = database_url_for_sqlalchemy(raw_db) if raw_db else f"sqlite:///{instance_dir / 'holdfast.sqlite3'}"
    broker_url = raw_redis or EMBEDDED_BROKER_URL
    if not (broker_url.startswith(("redis://", "rediss://")) or broker_url == EMBEDDED_BROKER_URL):
        raise ConfigurationError("REDIS_URL must start with redis:// or rediss://.")

    secrets = _split_secrets(env.get("STRIPE_WEBHOOK_SECRET"))
    if not secrets:
        raise ConfigurationError(
            "STRIPE_WEBHOOK_SECRET is not set: give the Stripe endpoint's signing secret "
            "(several, comma-separated, while rotating)."
        )
    admin_token = (env.get("ADMIN_API_TOKEN") or "").strip()
    if len(admin_token) < 16:
        raise ConfigurationError("ADMIN_API_TOKEN is not set or shorter than 16 characters: the /api routes need it.")

    session_secret = (env.get("SESSION_SECRET") or "").strip() or None
    if session_secret is not None and len(session_secret) < 16:
        raise ConfigurationError(
            "SESSION_SECRET is shorter than 16 characters: give a long random secret, or unset it."
        )

    dynamics = _dynamics_settings(env, embedded)
    return Settings(
        **dynamics,
        database_url=database_url,
        broker_url=broker_url,
        embedded=embedded,
        instance_dir=instance_dir,
        stripe_webhook_secrets=secrets,
        admin_api_token=admin_token,
        session_secret=session_secret,
        signin_rate_limit=_rate_limit(env, "SIGNIN_RATE_LIMIT", "10 per minute"),
        forwarded_for_hops=_int(env, "FORWARDED_FOR_HOPS", 0),
        database_connect_timeout=_int(env, "DATABASE_CONNECT_TIMEOUT", 5),
        database_statement_timeout=_float(env, "DATABASE_STATEMENT_TIMEOUT", 30.0),
        stripe_api_key=(env.get("STRIPE_API_KEY") or None),
        stripe_api_base=(env.get("STRIPE_API_BASE") or None),
        peer_connect_timeout=_float(env, "PEER_CONNECT_TIMEOUT", 3.05),
        peer_read_timeout=_float(env, "PEER_READ_TIMEOUT", 10.0),
        max_body_bytes=_int(env, "MAX_WEBHOOK_BYTES", 1024 * 1024),
        inbox_sweep_age_seconds=_int(env, "INBOX_SWEEP_AGE_SECONDS", 60),
        sweep_interval_seconds=_float(env, "SWEEP_INTERVAL_SECONDS", 60.0),
        tick_interval_seconds=_float(env, "TICK_INTERVAL_SECONDS", 60.0),
        reconcile_interval_seconds=_float(env, "RECONCILE_INTERVAL_SECONDS", 900.0),
        inbox_retention_days=_int(env, "INBOX_RETENTION_DAYS", 90),
        purge_interval_seconds=_float(env, "PURGE_INTERVAL_SECONDS", 3600.0),
        reconcile_lookback_seconds=_int(env, "RECONCILE_LOOKBACK_SECONDS", 900),
        task_max_retries=_int(env, "TASK_MAX_RETRIES", 8),
        crm_recheck_seconds=_float(env, "CRM_RECHECK_SECONDS", 120.0),
        hold_policy_path=(env.get("HOLD_POLICY") or None),
        provisioning_url=(env.get("PROVISIONING_URL") or None),
        provisioning_auth_header=_header(
            env, "PROVISIONING_AUTH_HEADER", "a header every call to the provisioning API carries"
        ),
        provisioning_max_attempts=max(1, _int(env, "PROVISIONING_MAX_ATTEMPTS", 20)),
        provisioning_backoff_seconds=_float(env, "PROVISIONING_BACKOFF_SECONDS", 2.0),
        provisioning_backoff_max_seconds=_float(env, "PROVISIONING_BACKOFF_MAX_SECONDS", 3600.0),
        provisioning_connect_timeout=_float(env, "PROVISIONING_CONNECT_TIMEOUT", 3.05),
        provisioning_read_timeout=_float(env, "PROVISIONING_READ_TIMEOUT", 10.0),
        provisioning_stuck_seconds=_float(env, "PROVISIONING_STUCK_SECONDS", 30.0),
        provisioning_batch_size=max(1, _int(env, "PROVISIONING_BATCH_SIZE", 50)),
        provisioning_threads=max(1, _int(env, "PROVISIONING_THREADS", 8)),
        provisioning_calls_per_account=max(1, _int(env, "PROVISIONING_CALLS_PER_ACCOUNT", 1)),
        outgoing_backoff_seconds=_float(env, "OUTGOING_BACKOFF_SECONDS", 10.0),
        outgoing_retry_hours=_float(env, "OUTGOING_RETRY_HOURS", 72.0),
        outgoing_allow_http=(env.get("OUTGOING_ALLOW_HTTP", "false").strip().lower() in {"1", "true", "yes"}),
        outgoing_timeout_seconds=max(0.1, _float(env, "OUTGOING_TIMEOUT_SECONDS", 10.0)),
        outgoing_sends_per_subscriber=max(1, _int(env, "OUTGOING_SENDS_PER_SUBSCRIBER", 4)),
        outgoing_threads=max(1, _int(env, "OUTGOING_THREADS", 8)),
        redis_tls_verify=(env.get("REDIS_TLS_VERIFY", "true").strip().lower() not in {"0", "false", "no"}),
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
    )
