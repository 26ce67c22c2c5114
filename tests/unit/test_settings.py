"""Configuration from the environment: Heroku's URL forms, required secrets refused with a sentence."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from bootstrap.celery_app import celery_config, create_celery
from bootstrap.settings import ConfigurationError, load_settings

BASE = {
    "STRIPE_WEBHOOK_SECRET": "whsec_a, whsec_b",
    "ADMIN_API_TOKEN": "x" * 24,
    "HOLDFAST_INSTANCE_DIR": "/tmp/hf-unit",
}


def test_herokus_postgres_url_form_is_accepted() -> None:
    settings = load_settings({**BASE, "DATABASE_URL": "postgres://u:p@db.example:5432/name"})
    assert settings.database_url == "postgresql+psycopg://u:p@db.example:5432/name"
    assert not settings.embedded


def test_no_database_or_redis_means_the_embedded_default() -> None:
    settings = load_settings(BASE)
    assert settings.embedded
    assert settings.database_url == "sqlite:////tmp/hf-unit/holdfast.sqlite3"
    assert settings.broker_url == "filesystem://localhost/"


def test_a_connection_to_the_embedded_broker_names_its_host_so_kombu_has_nothing_to_warn_about(
    tmp_path: Path,
) -> None:
    """kombu warned "No hostname was supplied. Reverting to default 'localhost'" at every connection."""
    celery = create_celery(load_settings({**BASE, "HOLDFAST_INSTANCE_DIR": str(tmp_path)}))
    warned: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
    kombu = logging.getLogger("kombu")
    kombu.addHandler(handler)
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            assert dict(connection.info())["hostname"] == "localhost"
    finally:
        kombu.removeHandler(handler)
    assert warned == []


def test_webhook_secrets_are_split_for_rotation() -> None:
    assert load_settings(BASE).stripe_webhook_secrets == ("whsec_a", "whsec_b")


def test_a_rediss_url_gets_tls_verified_unless_told_otherwise() -> None:
    verified = celery_config(load_settings({**BASE, "REDIS_URL": "rediss://:pw@redis.example:6380"}))
    assert verified["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    lenient = celery_config(load_settings({**BASE, "REDIS_URL": "rediss://r:6380", "REDIS_TLS_VERIFY": "false"}))
    assert lenient["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_NONE}
    plain = celery_config(load_settings({**BASE, "REDIS_URL": "redis://r:6379"}))
    assert "broker_use_ssl" not in plain


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"ADMIN_API_TOKEN": "x" * 24}, "STRIPE_WEBHOOK_SECRET is not set"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_a"}, "ADMIN_API_TOKEN is not set or shorter than 16 characters"),
        ({**BASE, "ADMIN_API_TOKEN": "short"}, "ADMIN_API_TOKEN is not set or shorter than 16 characters"),
        ({**BASE, "REDIS_URL": "amqp://guest@localhost"}, "REDIS_URL must start with redis:// or rediss://"),
        ({**BASE, "PROVISIONING_MAX_ATTEMPTS": "many"}, "PROVISIONING_MAX_ATTEMPTS must be a whole number"),
        ({**BASE, "DATABASE_CONNECT_TIMEOUT": "2.5"}, "DATABASE_CONNECT_TIMEOUT must be a whole number"),
        ({**BASE, "DATABASE_STATEMENT_TIMEOUT": "-1"}, "DATABASE_STATEMENT_TIMEOUT must not be negative"),
        ({**BASE, "SESSION_SECRET": "short"}, "SESSION_SECRET is shorter than 16 characters"),
        ({**BASE, "SIGNIN_RATE_LIMIT": "lots"}, "SIGNIN_RATE_LIMIT must be a rate like '10 per minute'"),
        ({**BASE, "SIGNIN_RATE_LIMIT": "0 per minute"}, "SIGNIN_RATE_LIMIT must be a rate like '10 per minute'"),
        ({**BASE, "FORWARDED_FOR_HOPS": "-1"}, "FORWARDED_FOR_HOPS must not be negative"),
    ],
)
def test_a_configuration_that_cannot_start_is_refused_with_a_sentence(env: dict[str, str], sentence: str) -> None:
    with pytest.raises(ConfigurationError, match=sentence):
        load_settings(env)


def test_secrets_do_not_appear_in_the_settings_repr() -> None:
    settings = load_settings({**BASE, "SESSION_SECRET": "s" * 32})
    assert "x" * 24 not in repr(settings) and "whsec_a" not in repr(settings) and "s" * 32 not in repr(settings)


def test_sign_ins_are_limited_to_10_failures_a_minute_and_x_forwarded_for_untrusted_unless_told() -> None:
    defaults = load_settings(BASE)
    assert (defaults.signin_rate_limit, defaults.forwarded_for_hops) == ("10 per minute", 0)
    changed = load_settings({**BASE, "SIGNIN_RATE_LIMIT": "5/minute;20/hour", "FORWARDED_FOR_HOPS": "1"})
    assert (changed.signin_rate_limit, changed.forwarded_for_hops) == ("5/minute;20/hour", 1)


def test_the_session_secret_is_optional_and_read_when_set() -> None:
    assert load_settings(BASE).session_secret is None
    assert load_settings({**BASE, "SESSION_SECRET": " " + "s" * 32 + " "}).session_secret == "s" * 32


def test_database_timeouts_default_to_5_and_30_seconds_and_can_be_changed() -> None:
    defaults = load_settings(BASE)
    assert (defaults.database_connect_timeout, defaults.database_statement_timeout) == (5, 30.0)
    changed = load_settings({**BASE, "DATABASE_CONNECT_TIMEOUT": "10", "DATABASE_STATEMENT_TIMEOUT": "2.5"})
    assert (changed.database_connect_timeout, changed.database_statement_timeout) == (10, 2.5)
