"""Production web server settings (Heroku-like: bind $PORT, workers from WEB_CONCURRENCY)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

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
errorlog = "-"
# Both logs in the app's JSON shape (level, timestamp, event); an access line is the event
# "request" with method, path, status, duration_ms and request_id.
logger_class = "bootstrap.gunicorn_logging.JsonLogger"
forwarded_allow_ips = "*"
# gunicorn 25.1+ opens a control socket (for gunicornc) under $XDG_RUNTIME_DIR or ~/.gunicorn:
# a file outside the project that nothing here uses, and two instances on one machine share it.
control_socket_disable = True


def on_starting(server: Arbiter) -> None:
    """Check the whole configuration in the master, before any worker is forked.

    A worker that cannot start exits, and gunicorn starts another, for ever: a wrong setting or
    policy file would be a restart loop. Checked here, it stops ``web`` once, with the sentence.
    """
    _stop_unless_configured(exit_code=1)


def post_fork(server: Arbiter, worker: Worker) -> None:
    """Check it again in each worker, before it builds the app, and halt gunicorn if it fails.

    Workers are also started long after the master: at a reload (``kill -HUP``), and to replace
    one that died, timed out or served ``max_requests``. If the configuration went wrong since
    (a policy file edited), such a worker would exit with code 1 and gunicorn start another, for
    ever; WORKER_BOOT_ERROR is the code on which gunicorn's master stops instead.
    """
    _stop_unless_configured(exit_code=server.WORKER_BOOT_ERROR)


def _stop_unless_configured(exit_code: int) -> None:
    """Exit with ``exit_code`` and the sentence if bootstrap cannot build a process from this configuration."""
    from bootstrap import build
    from bootstrap.settings import ConfigurationError

    try:
        build().engine.dispose()  # about a millisecond: building opens no connection
    except ConfigurationError as error:
        print(f"Holdfast cannot start: {error}", file=sys.stderr, flush=True)
        sys.exit(exit_code)
