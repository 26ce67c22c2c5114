"""Every request has an id: the caller's ``X-Request-ID`` when it is a sane token, else a new one.

The id is bound to structlog's context for the request, so every line logged while it is handled
carries ``request_id`` (lines from the standard library's loggers too), and it goes back in the
response's ``X-Request-ID`` header, where gunicorn's access line reads it.
"""

from __future__ import annotations

import re
import uuid

import structlog
from flask import Flask, Response, g, request

HEADER = "X-Request-ID"
# What a router or a client sends (Heroku's router: 20 to 200 of [A-Za-z0-9+=/-]; UUIDs): a
# token with no spaces, quotes or control characters, so it cannot break a log line.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,199}")


def request_id_for(given: str | None) -> str:
    """The caller's id when it is a sane token, otherwise a new one."""
    if given is not None and _SANE.fullmatch(given):
        return given
    return str(uuid.uuid4())


def init_request_ids(app: Flask) -> None:
    """Bind each request's id for its log lines and answer it; register before any other hook."""

    @app.before_request
    def _bind_request_id() -> None:
        structlog.contextvars.clear_contextvars()  # a thread serves many requests: nothing carries over
        g.request_id = request_id_for(request.headers.get(HEADER))
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _answer_request_id(response: Response) -> Response:
        response.headers[HEADER] = g.get("request_id") or request_id_for(None)
        return response

    @app.teardown_request
    def _unbind_request_id(_error: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()
