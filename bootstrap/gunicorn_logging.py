"""gunicorn's own lines (its error log and the access log) in the JSON shape of Holdfast's."""

from __future__ import annotations

import datetime
from typing import Any

import structlog
from gunicorn.glogging import Logger

from bootstrap.logging import json_formatter

# The fields of an access line. The query string is left out: the Dynamics webhook's key is in it.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "request_id")


class JsonLogger(Logger):  # type: ignore[misc]
    """``logger_class`` of gunicorn: each line one JSON object with ``level``, ``timestamp`` and ``event``.

    The error log keeps gunicorn's sentences as the event ("Booting worker with pid: 12"); an
    access line is the event ``request`` with ``method``, ``path``, ``status``, ``duration_ms``
    and the ``request_id`` the app answered with.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = json_formatter(structlog.stdlib.ExtraAdder(allow=ACCESS_FIELDS))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta) -> None:
        if not self.access_log_enabled:
            return
        fields = {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": _status_code(resp.status),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": _header(resp.headers, "x-request-id"),
        }
        self.access_log.info("request", extra=fields)


def _status_code(status: Any) -> int | str:
    """``200`` from ``"200 OK"`` (gunicorn keeps the status line), or the status as it came."""
    head = str(status).split(None, 1)[0] if status is not None else ""
    return int(head) if head.isdigit() else str(status)


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if str(key).lower() == name:
            return str(value)
    return None
