"""Access to the composition root from request handlers."""

from __future__ import annotations

from flask import current_app

from bootstrap import Container


def container() -> Container:
    result: Container = current_app.extensions["holdfast"]
    return result
