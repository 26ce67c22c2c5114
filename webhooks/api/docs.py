"""GET /docs: the API's reference in a browser, rendered from /openapi.json by Swagger UI.

flask-smorest renders the page; Swagger UI's files come from the flask-swagger-ui package and are
served here, under /docs/assets/: the page loads nothing from anywhere else (no CDN, and Swagger
UI's online validator is off). Like /openapi.json it needs no token; trying a route out does.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import Blueprint, redirect
from werkzeug.wrappers import Response

ASSETS_URL = "/docs/assets"
SWAGGER_UI_FILES = Path(str(files("flask_swagger_ui") / "dist"))

assets = Blueprint("api_docs_assets", __name__, static_folder=SWAGGER_UI_FILES, static_url_path=ASSETS_URL)


@assets.get("/docs/")
def docs_with_a_slash() -> Response:
    """``/docs/``, as many type it, leads to the page (flask-smorest serves it at /docs only)."""
    return redirect("/docs", 308)


def docs_config() -> dict[str, Any]:
    """flask-smorest's settings for the page at /docs."""
    return {
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": ASSETS_URL + "/",
        "OPENAPI_SWAGGER_UI_CONFIG": {
            "validatorUrl": None,  # else Swagger UI sends the document to validator.swagger.io
            "deepLinking": True,
            "docExpansion": "list",
        },
    }
