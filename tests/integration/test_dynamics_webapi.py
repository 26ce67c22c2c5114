"""The Dynamics Web API client against real local HTTPS servers: an authority and a CRM.

Two servers, signed by the test CA: ``login`` plays Entra ID (the tenant's OpenID
configuration and its token endpoint), ``crm`` plays the Dynamics Web API. Every test runs
with the network closed: any connection to a host other than the loopback fails the test.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import msal
import pytest

from adapters.dynamics_webapi import DynamicsWebApi, WebApiError, WebApiSettings
from adapters.retry_after import parse_retry_after
from bootstrap import make_dynamics_api
from bootstrap.settings import ConfigurationError, load_settings
from tests.https_server import HttpsServer, Recorded, Reply, closed_port, local_ca, serve_tenant, token_reply

TENANT = "3f1c2b4a-0d6e-4c1b-9a8e-2f5d7c9b1e00"
CLIENT_ID = "a6b9c8d7-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
CLIENT_SECRET = "holdfast-test-secret-do-not-log"
ACCOUNT = "6a8e2b1c-4d3f-4e5a-9b7c-0d1e2f3a4b5c"
ACCOUNT_PATH = f"/api/data/v9.2/accounts({ACCOUNT})"
ACCOUNTS = re.compile(r"/api/data/v9\.2/accounts\(.+\)")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


# --------------------------------------------------------------------------- the network is closed


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and record) every name lookup or connection to a host other than the loopback."""
    foreign: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            foreign.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"the network is closed in this test ({name})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            foreign.append(str(host))
            raise OSError(f"the network is closed in this test ({host})")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield foreign
    assert foreign == [], f"something tried to reach {foreign}"


@pytest.fixture(autouse=True)
def trust_the_test_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(local_ca().ca_path))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)
    monkeypatch.delenv("REGION_NAME", raising=False)


# --------------------------------------------------------------------------- the servers


