"""Liveness, readiness against the real database and broker, the OpenAPI document and its page at /docs."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from typing import Any

from bootstrap.celery_app import create_celery
from webhooks import create_app


def test_liveness_answers_without_credentials(client: Any) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readiness_checks_the_database_and_the_broker(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readiness_fails_when_the_broker_is_unreachable(container: Any) -> None:
    dead = create_celery(dataclasses.replace(container.settings, broker_url="redis://127.0.0.1:1/0"))
    app = create_app(container=dataclasses.replace(container, celery=dead))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "broker": "unreachable"}


def test_the_openapi_document_describes_the_api_from_its_schemas(client: Any) -> None:
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/accounts/{account_id}",
        "/api/accounts",
        "/api/accounts/{account_id}/holds",
        "/api/accounts/{account_id}/holds/manual",
        "/api/accounts/{account_id}/timeline",
        "/api/accounts/{account_id}/orders",
        "/api/provisioning",
        "/api/provisioning/{request_id}",
        "/api/provisioning/{request_id}/retry",
        "/api/ops/sweep",
    ):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert {"Account", "Hold", "ProvisioningRequest", "Error"} <= set(schemas)
    assert set(schemas["Account"]["properties"]) >= {
        "account_id",
        "name",
        "stripe_customer_id",
        "currency",
        "credit_limit",
        "exposure",
        "on_hold",
        "blocks_changes",
        "parks_provisioning",
        "holds",
        "enforcement_paused_until",
        "awaiting",
    }
    bearer = spec["components"]["securitySchemes"]["bearer"]
    assert {k: v for k, v in bearer.items() if k != "description"} == {"type": "http", "scheme": "bearer"}
    assert "/api/tokens" in bearer["description"] and "403" in bearer["description"]
    hold = spec["paths"]["/api/accounts/{account_id}/holds"]["post"]
    assert (hold["x-required-right"], hold["x-roles"]) == ("manage_holds", ["finance", "admin"])
    assert {"401", "403"} <= set(hold["responses"])


def test_the_webhooks_health_checks_and_metrics_are_in_the_openapi_document_with_their_answers(client: Any) -> None:
    spec = client.get("/openapi.json").json
    answers = {
        ("post", "/webhooks/stripe"): {"200", "400", "413", "503"},
        ("post", "/webhooks/dynamics"): {"200", "400", "401", "413", "503"},
        ("get", "/healthz"): {"200"},
        ("get", "/readyz"): {"200", "503"},
    }
    for (method, path), statuses in answers.items():
        operation = spec["paths"][path][method]
        assert statuses <= set(operation["responses"]), path
        assert operation["security"] != [{"bearer": []}], f"{path} needs no admin token"
    schemas = spec["components"]["schemas"]
    received = spec["paths"]["/webhooks/stripe"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert received == {"$ref": "#/components/schemas/Received"}
    assert set(schemas["Received"]["required"]) == {"received", "duplicate"}
    stripe_post = spec["paths"]["/webhooks/stripe"]["post"]
    assert stripe_post["security"] == [] and stripe_post["parameters"][0]["name"] == "Stripe-Signature"
    assert spec["paths"]["/webhooks/dynamics"]["post"]["security"] == [{"dynamics_webhook_key": []}]
    assert spec["components"]["securitySchemes"]["dynamics_webhook_key"]["in"] == "query"
    assert set(schemas["Readiness"]["properties"]) == {"status", "checks"}
    scrape = spec["paths"]["/metrics"]["get"]
    assert {"200", "401", "403", "503"} <= set(scrape["responses"])
    assert list(scrape["responses"]["200"]["content"]) == ["text/plain"]
    assert scrape.get("security", spec["security"]) == [{"bearer": []}], "scrapers send a token as a bearer token"
    assert scrape["x-roles"] == ["viewer", "sales", "finance", "ops", "admin"]


def test_the_account_list_documents_its_reason_filter(client: Any) -> None:
    operation = client.get("/openapi.json").json["paths"]["/api/accounts"]["get"]
    reason = next(p for p in operation["parameters"] if p["name"] == "reason")
    assert reason["in"] == "query" and reason["schema"]["enum"] == ["credit_review", "non_payment", "dispute", "manual"]
    assert "400" in operation["responses"]


class _Links(HTMLParser):
    """Every address a page makes the browser load (src, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_renders_the_openapi_document_in_a_browser_from_the_apps_own_files_without_a_token(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "//" not in html.replace("://", "")
    links = _Links()
    links.feed(html)
    assert links.urls, "the page loads Swagger UI's files"
    for url in links.urls:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.mimetype in ("text/css", "text/javascript", "application/javascript"), (url, asset.mimetype)
        assert len(asset.data) > 1000, url
    assert {url.rsplit("/", 1)[1] for url in links.urls} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    assert 'url: "/openapi.json"' in html  # the document the page renders, from this app
    assert '"validatorUrl": null' in html  # Swagger UI's online validator would send the document away
    assert client.get("/docs/assets/../../webhooks/__init__.py").status_code == 404


def test_docs_with_a_trailing_slash_leads_to_the_page(client: Any) -> None:
    """``/docs/`` is how many people type it: it leads to /docs instead of a 404."""
    answer = client.get("/docs/")
    assert answer.status_code == 308 and answer.headers["Location"] == "/docs"
    assert client.get("/docs/", follow_redirects=True).status_code == 200
