"""The Flask app factory: webhooks from Stripe, the admin API, health checks, the dashboard."""

from __future__ import annotations

from flask import Flask

from bootstrap import Container, build
from bootstrap.logging import configure_logging
from bootstrap.settings import ConfigurationError, Settings


def create_app(settings: Settings | None = None, container: Container | None = None) -> Flask:
    """Build the web application from settings (read from the environment when not given)."""
    if container is None:
        try:
            container = build(settings)
        except ConfigurationError as error:  # stop with the sentence, not a traceback
            raise SystemExit(f"Holdfast cannot start: {error}") from None
    configure_logging(container.settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = container.settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["holdfast"] = container

    from webhooks import dynamics, health, metrics, stripe
    from webhooks.api import init_api
    from webhooks.cli import register_commands
    from webhooks.dashboard import init_dashboard
    from webhooks.errors import register_error_handlers
    from webhooks.request_ids import init_request_ids

    init_request_ids(app)  # first: every other hook and handler logs with the request's id
    register_error_handlers(app)
    api = init_api(app)
    for blueprint in (stripe.blp, dynamics.blp, health.blp, metrics.blp):  # in /openapi.json too
        api.register_blueprint(blueprint)
    init_dashboard(app, container.settings)
    register_commands(app)
    return app
