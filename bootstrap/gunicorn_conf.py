"""Production web server settings (Heroku-like: bind $PORT, workers from WEB_CONCURRENCY)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
access_log_format = '{"message": "request", "method": "%(m)s", "path": "%(U)s", "status": %(s)s, "duration_ms": %(M)s}'
errorlog = "-"
forwarded_allow_ips = "*"


def on_starting(server: object) -> None:
    """Check the whole configuration in the master, before any worker is forked.

    A worker that cannot start exits, and gunicorn starts another, for ever: a wrong setting or
    policy file would be a restart loop. Checked here, it stops ``web`` once, with the sentence.
    """
    import sys

    from bootstrap import build
    from bootstrap.settings import ConfigurationError

    try:
        build().engine.dispose()
    except ConfigurationError as error:
        print(f"Holdfast cannot start: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
