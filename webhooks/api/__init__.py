"""The admin API: bearer-token routes, marshmallow schemas, OpenAPI at /openapi.json."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, request
from flask_smorest import Api
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from webhooks.api.schemas import ErrorSchema
from webhooks.context import container
from webhooks.errors import ApiError, error_response, http_error_response


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        raise ApiError(400, "malformed_json", "The body is not valid JSON.")


class HoldfastApi(Api):  # type: ignore[misc]
    ARGUMENTS_PARSER = _Parser()
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if error.code in (400, 422) and messages:
            return error_response(400, "validation_error", _validation_sentence(messages))
        return http_error_response(error)


def _validation_sentence(messages: Any) -> str:
    """webargs' nested messages ({"json": {"field": ["msg"]}}) as one sentence."""
    parts: list[str] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path if key in ("json", "query", "view_args", "_schema") else [*path, str(key)])
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            text = str(node).rstrip(".")
            parts.append(f"{'.'.join(path)}: {text}" if path else text)

    walk(messages, [])
    return "; ".join(parts) + "." if parts else "The request is not valid."


def require_admin_token() -> None:
    """Every /api route needs ``Authorization: Bearer <ADMIN_API_TOKEN>``, compared in constant time."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = container().settings.admin_api_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <ADMIN_API_TOKEN> to use the admin API.")


def init_api(app: Flask) -> HoldfastApi:
    app.config.update(
        API_TITLE="Holdfast",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = HoldfastApi(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    from webhooks.api import accounts, events, ops

    for blueprint in (accounts.blp, events.blp, ops.blp):
        blueprint.before_request(require_admin_token)
        api.register_blueprint(blueprint)
    return api
