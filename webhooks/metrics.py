"""GET /metrics: Prometheus' text format, true across every web and worker process.

Counters and the histogram are read from where every process adds to them (adapters.metrics);
gauges are counted in the database at scrape time.
"""

from __future__ import annotations

from flask import Blueprint, Response, g
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from adapters.db.gauges import read_gauges
from adapters.metrics import exposition
from domain.access import Right
from webhooks.api.auth import authenticate_request
from webhooks.context import container
from webhooks.errors import ApiError

bp = Blueprint("metrics", __name__)


def require_scrape_token() -> None:
    """Any valid token may scrape (scrapers send it as a bearer token): every role reads metrics.

    No token, or an unknown or revoked one: 401 with a sentence, as on /api.
    """
    identity = authenticate_request()
    g.identity = identity
    if not identity.may(Right.READ):  # every role has it (PRODUCT.md); kept so a new role cannot slip past
        raise ApiError(403, "forbidden", f"The role {identity.role} does not have the right {Right.READ}.")


@bp.get("/metrics")
def metrics() -> Response:
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
