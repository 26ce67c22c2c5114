"""scripts/send-stripe-event, scripts/send-dynamics-event and scripts/run as a newcomer meets them.

``--help`` explains them; a mistake (no arguments, a file that is not there, an id that is not a
GUID, nothing listening, ./scripts/run on a port already taken) is a usage line or one sentence and
never a traceback; an event is sent to the running service, and without a worker to process it the
script says so after its timeout. (With a worker, each waits for the event and prints its status:
tests/e2e/test_local_scripts.py.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from tests.local_scripts import ROOT, SECRETS, script, served

SCRIPTS = ["send-stripe-event", "send-dynamics-event"]
ACCOUNT = "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def said_plainly(result: Any) -> str:
    """The script failed with words a person can act on: no traceback, nothing on stdout."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return str(result.stderr)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_says_what_the_script_does_and_how_to_call_it(name: str) -> None:
    result = script(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name} ")
    assert "examples:" in result.stdout and "http://127.0.0.1:$PORT" in result.stdout


@pytest.mark.parametrize(
    "command", [("send-stripe-event",), ("send-dynamics-event", "account"), ("send-dynamics-event", "order")]
)
def test_help_lists_the_options_of_waiting(command: tuple[str, ...]) -> None:
    result = script(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {' '.join(command)} ")
    assert "--timeout" in result.stdout and "--no-wait" in result.stdout and "--url" in result.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_without_arguments_the_script_prints_its_usage_line(name: str) -> None:
    result = script(name)
    assert result.returncode == 2
    assert said_plainly(result).startswith(f"usage: {name} ")


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("send-stripe-event", "no-such-event.json"), "There is no file no-such-event.json"),
        (("send-stripe-event", "invoice.paid.stripe-ruby-mock.json", "customer"), "'customer' is not key=value"),
        (("send-dynamics-event", "account", "acme", "--create"), "'acme' is not a GUID"),
        (("send-dynamics-event", "account", ACCOUNT), "Say what changed: --creditonhold"),
        (("send-dynamics-event", "order", ACCOUNT, "--account", ACCOUNT, "--amount", "ten"), "'ten' is not an amount"),
        (("send-dynamics-event", "order", ACCOUNT), "the following arguments are required: --account"),
    ],
    ids=["no-file", "not-key-value", "not-a-guid", "no-change", "not-an-amount", "no-account"],
)
def test_a_mistake_is_one_sentence_not_a_traceback(args: tuple[str, ...], sentence: str) -> None:
    assert sentence in said_plainly(script(*args, env=SECRETS))


@pytest.mark.parametrize(
    "args",
    [
        ("send-stripe-event", "invoice.paid.stripe-ruby-mock.json", "customer=cus_acme"),
        ("send-dynamics-event", "account", ACCOUNT, "--create"),
    ],
    ids=SCRIPTS,
)
def test_when_nothing_listens_the_script_says_to_start_the_service(args: tuple[str, ...]) -> None:
    port = free_port()
    message = said_plainly(script(*args, env={**SECRETS, "PORT": str(port)}))
    assert f"Nothing answers at http://127.0.0.1:{port}" in message and "./scripts/run" in message
    assert len(message.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("send-stripe-event", "invoice.payment_failed.stripe-ruby-mock.json", "customer=cus_acme"), "Stripe event"),
        (("send-dynamics-event", "account", ACCOUNT, "--create", "--creditonhold", "true"), "The Dynamics event"),
    ],
    ids=SCRIPTS,
)
def test_an_event_no_worker_processes_is_reported_after_the_timeout(app: Any, args: tuple[str, ...], what: str) -> None:
    """No worker runs here: the event is stored (200) and stays received, and the script says why it gave up."""
    with served(app) as url:
        result = script(*args, "--url", url, "--timeout", "0.5", env=SECRETS)
    assert result.stdout.startswith('200 {"received":true,"duplicate":false}')
    message = said_plainly(result)
    assert what in message and "is still received after 0.5 s: is the worker running?" in message


def test_a_refused_event_prints_the_services_answer_and_fails(app: Any) -> None:
    with served(app) as url:
        result = script(
            "send-stripe-event",
            "invoice.paid.stripe-ruby-mock.json",
            "--url",
            url,
            env={**SECRETS, "STRIPE_WEBHOOK_SECRET": "whsec_not_the_endpoints"},
        )
    assert result.returncode == 1
    assert result.stdout.startswith('400 {"error":"invalid_signature"')


def test_the_demo_says_what_it_plays_and_where() -> None:
    result = script("demo", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: demo ") and "stories 1 to 3" in result.stdout
    assert "--url" in result.stdout and "--timeout" in result.stdout


def test_the_demo_with_nothing_listening_says_to_start_the_service() -> None:
    port = free_port()
    message = said_plainly(script("demo", env={**SECRETS, "PORT": str(port)}))
    assert f"Nothing answers at http://127.0.0.1:{port}" in message and "./scripts/run" in message


def test_the_demo_with_the_wrong_admin_token_says_so(app: Any) -> None:
    with served(app) as url:
        result = script("demo", "--url", url, env={**SECRETS, "ADMIN_API_TOKEN": "not-the-admin-token"})
    assert "The service refused ADMIN_API_TOKEN" in said_plainly(result)


def test_holdfast_demo_runs_the_demo_script() -> None:
    """./scripts/holdfast demo is scripts/demo, with the project's .venv (no migration: it is only a client)."""
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in this checkout (./scripts/test makes it)")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "holdfast"), "demo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: demo ")


def test_run_on_a_port_already_taken_says_so_in_one_sentence_before_starting_anything() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "run")],
            env={**os.environ, "PORT": str(port), "PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # nothing installed, migrated or started
    message = said_plainly(result).strip()
    assert message == (
        f"Port {port} on 127.0.0.1 is already in use (Address already in use): stop what runs there "
        f"(another ./scripts/run?) or choose another port, e.g. PORT={port + 1} ./scripts/run"
    )
