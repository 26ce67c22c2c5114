"""GET /metrics: Prometheus' text format, true across every web and worker process.

Counters and the histogram are read from where every process adds to them (adapters.metrics);
gauges are counted in the database at scrape time.
"""

from __future__ import annotations

from flask import Response, g
from flask_smorest import Blueprint
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from adapters.db.gauges import read_gauges
from adapters.metrics import exposition
from domain.access import Right
from webhooks.api.auth import authenticate_request, requires
from webhooks.api.schemas import ErrorSchema
from webhooks.context import container
from webhooks.errors import ApiError

blp = Blueprint("metrics", __name__, description="Prometheus metrics, for scrapers (any token)")


def require_scrape_token() -> None:
    """Any valid token may scrape (scrapers send it as a bearer token): every role reads metrics.

    No token, or an unknown or revoked one: 401 with a sentence, as on /api.
    """
    identity = authenticate_request()
    g.identity = identity
    if not identity.may(Right.READ):  # every role has it (PRODUCT.md); kept so a new role cannot slip past
        raise ApiError(403, "forbidden", f"The role {identity.role} does not have the right {Right.READ}.")


@blp.route("/metrics", methods=["GET"])
@blp.alt_response(
    200,
    schema={"type": "string"},
    content_type="text/plain",
    description=(
        "Prometheus' text format 0.0.4 (holdfast_webhooks_received_total, holdfast_accounts_on_hold, ...), "
        "counted across every web and worker process."
    ),
    example='# TYPE holdfast_accounts_on_hold gauge\nholdfast_accounts_on_hold{reason="manual"} 1.0\n',
    success=True,
)
@blp.alt_response(503, schema=ErrorSchema, description="The counters cannot be read right now.")
@requires(Right.READ)  # documents the right; require_scrape_token() checks it (this is not an /api blueprint)
def metrics() -> Response:
    """The metrics in Prometheus' text format; any valid token, sent as a bearer token, may scrape."""
    require_scrape_token()
    c = container()
    c.metrics.flush()  # what this process counted, sent before it is read
    try:
        counts = c.counters.read() if c.counters is not None else {}
    except Exception as error:
        raise ApiError(
            503, "metrics_unavailable", f"The counters cannot be read right now ({type(error).__name__}); try again."
        ) from None
    body = exposition(counts, read_gauges(c.engine, c.clock()))
    # The classic text format (0.0.4), which every Prometheus reads; the names need nothing newer.
    return Response(body, status=200, content_type=CONTENT_TYPE_PLAIN_0_0_4)
