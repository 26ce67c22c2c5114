"""Sign-in attempts limited per client address, so that guessing tokens at /login is slow.

Only ``POST /login`` is limited, and only the attempts that do not sign in count (a person who
signs in often is never refused): SIGNIN_RATE_LIMIT of them, 10 per minute by default, per
address; the next one gets 429 with a sentence until the window has moved on. The counts live in
Redis when the app has one (every web process and dyno shares them), else in this process's
memory; if Redis cannot be reached, each process counts in memory meanwhile and sign-ins go on.

The client's address is the connection's, or with FORWARDED_FOR_HOPS set the one that many
proxies in front (Heroku's router: 1) wrote in X-Forwarded-For (werkzeug's ProxyFix, in
``init_dashboard``): without that, behind a router every person would share the router's address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import limits
import structlog
from flask import Flask, Response, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from bootstrap.settings import Settings

log = structlog.get_logger(__name__)

EXTENSION = "holdfast_signin_limiter"
REDIS_KEY_PREFIX = "holdfast:signin"
REDIS_TIMEOUT = 0.5  # seconds: a slow Redis must not hold a sign-in up for long
SIGN_IN_VIEW = "dashboard.login"


def too_many_sentence(rate_limit: str) -> str:
    """What a refused person reads: when to try again, as the longest window of the limit says."""
    longest = max(rate.get_expiry() for rate in limits.parse_many(rate_limit))
    when = "in a minute" if longest <= 60 else "later"
    return f"Too many sign-in attempts from this address; try again {when}."


def _storage(settings: Settings) -> tuple[str, dict[str, Any]]:
    if settings.broker_is_filesystem:
        return "memory://", {}
    options: dict[str, Any] = {
        "key_prefix": REDIS_KEY_PREFIX,
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_TIMEOUT,
    }
    if settings.broker_url.startswith("rediss://") and not settings.redis_tls_verify:
        options["ssl_cert_reqs"] = "none"
    return settings.broker_url, options


def _did_not_sign_in(response: Response) -> bool:
    return response.status_code != 303  # a sign-in answers 303 to the page asked for


def _refused(limit: RequestLimit) -> None:
    log.warning("dashboard_sign_in_rate_limited", remote_addr=request.remote_addr, limit=str(limit.limit))


def limit_sign_ins(app: Flask, settings: Settings) -> Limiter:
    """Limit failed ``POST /login`` per address on this app (its own limiter: nothing else is limited)."""
    uri, options = _storage(settings)
    limiter = Limiter(
        get_remote_address,
        storage_uri=uri,
        storage_options=options,
        strategy="moving-window",
        headers_enabled=True,  # Retry-After on a 429
        retry_after="delta-seconds",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        on_breach=_refused,
    )
    limiter.init_app(app)
    sign_in: Callable[..., Any] = app.view_functions[SIGN_IN_VIEW]
    app.view_functions[SIGN_IN_VIEW] = limiter.limit(
        settings.signin_rate_limit,
        methods=["POST"],
        deduct_when=_did_not_sign_in,
        error_message=too_many_sentence(settings.signin_rate_limit),
    )(sign_in)
    app.extensions[EXTENSION] = limiter
    return limiter
