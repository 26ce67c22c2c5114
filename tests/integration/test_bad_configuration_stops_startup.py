"""A configuration that cannot work stops each process at start with a sentence (not a traceback)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
BASE = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "ADMIN_API_TOKEN": "t" * 24}


def clean_environment() -> dict[str, str]:
    """This environment without any of Holdfast's settings (the test's own are given on top)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DYNAMICS_", "HOLD_", "STRIPE_", "ADMIN_", "DATABASE_", "REDIS_"))
    }


def start(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**clean_environment(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


WEB = ("-c", "from webhooks import create_app; create_app()")
WORKER = ("-m", "celery", "-A", "tasks.worker", "worker", "--loglevel", "ERROR")
BEAT = ("-m", "celery", "-A", "tasks.worker", "beat", "--loglevel", "ERROR")
# The Procfile's web command, on a free port.
GUNICORN = (
    "-m",
    "gunicorn",
    "--config",
    "bootstrap/gunicorn_conf.py",
    "--bind",
    "127.0.0.1:0",
    "webhooks:create_app()",
)


@pytest.mark.parametrize("command", [WEB, WORKER, BEAT], ids=["web", "worker", "beat"])
def test_a_wrong_policy_file_stops_the_process_naming_the_line_and_the_problem(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[non_payment]\nfailed_attemps = 2\n")
    env = {**BASE, "HOLD_POLICY": str(policy), "HOLDFAST_INSTANCE_DIR": str(tmp_path / "instance")}
    result = start(env, *command)
    assert result.returncode != 0
    assert (
        f"Holdfast cannot start: Hold policy {policy}, line 2: non_payment.failed_attemps is not a known setting"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"ADMIN_API_TOKEN": "t" * 24}, "STRIPE_WEBHOOK_SECRET is not set"),
        (
            {**BASE, "DATABASE_URL": "postgres://u@127.0.0.1:1/x", "DYNAMICS_STRIPE_CUSTOMER_FIELD": "new_stripeid"},
            "POST /webhooks/dynamics has no authentication",
        ),
        ({**BASE, "DYNAMICS_WEBHOOK_HEADER": "no colon here"}, "DYNAMICS_WEBHOOK_HEADER must be 'Name: value'"),
        (
            {**BASE, "DYNAMICS_API_URL": "https://crm.example", "DYNAMICS_TENANT_ID": "t"},
            "DYNAMICS_CLIENT_ID, DYNAMICS_CLIENT_SECRET is not",
        ),
        (
            {**BASE, "DYNAMICS_AUTHORITY_URL": "http://login.example"},
            "DYNAMICS_AUTHORITY_URL must be an https:// address",
        ),
    ],
)
def test_a_configuration_that_cannot_work_stops_the_web_process_with_a_sentence(
    tmp_path: Path, env: dict[str, str], sentence: str
) -> None:
    result = start({**env, "HOLDFAST_INSTANCE_DIR": str(tmp_path)}, *WEB)
    assert result.returncode != 0 and sentence in result.stderr and "Traceback" not in result.stderr


def test_a_wrong_policy_file_stops_gunicorn_once_instead_of_restarting_workers_for_ever(tmp_path: Path) -> None:
    """Reproduced before: each worker exited with the sentence and gunicorn booted another, in a loop."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[non_payment]\nfailed_attemps = 2\n")
    env = {**BASE, "HOLD_POLICY": str(policy), "HOLDFAST_INSTANCE_DIR": str(tmp_path / "instance"), "PORT": "0"}
    result = start(env, *GUNICORN)  # returns only once gunicorn has exited (or fails after 120 s)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("Holdfast cannot start: Hold policy") == 1
    assert "Booting worker" not in output and "Traceback" not in output


def booted_workers(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log.read_text(errors="replace"))]


def serving(log: Path) -> bool:
    """Whether gunicorn's worker answers ``/healthz`` (its app is built, with the policy file as it was)."""
    port = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    if port is None:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port[1]}/healthz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize("how", ["reload", "worker_replaced"])
def test_a_policy_file_that_goes_wrong_after_start_stops_gunicorn_instead_of_restarting_workers(
    tmp_path: Path, how: str
) -> None:
    """Reproduced before: after ``kill -HUP`` (or when a worker died and another was started, as
    after ``max_requests`` or a timeout) every new worker exited with the sentence and code 1, and
    gunicorn started another, for as long as it lived (19 in 10 s)."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[non_payment]\nfailed_attempts = 2\n")
    env = {**BASE, "HOLD_POLICY": str(policy), "HOLDFAST_INSTANCE_DIR": str(tmp_path / "instance")}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        web = subprocess.Popen(
            [sys.executable, *GUNICORN],
            cwd=ROOT,
            env={**clean_environment(), **env, "WEB_CONCURRENCY": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that the test can end it and its worker
        )
    try:
        wait_for(lambda: serving(log), timeout=60, what="gunicorn's first worker to serve")
        first = booted_workers(log)[0]
        policy.write_text("[non_payment]\nfailed_attemps = 2\n")
        if how == "reload":
            os.kill(web.pid, signal.SIGHUP)
        else:
            os.kill(first, signal.SIGKILL)
        try:
            returncode = web.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"gunicorn still running after 60 s, {len(booted_workers(log))} workers booted so far")
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
    output = log.read_text(errors="replace")
    assert returncode != 0
    assert output.count("Holdfast cannot start: Hold policy") == 1, output[-3000:]
    assert len(booted_workers(log)) == 2, "one worker at start, one that could not boot, none after it"
    assert "Traceback" not in output
