"""Structured JSON log lines on stdout for every process; context (event id, account id) bound per task."""

from __future__ import annotations

import logging
import sys

import structlog

_configured = False

# What every line carries, whoever wrote it (structlog, the standard library, Celery, gunicorn):
# the context bound to this request or task, the level, the logger's name and the time.
SHARED_PROCESSORS: tuple[structlog.types.Processor, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
)


def json_formatter(*pre_chain: structlog.types.Processor) -> structlog.stdlib.ProcessorFormatter:
    """The one JSON shape of a line (``level``, ``timestamp``, ``event``, ``logger`` and context).

    ``pre_chain`` adds processors for records from the standard library (gunicorn's access
    lines add their fields this way).
    """
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED_PROCESSORS, *pre_chain],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def configure_logging(level: str = "INFO") -> None:
    """Route stdlib and structlog records through one JSON renderer."""
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
