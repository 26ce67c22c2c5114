"""Every error leaves as ``{"error": "<code>", "message": "<sentence>"}`` with a 4xx or 5xx status."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

log = structlog.get_logger(__name__)

_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "A valid credential is required."),
    403: ("forbidden", "This credential may not do that."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The body is larger than this endpoint accepts."),
    415: ("unsupported_media_type", "The body must be JSON."),
    422: ("invalid", "The request is not valid."),
    500: ("internal_error", "Something went wrong on our side; nothing was changed."),
    503: ("unavailable", "The service cannot do this right now; try again."),
}


class ApiError(Exception):
    """An error answered as JSON with the given status, code and sentence."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra


def error_response(status: int, error: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


def http_error_response(error: HTTPException, message: str | None = None) -> Response:
    status = error.code or 500
    code, default = _CODES.get(status, ("error", error.description or "The request failed."))
    if status == 413 and message is None:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        default = f"The body is larger than the {limit} bytes this endpoint accepts." if limit else default
    response = error_response(status, code, message or default)
    if status == 405 and error.get_headers():
        for name, value in error.get_headers():
            if name.lower() == "allow":
                response.headers["Allow"] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.error, error.message, **error.extra)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return http_error_response(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled_error")
        return error_response(500, *_CODES[500])
