"""/api/ops: run now what beat runs periodically."""

from __future__ import annotations

from typing import Any

from adapters.broker import TASK_SWEEP_INBOX
from webhooks.api import Blueprint
from webhooks.api.auth import require_admin_token
from webhooks.api.schemas import QueuedSchema
from webhooks.context import container

blp = Blueprint("ops", __name__, url_prefix="/api/ops", description="Operations")
blp.before_request(require_admin_token)


@blp.route("/sweep", methods=["POST"])
@blp.response(202, QueuedSchema)
def sweep() -> dict[str, Any]:
    """Re-queue inbox events left unprocessed past the configured age."""
    container().celery.send_task(TASK_SWEEP_INBOX)
    return {"queued": True}
