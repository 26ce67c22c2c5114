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

from webhooks.dashboard.views import bp

SESSION_LIFETIME = timedelta(hours=8)
csrf = CSRFProtect()


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` when the request came over HTTPS (ProxyFix reads X-Forwarded-Proto)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def _session_key(admin_api_token: str) -> bytes:
    # Derived from the admin token, so a deployment needs no new secret; rotating the token signs everyone out.
    return hmac.new(admin_api_token.encode(), b"holdfast dashboard session", hashlib.sha256).digest()


def init_dashboard(app: Flask, admin_api_token: str) -> None:
    """Register the dashboard: its blueprint, the session cookie, CSRF on its forms, the proxy's scheme."""
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1)  # type: ignore[method-assign]
    app.secret_key = _session_key(admin_api_token)
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
