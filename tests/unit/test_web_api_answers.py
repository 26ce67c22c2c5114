"""Every answer of the Dynamics Web API (or its absence) is sorted by one classifier."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import urllib3

from adapters.dynamics_token import NoToken
from adapters.dynamics_webapi import DEFAULT_RETRY_AFTER_SECONDS, classify


def answer(status: int, body: Any = None, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response._content = b"" if body is None else json.dumps(body).encode()
    return response


def sorted_as(outcome: requests.Response | requests.RequestException | NoToken) -> Any:
    return classify(outcome, doing="reading accounts(1)", wait=10.0)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_2xx_is_ok(status: int) -> None:
    assert sorted_as(answer(status)).verdict == "ok"


def test_a_429_is_transient_and_waits_for_its_retry_after_or_the_default() -> None:
    told = sorted_as(answer(429, **{"Retry-After": "7"}))
    untold = sorted_as(answer(429))

    assert (told.verdict, told.status, told.retry_after_seconds) == ("transient", 429, 7.0)
    assert (untold.verdict, untold.retry_after_seconds) == ("transient", DEFAULT_RETRY_AFTER_SECONDS)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_transient_with_a_retry_after_only_when_one_was_said(status: int) -> None:
    untold = sorted_as(answer(status))
    told = sorted_as(answer(status, **{"Retry-After": "3"}))

    assert (untold.verdict, untold.retry_after_seconds) == ("transient", None)
    assert (told.verdict, told.retry_after_seconds) == ("transient", 3.0)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412])
def test_the_other_4xx_are_permanent_and_keep_the_web_apis_own_words(status: int) -> None:
    sorted_answer = sorted_as(answer(status, {"error": {"code": "0x80040217", "message": "Does  Not Exist"}}))

    assert (sorted_answer.verdict, sorted_answer.status, sorted_answer.retry_after_seconds) == (
        "permanent",
        status,
        None,
    )
    assert sorted_answer.said == ' ("Does Not Exist")'


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_refused_naming_where_it_led(status: int) -> None:
    sorted_answer = sorted_as(answer(status, Location="https://elsewhere.example/api"))

    assert (sorted_answer.verdict, sorted_answer.status) == ("redirect_refused", status)
    assert "https://elsewhere.example/api" in sorted_answer.failure and "not followed" in sorted_answer.failure


def test_no_answer_in_time_or_no_connection_is_transient() -> None:
    for error in (requests.Timeout(), requests.ConnectTimeout(), requests.ConnectionError()):
        sorted_answer = sorted_as(error)
        assert (sorted_answer.verdict, sorted_answer.status) == ("transient", None)
        assert "reading accounts(1)" in sorted_answer.failure


def test_an_untrusted_certificate_is_permanent() -> None:
    refused = urllib3.exceptions.MaxRetryError(None, "/", reason=OSError("certificate verify failed"))

    sorted_answer = sorted_as(requests.ConnectionError(refused))

    assert sorted_answer.verdict == "permanent"
    assert "REQUESTS_CA_BUNDLE" in sorted_answer.failure


def test_no_token_is_transient_or_permanent_as_the_authority_said() -> None:
    throttled = sorted_as(NoToken("No token: throttled.", retryable=True, retry_after_seconds=20.0))
    refused = sorted_as(NoToken("No token: invalid_client.", retryable=False))

    assert (throttled.verdict, throttled.retry_after_seconds, throttled.failure) == (
        "transient",
        20.0,
        "No token: throttled.",
    )
    assert (refused.verdict, refused.failure) == ("permanent", "No token: invalid_client.")
