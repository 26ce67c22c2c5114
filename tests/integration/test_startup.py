"""A configuration that cannot work stops each process at start with a sentence (not a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "ADMIN_API_TOKEN": "t" * 24}


def start(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DYNAMICS_", "HOLD_", "STRIPE_", "ADMIN_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


WEB = ("-c", "from webhooks import create_app; create_app()")
WORKER = ("-m", "celery", "-A", "tasks.worker", "worker", "--loglevel", "ERROR")


@pytest.mark.parametrize("command", [WEB, WORKER], ids=["web", "worker"])
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
    web = ("-m", "gunicorn", "--config", "bootstrap/gunicorn_conf.py", "--bind", "127.0.0.1:0", "webhooks:create_app()")
    result = start(env, *web)  # returns only once gunicorn has exited (or fails after 120 s)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("Holdfast cannot start: Hold policy") == 1
    assert "Booting worker" not in output and "Traceback" not in output
