"""The dashboard for people: server-rendered pages over the same services the admin API calls.

Signed in with a token at /login (a session cookie follows), CSRF on every form, security
headers on every page (views.py). A page is a view of the services; no business rule lives here.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bootstrap.settings import Settings
from webhooks.dashboard import subscriptions as _subscriptions  # noqa: F401  (its pages, on bp)
from webhooks.dashboard.signin_limit import limit_sign_ins
from webhooks.dashboard.views import bp

SESSION_LIFETIME = timedelta(hours=8)
csrf = CSRFProtect()


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` when the request came over HTTPS (ProxyFix reads X-Forwarded-Proto)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def session_key(settings: Settings) -> bytes:
    """What signs the session cookie (and the forms' CSRF tokens): SESSION_SECRET when it is set.

    Without it, a key derived from ADMIN_API_TOKEN, as before SESSION_SECRET existed, so an older
    deployment keeps its sessions; then rotating the admin token signs everyone out.
    """
    if settings.session_secret is not None:
        return settings.session_secret.encode()
    return hmac.new(settings.admin_api_token.encode(), b"holdfast dashboard session", hashlib.sha256).digest()


def init_dashboard(app: Flask, settings: Settings) -> None:
    """Register the dashboard: blueprint, session cookie, CSRF, the proxy's headers, sign-ins limited per address."""
    # The scheme from X-Forwarded-Proto; the client's address from X-Forwarded-For only when told how many
    # proxies in front append to it (FORWARDED_FOR_HOPS; 0: the connection's, which no client can forge).
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.forwarded_for_hops, x_proto=1)  # type: ignore[method-assign]
    app.secret_key = session_key(settings)
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="holdfast_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # the dashboard checks its own forms: /api and /webhooks are exempt
        WTF_CSRF_TIME_LIMIT=None,  # a form's token lives as long as the session
    )
    csrf.init_app(app)
    app.register_blueprint(bp)
    limit_sign_ins(app, settings)
