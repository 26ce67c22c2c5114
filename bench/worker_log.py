"""A Celery worker's own log, read back: its JSON lines, each with the time it was written, and the
lines that say a task was received or succeeded."""

from __future__ import annotations

import json
import re
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

_TASK = re.compile(r"Task (\S+)\[([0-9a-f-]+)\] (received|succeeded)")


class TaskStep(NamedTuple):
    task: str  # the task's name, e.g. holdfast.inbox.process_event
    task_id: str
    step: str  # "received" or "succeeded"


def log_lines(path: Path, containing: str | None = None) -> list[dict[str, Any]]:
    """The JSON lines of the log that have a timestamp, each given ``at`` (seconds since the epoch); only
    those whose text holds ``containing``, when given (a cheap filter before the JSON is parsed)."""
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if containing is not None and containing not in raw:
            continue
        with suppress(ValueError):
            line = json.loads(raw)
            if isinstance(line, dict) and "timestamp" in line:
                line["at"] = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
                lines.append(line)
    return lines


def task_step(line: dict[str, Any]) -> TaskStep | None:
    """The task a line says was received or succeeded; None for any other line."""
    match = _TASK.match(str(line.get("event", "")))
    return TaskStep(*match.groups()) if match else None
