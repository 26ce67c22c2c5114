"""The admin API: bearer-token routes, marshmallow schemas, OpenAPI at /openapi.json, its reference at /docs."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import flask_smorest
from flask import Flask, current_app, request
from flask_smorest import Api
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import PathConverter

from webhooks.api.docs import assets as docs_assets
from webhooks.api.docs import docs_config
from webhooks.api.schemas import ErrorSchema, Money
from webhooks.errors import ApiError, error_response, http_error_response

# The longest JSON number any field takes, in characters: money needs at most 20. A longer one
# is refused before Python converts it (an int of over 4,300 digits raises instead of parsing).
MAX_NUMBER_LENGTH = 100


class _NumberTooLong(ValueError):
    def __init__(self, length: int) -> None:
        super().__init__(
            f"A number in the body is {length:,} characters long; "
            f"no field takes a number longer than {MAX_NUMBER_LENGTH}."
        )


def _bounded(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_LENGTH:
            raise _NumberTooLong(len(text))
        return convert(text)

    return parse


def parse_json_body(raw: bytes) -> Any:
    """A JSON body with its numbers bounded, and fractions as exact Decimals (money is never a float)."""
    text = raw.decode("utf-8")  # UnicodeDecodeError: webargs answers it as invalid JSON
    return json.loads(text, parse_int=_bounded(int), parse_float=_bounded(Decimal))


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    # None everywhere: each schema's own Meta.unknown decides (StrictSchema refuses unknown
    # query parameters and body fields instead of silently dropping them).
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {}

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            if req.get_data(cache=True):  # a body the route would otherwise silently ignore
                raise ApiError(
                    415, "unsupported_media_type", "The body must be JSON, sent with Content-Type: application/json."
                )
            return core.missing
        try:
            return parse_json_body(req.get_data(cache=True))
        except RecursionError:
            raise ApiError(400, "malformed_json", "The body is not valid JSON: it is nested too deeply.") from None
        except _NumberTooLong as error:
            raise ApiError(400, "validation_error", str(error)) from None

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        raise ApiError(400, "malformed_json", "The body is not valid JSON.")


class IdWithSlashesConverter(PathConverter):
    """``<id_with_slashes:...>``: an id that may contain "/" (a Dynamics inbox key), raw or sent as %2F.

    Like werkzeug's ``path``, but matching every character, newlines included, so that the view
    refuses an id with control characters with a sentence instead of the router answering 404.
    """

    regex = r"[^/][\s\S]*?"


def refuse_oversized_body() -> None:
    """413 for a body over the limit even on routes that never read their body (sweep, replay)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """The admin API's blueprints: every route is authorized, and its arguments parsed by Holdfast's parser.

    Each view declares the right it needs with ``@requires`` (webhooks/api/auth.py); one without is refused.

        flask-smorest reads ``ARGUMENTS_PARSER`` from the blueprint when ``@blp.arguments`` runs.
    """

    ARGUMENTS_PARSER = _Parser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from webhooks.api.auth import authorize

        self.before_request(refuse_oversized_body)
        self.before_request(authorize)  # before the view, so before any body is parsed


class HoldfastApi(Api):  # type: ignore[misc]
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


def _money_property(_converter: Any, field: Any, **_: Any) -> dict[str, Any]:
    return dict(Money.OPENAPI) if isinstance(field, Money) else {}


def init_api(app: Flask) -> HoldfastApi:
    app.config.update(
        API_TITLE="Holdfast",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"security": [{"bearer": []}]},
        **docs_config(),
    )
    app.url_map.converters["id_with_slashes"] = IdWithSlashesConverter
    app.register_blueprint(docs_assets)
    api = HoldfastApi(app)
    api.register_converter(
        IdWithSlashesConverter,
        lambda _: {"type": "string", "minLength": 1, "description": 'May contain "/", sent percent-encoded (%2F).'},
    )
    api.spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A token made with POST /api/tokens (or `tokens create`), or ADMIN_API_TOKEN (the admin named "
                '"admin"). Its role decides what it may do: each operation names the right it needs '
                "(x-required-right) and the roles that have it (x-roles). No token, or an unknown or revoked "
                "one: 401; a role without the right: 403."
            ),
        },
    )
    api.spec.components.security_scheme(
        "dynamics_webhook_key",
        {
            "type": "apiKey",
            "in": "query",
            "name": "code",
            "description": "DYNAMICS_WEBHOOK_KEY (Dataverse's WebhookKey)",
        },
    )
    api.register_field(Money, None, None)  # no type of its own: Money.OPENAPI says what it is
    api.ma_plugin.converter.add_attribute_function(_money_property)
    from webhooks.api import accounts, events, ops, policy, provisioning, subscriptions, tokens

    for blueprint in (accounts.blp, events.blp, ops.blp, policy.blp, provisioning.blp, tokens.blp, subscriptions.blp):
        api.register_blueprint(blueprint)
    return api
