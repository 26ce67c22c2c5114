"""Configuration read once from the environment (twelve-factor).

Everything the processes need is named here; nothing else reads ``os.environ``.
With neither ``DATABASE_URL`` nor ``REDIS_URL`` set, Holdfast runs on its embedded
default: a SQLite file and a filesystem broker under ``instance/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_DIR = PROJECT_ROOT / "instance"


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
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    stripe_signature_tolerance_seconds: int = 300
    max_body_bytes: int = 1024 * 1024
    inbox_sweep_age_seconds: int = 60
    sweep_interval_seconds: float = 60.0
    task_max_retries: int = 8
    hold_policy_path: str | None = None
    provisioning_url: str | None = None
    provisioning_max_attempts: int = 8
    provisioning_backoff_seconds: float = 2.0
    provisioning_connect_timeout: float = 3.05
    provisioning_read_timeout: float = 10.0
    provisioning_stuck_seconds: float = 120.0
    provisioning_batch_size: int = 50
    provisioning_threads: int = 8
    redis_tls_verify: bool = True
    log_level: str = "INFO"

    @property
    def broker_is_filesystem(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.instance_dir / "broker"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the configuration; raise ConfigurationError with a sentence if it is wrong."""
    env = os.environ if env is None else env
    instance_dir = Path(env.get("HOLDFAST_INSTANCE_DIR") or DEFAULT_INSTANCE_DIR)

    raw_db = env.get("DATABASE_URL", "").strip()
    raw_redis = env.get("REDIS_URL", "").strip()
    embedded = not raw_db and not raw_redis
    database_url = database_url_for_sqlalchemy(raw_db) if raw_db else f"sqlite:///{instance_dir / 'holdfast.sqlite3'}"
    broker_url = raw_redis or "filesystem://"
    if not (broker_url.startswith(("redis://", "rediss://")) or broker_url == "filesystem://"):
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

    return Settings(
        database_url=database_url,
        broker_url=broker_url,
        embedded=embedded,
        instance_dir=instance_dir,
        stripe_webhook_secrets=secrets,
        admin_api_token=admin_token,
        stripe_api_key=(env.get("STRIPE_API_KEY") or None),
        stripe_api_base=(env.get("STRIPE_API_BASE") or None),
        max_body_bytes=_int(env, "MAX_WEBHOOK_BYTES", 1024 * 1024),
        inbox_sweep_age_seconds=_int(env, "INBOX_SWEEP_AGE_SECONDS", 60),
        sweep_interval_seconds=_float(env, "SWEEP_INTERVAL_SECONDS", 60.0),
        task_max_retries=_int(env, "TASK_MAX_RETRIES", 8),
        hold_policy_path=(env.get("HOLD_POLICY") or None),
        provisioning_url=(env.get("PROVISIONING_URL") or None),
        provisioning_max_attempts=max(1, _int(env, "PROVISIONING_MAX_ATTEMPTS", 8)),
        provisioning_backoff_seconds=_float(env, "PROVISIONING_BACKOFF_SECONDS", 2.0),
        provisioning_connect_timeout=_float(env, "PROVISIONING_CONNECT_TIMEOUT", 3.05),
        provisioning_read_timeout=_float(env, "PROVISIONING_READ_TIMEOUT", 10.0),
        provisioning_stuck_seconds=_float(env, "PROVISIONING_STUCK_SECONDS", 120.0),
        provisioning_batch_size=max(1, _int(env, "PROVISIONING_BATCH_SIZE", 50)),
        provisioning_threads=max(1, _int(env, "PROVISIONING_THREADS", 8)),
        redis_tls_verify=(env.get("REDIS_TLS_VERIFY", "true").strip().lower() not in {"0", "false", "no"}),
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
    )