class Tokens:
    """The token endpoint's behaviour: numbered tokens, or a scripted answer."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.expires_in = 3599
        self.answer: Reply | None = None

    def __call__(self, request: Recorded) -> Reply:
        if self.answer is not None:
            return self.answer
        return token_reply(f"token-{next(self.counter)}", self.expires_in)


@pytest.fixture
def login() -> Iterator[HttpsServer]:
    with HttpsServer() as server:
        yield server


@pytest.fixture
def tokens(login: HttpsServer) -> Tokens:
    tokens = Tokens()
    serve_tenant(login, TENANT, tokens)
    return tokens


@pytest.fixture
def crm() -> Iterator[HttpsServer]:
    with HttpsServer() as server:
        server.route("PATCH", ACCOUNTS, Reply(204))
        yield server


def settings_for(crm: HttpsServer, login: HttpsServer, **overrides: Any) -> WebApiSettings:
    values: dict[str, Any] = {
        "api_url": crm.url,
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authority_url": login.url,
        "timeout": (2.0, 2.0),
        **overrides,
    }
    return WebApiSettings(**values)


@pytest.fixture
def api(crm: HttpsServer, login: HttpsServer, tokens: Tokens) -> Iterator[DynamicsWebApi]:
    client = DynamicsWebApi(settings_for(crm, login))
    yield client
    client.close()


def token_requests(login: HttpsServer) -> list[Recorded]:
    return login.received("POST", f"/{TENANT}/oauth2/v2.0/token")


def patches(crm: HttpsServer) -> list[Recorded]:
    return crm.received("PATCH", ACCOUNTS)


# --------------------------------------------------------------------------- the PATCH


def test_the_patch_carries_the_url_body_odata_headers_and_the_bearer_token_from_client_credentials(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status, outcome.retry_after_seconds) == ("written", 204, None)
    assert ACCOUNT in outcome.message
    [patch] = patches(crm)
    assert patch.path == ACCOUNT_PATH
    assert patch.json() == {"creditonhold": True}
    assert patch.header("Authorization") == "Bearer token-1"
    assert patch.header("Content-Type") == "application/json"
    assert patch.header("Accept") == "application/json"
    assert patch.header("OData-MaxVersion") == "4.0"
    assert patch.header("OData-Version") == "4.0"
    assert patch.header("If-Match") == "*"

    [token_request] = token_requests(login)
    form = token_request.form()
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == CLIENT_ID
    assert form["client_secret"] == CLIENT_SECRET
    assert form["scope"] == f"{crm.url}/.default"


def test_releasing_the_hold_sends_creditonhold_false(api: DynamicsWebApi, crm: HttpsServer) -> None:
    assert api.set_credit_on_hold(ACCOUNT.upper(), False).outcome == "written"

    [patch] = patches(crm)
    assert patch.path == ACCOUNT_PATH  # the GUID as the Web API writes it
    assert patch.json() == {"creditonhold": False}


def test_an_account_id_that_is_not_a_guid_fails_without_a_request(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    outcome = api.set_credit_on_hold("acme)/contacts(1", True)

    assert outcome.outcome == "failed"
    assert "not a CRM account id" in outcome.message
    assert crm.requests == [] and login.requests == []


# --------------------------------------------------------------------------- the token


def test_the_token_is_fetched_once_for_several_patches(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    for on_hold in (True, False, True, False):
        assert api.set_credit_on_hold(ACCOUNT, on_hold).outcome == "written"

    assert len(token_requests(login)) == 1
    assert {p.header("Authorization") for p in patches(crm)} == {"Bearer token-1"}
    # ...and the OpenID configuration was read once, too
    assert len(login.received("GET")) == 1


def test_the_token_is_fetched_again_once_it_expires(crm: HttpsServer, login: HttpsServer, tokens: Tokens) -> None:
    cache = msal.SerializableTokenCache()
    api = DynamicsWebApi(settings_for(crm, login), token_cache=cache)
    api.set_credit_on_hold(ACCOUNT, True)
    api.set_credit_on_hold(ACCOUNT, False)
    assert len(token_requests(login)) == 1

    # Age the cached token to a minute before it expires (MSAL renews within five minutes of the end).
    state = json.loads(cache.serialize())
    assert state["AccessToken"], "the token is kept in the cache given"
    for entry in state["AccessToken"].values():
        assert int(entry["expires_on"]) - time.time() > 3000  # it had the expires_in we answered
        entry["expires_on"] = str(int(time.time()) + 60)
    cache.deserialize(json.dumps(state))

    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "written"
    assert api.set_credit_on_hold(ACCOUNT, False).outcome == "written"

    assert len(token_requests(login)) == 2
    assert [p.header("Authorization") for p in patches(crm)] == ["Bearer token-1"] * 2 + ["Bearer token-2"] * 2
    api.close()


def test_a_token_answered_with_a_short_lifetime_is_not_reused(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer, tokens: Tokens
) -> None:
    tokens.expires_in = 120  # less than MSAL's five-minute margin: expired on arrival

    api.set_credit_on_hold(ACCOUNT, True)
    api.set_credit_on_hold(ACCOUNT, False)

    assert len(token_requests(login)) == 2
    assert [p.header("Authorization") for p in patches(crm)] == ["Bearer token-1", "Bearer token-2"]


def test_a_bad_client_secret_fails_with_a_sentence_and_sends_no_patch(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer, tokens: Tokens
) -> None:
    tokens.answer = Reply(
        401,
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0000\r\n",
            "error_codes": [7000215],
        },
    )

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "failed"
    assert outcome.status is None
    assert "invalid_client" in outcome.message and "AADSTS7000215" in outcome.message
    assert "DYNAMICS_CLIENT_SECRET" in outcome.message
    assert CLIENT_SECRET not in outcome.message
    assert outcome.message.endswith(".")
    assert patches(crm) == []
    assert len(token_requests(login)) == 1


@pytest.mark.parametrize(
    "answer",
    [Reply(503, "Service Unavailable"), Reply(500, {"error": "server_error"})],
    ids=["503", "500"],
)
def test_a_failing_token_endpoint_gives_a_retry_and_sends_no_patch(
    api: DynamicsWebApi, crm: HttpsServer, tokens: Tokens, answer: Reply
) -> None:
    tokens.answer = answer

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "retry"
    assert "No token" in outcome.message
    assert patches(crm) == []


def test_a_temporarily_unavailable_token_endpoint_gives_a_retry(
    api: DynamicsWebApi, crm: HttpsServer, tokens: Tokens
) -> None:
    tokens.answer = Reply(400, {"error": "temporarily_unavailable", "error_description": "busy"})

    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "retry"
    assert patches(crm) == []


def test_a_throttled_token_endpoint_gives_a_retry_after_its_retry_after(
    api: DynamicsWebApi, crm: HttpsServer, tokens: Tokens
) -> None:
    tokens.answer = Reply(429, {"error": "invalid_request", "error_description": "throttled"}, {"Retry-After": "20"})

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.retry_after_seconds) == ("retry", 20.0)
    assert "429" in outcome.message
    assert patches(crm) == []


def test_an_unreachable_authority_gives_a_retry(crm: HttpsServer, login: HttpsServer) -> None:
    api = DynamicsWebApi(settings_for(crm, login, authority_url=f"https://127.0.0.1:{closed_port()}"))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "retry"
    assert "could not connect" in outcome.message
    assert crm.requests == []


def test_an_unknown_tenant_fails(crm: HttpsServer, login: HttpsServer, tokens: Tokens) -> None:
    api = DynamicsWebApi(settings_for(crm, login, tenant_id="no-such-tenant"))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "failed"
    assert "no-such-tenant" in outcome.message
    assert crm.requests == []


def test_a_token_that_later_becomes_obtainable_is_used(api: DynamicsWebApi, crm: HttpsServer, tokens: Tokens) -> None:
    tokens.answer = Reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "failed"

    tokens.answer = None  # the secret was fixed
    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "written"


# --------------------------------------------------------------------------- the answers of the Web API


def test_429_with_retry_after_in_seconds_gives_a_retry_after_that_long(
    api: DynamicsWebApi, crm: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.route(
        "PATCH", ACCOUNTS, Reply(429, {"error": {"code": "0x80072322", "message": "Too many"}}, {"Retry-After": "7"})
    )
    waits: list[float] = []
    caller, real_sleep = threading.current_thread(), time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is caller:
            waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status, outcome.retry_after_seconds) == ("retry", 429, 7.0)
    assert "429" in outcome.message and "7 s" in outcome.message
    assert waits == []  # the client reports the wait; the caller waits
    assert len(patches(crm)) == 1


def test_429_with_retry_after_as_an_http_date_gives_the_seconds_until_then(
    api: DynamicsWebApi, crm: HttpsServer
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    crm.route("PATCH", ACCOUNTS, Reply(429, headers={"Retry-After": later}))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "retry"
    assert outcome.retry_after_seconds is not None and 25 <= outcome.retry_after_seconds <= 30


def test_429_without_retry_after_gives_a_retry_after_the_default_wait(api: DynamicsWebApi, crm: HttpsServer) -> None:
    crm.route("PATCH", ACCOUNTS, Reply(429))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "retry"
    assert outcome.retry_after_seconds is not None and outcome.retry_after_seconds > 0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_gives_a_retry_for_the_caller_to_back_off(api: DynamicsWebApi, crm: HttpsServer, status: int) -> None:
    crm.route("PATCH", ACCOUNTS, Reply(status, {"error": {"code": "0x80040216", "message": "Generic SQL error."}}))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status, outcome.retry_after_seconds) == ("retry", status, None)
    assert str(status) in outcome.message
    assert len(patches(crm)) == 1  # one attempt: the caller decides when to send it again


def test_a_server_that_does_not_answer_in_time_gives_a_retry(
    crm: HttpsServer, login: HttpsServer, tokens: Tokens
) -> None:
    api = DynamicsWebApi(settings_for(crm, login, timeout=(2.0, 0.3)))
    crm.route("PATCH", ACCOUNTS, Reply(204, delay=5))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status) == ("retry", None)
    assert "did not answer" in outcome.message


def test_an_unreachable_web_api_gives_a_retry(crm: HttpsServer, login: HttpsServer, tokens: Tokens) -> None:
    api = DynamicsWebApi(settings_for(crm, login, api_url=f"https://127.0.0.1:{closed_port()}"))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status) == ("retry", None)
    assert "connect" in outcome.message


@pytest.mark.parametrize(
    ("status", "words"),
    [(404, "does not exist in the CRM"), (412, "precondition failed")],
)
def test_404_and_412_fail_with_a_sentence_naming_the_status(
    api: DynamicsWebApi, crm: HttpsServer, status: int, words: str
) -> None:
    message = f"account With Id = {ACCOUNT} Does Not Exist"
    crm.route("PATCH", ACCOUNTS, Reply(status, {"error": {"code": "0x80040217", "message": message}}))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status, outcome.retry_after_seconds) == ("failed", status, None)
    assert outcome.message.startswith(f"Dynamics answered {status}")
    assert words in outcome.message
    assert ACCOUNT in outcome.message
    assert message in outcome.message  # the CRM's own words are kept
    assert len(patches(crm)) == 1


@pytest.mark.parametrize("status", [400, 403])
def test_other_4xx_fail(api: DynamicsWebApi, crm: HttpsServer, status: int) -> None:
    crm.route("PATCH", ACCOUNTS, Reply(status, {"error": {"code": "0x0", "message": "No."}}))

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert (outcome.outcome, outcome.status) == ("failed", status)
    assert f"Dynamics answered {status}" in outcome.message


def test_a_401_from_the_web_api_fails_and_the_next_call_asks_for_a_fresh_token(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    crm.script("PATCH", ACCOUNTS, Reply(401), Reply(204))

    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "failed"
    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "written"

    assert len(token_requests(login)) == 2
    assert [p.header("Authorization") for p in patches(crm)] == ["Bearer token-1", "Bearer token-2"]


# --------------------------------------------------------------------------- TLS and the hosts contacted


def test_without_the_test_ca_the_client_refuses_the_servers(
    monkeypatch: pytest.MonkeyPatch, api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # requests falls back to its public CA bundle

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "failed"
    assert "certificate is not trusted" in outcome.message and "REQUESTS_CA_BUNDLE" in outcome.message
    assert login.requests == [] and crm.requests == []  # not one request made it through TLS
    assert login.wait_for_tls_failures()  # the handshake was refused by the client


def test_an_untrusted_web_api_is_refused_even_with_a_token(
    monkeypatch: pytest.MonkeyPatch, api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "written"  # the token is now cached
    crm.clear()
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")

    outcome = api.set_credit_on_hold(ACCOUNT, False)

    assert outcome.outcome == "failed"
    assert "REQUESTS_CA_BUNDLE" in outcome.message
    assert crm.requests == []
    assert crm.wait_for_tls_failures()


def test_nothing_but_the_configured_authority_and_api_is_contacted(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer, only_loopback: list[str]
) -> None:
    crm.route("GET", ACCOUNT_PATH, Reply(200, {"accountid": ACCOUNT}))
    assert api.set_credit_on_hold(ACCOUNT, True).outcome == "written"
    assert api.read_row("accounts", ACCOUNT) == {"accountid": ACCOUNT}

    # MSAL read the tenant's OpenID configuration from the local authority (no instance
    # discovery on login.microsoftonline.com, no regional endpoint, no IMDS probe)...
    assert [(r.method, r.path) for r in login.requests] == [
        ("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{TENANT}/oauth2/v2.0/token"),
    ]
    # ...and no lookup or connection went anywhere else (the fixture refuses and records them).
    assert only_loopback == []


def test_the_closed_network_is_really_closed(crm: HttpsServer, only_loopback: list[str]) -> None:
    """Microsoft's own authority, unreachable here: the attempt is refused, and seen."""
    api = DynamicsWebApi(
        WebApiSettings(api_url=crm.url, tenant_id=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    )

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "retry"
    assert only_loopback == ["login.microsoftonline.com"]
    only_loopback.clear()  # expected here; any other test that does this fails


def test_an_openid_configuration_naming_a_token_endpoint_elsewhere_is_refused(
    api: DynamicsWebApi, crm: HttpsServer, login: HttpsServer
) -> None:
    login.route(
        "GET",
        f"/{TENANT}/v2.0/.well-known/openid-configuration",
        Reply(
            200,
            {
                "issuer": f"{login.url}/{TENANT}/v2.0",
                "authorization_endpoint": f"{login.url}/{TENANT}/oauth2/v2.0/authorize",
                "token_endpoint": f"{crm.url}/{TENANT}/oauth2/v2.0/token",
            },
        ),
    )

    outcome = api.set_credit_on_hold(ACCOUNT, True)

    assert outcome.outcome == "failed"
    assert "outside" in outcome.message and "DYNAMICS_AUTHORITY_URL" in outcome.message
    assert token_requests(login) == [] and crm.requests == []


# --------------------------------------------------------------------------- reading a row


def test_read_row_returns_the_row(api: DynamicsWebApi, crm: HttpsServer) -> None:
    row = {"@odata.etag": 'W/"123"', "accountid": ACCOUNT, "name": "Acme", "creditonhold": False}
    crm.route("GET", ACCOUNT_PATH, Reply(200, row))

    assert api.read_row("accounts", ACCOUNT) == row

    [get] = crm.received("GET")
    assert get.header("Authorization") == "Bearer token-1"
    assert get.header("OData-Version") == "4.0" and get.header("Accept") == "application/json"


def test_read_row_reads_other_entity_sets_and_selects_columns(api: DynamicsWebApi, crm: HttpsServer) -> None:
    order = "0f0e0d0c-0b0a-4908-8706-050403020100"
    crm.route("GET", f"/api/data/v9.2/salesorders({order})", Reply(200, {"salesorderid": order}))

    assert api.read_row("salesorders", order, select=["salesorderid", "totalamount"]) == {"salesorderid": order}

    [get] = crm.received("GET")
    assert get.query == {"$select": ["salesorderid,totalamount"]}


def test_read_row_raises_a_clear_error_on_404(api: DynamicsWebApi, crm: HttpsServer) -> None:
    crm.route("GET", ACCOUNT_PATH, Reply(404, {"error": {"code": "0x80040217", "message": "Does Not Exist"}}))

    with pytest.raises(WebApiError) as raised:
        api.read_row("accounts", ACCOUNT)

    assert raised.value.status == 404 and raised.value.retryable is False
    assert "404" in str(raised.value) and ACCOUNT in str(raised.value)


def test_read_row_raises_a_retryable_error_on_429_and_5xx(api: DynamicsWebApi, crm: HttpsServer) -> None:
    crm.script("GET", ACCOUNT_PATH, Reply(429, headers={"Retry-After": "3"}), Reply(503))

    with pytest.raises(WebApiError) as throttled:
        api.read_row("accounts", ACCOUNT)
    with pytest.raises(WebApiError) as unavailable:
        api.read_row("accounts", ACCOUNT)

    assert (throttled.value.retryable, throttled.value.retry_after_seconds) == (True, 3.0)
    assert (unavailable.value.retryable, unavailable.value.status) == (True, 503)


def test_read_row_refuses_names_and_ids_that_would_change_the_url(api: DynamicsWebApi, crm: HttpsServer) -> None:
    with pytest.raises(WebApiError):
        api.read_row("accounts(1)/contacts", ACCOUNT)
    with pytest.raises(WebApiError):
        api.read_row("accounts", "1)/contacts(2")
    assert crm.requests == []


def test_read_row_with_no_token_raises_as_the_token_endpoint_says(
    api: DynamicsWebApi, crm: HttpsServer, tokens: Tokens
) -> None:
    tokens.answer = Reply(503)
    with pytest.raises(WebApiError) as raised:
        api.read_row("accounts", ACCOUNT)
    assert raised.value.retryable is True
    assert crm.requests == []


# --------------------------------------------------------------------------- settings and Retry-After


def web_api_settings(env: dict[str, str]) -> WebApiSettings | None:
    """The Web API's settings as a process builds them: the environment read, then the client wired."""
    client = make_dynamics_api(load_settings(env))
    if client is None:
        return None
    client.close()
    return client.settings


def test_settings_come_from_the_dynamics_variables_and_keep_the_secret_out_of_reprs() -> None:
    required = {"STRIPE_WEBHOOK_SECRET": "whsec_test", "ADMIN_API_TOKEN": "x" * 24}
    env = {
        **required,
        "DYNAMICS_API_URL": "https://contoso.crm.dynamics.com/",
        "DYNAMICS_TENANT_ID": TENANT,
        "DYNAMICS_CLIENT_ID": CLIENT_ID,
        "DYNAMICS_CLIENT_SECRET": CLIENT_SECRET,
    }
    settings = web_api_settings(env)
    assert settings is not None
    assert settings.api_url == "https://contoso.crm.dynamics.com"
    assert settings.token_endpoint == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert settings.scope == "https://contoso.crm.dynamics.com/.default"
    assert CLIENT_SECRET not in repr(settings)

    local = web_api_settings({**env, "DYNAMICS_AUTHORITY_URL": "https://127.0.0.1:8443/"})
    assert local is not None and local.token_endpoint == f"https://127.0.0.1:8443/{TENANT}/oauth2/v2.0/token"
    assert web_api_settings(required) is None
    with pytest.raises(ConfigurationError, match="DYNAMICS_CLIENT_SECRET"):
        web_api_settings({**env, "DYNAMICS_CLIENT_SECRET": ""})
    with pytest.raises(ConfigurationError, match="DYNAMICS_AUTHORITY_URL must be an https:// address"):
        web_api_settings({**env, "DYNAMICS_AUTHORITY_URL": "http://127.0.0.1:8080"})


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:42 GMT", now=now) == 42.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
