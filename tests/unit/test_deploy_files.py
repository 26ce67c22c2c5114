"""The one-click deploy file (app.json) and the Python version file agree with the code.

Every variable app.json names is one Holdfast reads (bootstrap/settings.py, or the Procfile's
processes); every setting without which a process refuses to start is there; every variable of
README's Configuration table that an operator sets is described; the formation names the
Procfile's process types; the release phase's command is installed.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from configparser import ConfigParser
from pathlib import Path

import pytest

from bootstrap.settings import ConfigurationError, load_settings

ROOT = Path(__file__).resolve().parents[2]
APP = json.loads((ROOT / "app.json").read_text())
# What README's Configuration table lists but an operator does not set in app.json: the
# platform sets PORT, the add-ons DATABASE_URL and REDIS_URL; the others are for local runs and tests.
NOT_SET_BY_AN_OPERATOR = {"PORT", "DATABASE_URL", "REDIS_URL", "HOLDFAST_INSTANCE_DIR", "STRIPE_API_BASE"}
# Read by a library Holdfast uses, not by settings.py: requests trusts this bundle (MSAL goes through requests).
READ_BY_LIBRARIES = {"REQUESTS_CA_BUNDLE"}


class RecordingEnvironment(Mapping[str, str]):
    """An environment that remembers every variable read from it."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.read = values, set[str]()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


MINIMAL = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "ADMIN_API_TOKEN": "t" * 24, "HOLDFAST_INSTANCE_DIR": "/tmp/hf-deploy"}


def settings_variables() -> set[str]:
    """Every variable bootstrap/settings.py reads (it reads each one whether set or not)."""
    recorded = RecordingEnvironment(dict(MINIMAL))
    load_settings(recorded)
    return recorded.read


def process_variables() -> set[str]:
    """Variables the Procfile's processes read themselves: the Procfiles' ``$NAME`` and gunicorn's config."""
    text = (ROOT / "Procfile").read_text() + (ROOT / "Procfile.worker").read_text()
    names = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))
    names |= set(
        re.findall(r"os\.environ\.get\(['\"]([A-Z_]+)['\"]", (ROOT / "bootstrap" / "gunicorn_conf.py").read_text())
    )
    return names


def readme_configuration_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}


def procfile_types() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name.strip(): command.strip() for name, _, command in (line.partition(":") for line in lines if line)}


def test_every_variable_app_json_names_is_one_holdfast_reads() -> None:
    read = settings_variables() | process_variables() | READ_BY_LIBRARIES
    assert set(APP["env"]) - read == set()
    assert "WORKER_CONCURRENCY" in process_variables() and "LOG_LEVEL" in settings_variables()  # the readers work


def test_every_variable_an_operator_sets_is_described() -> None:
    listed = readme_configuration_variables()
    assert {"STRIPE_WEBHOOK_SECRET", "PROVISIONING_URL", "WORKER_CONCURRENCY"} <= listed  # the table was read
    assert listed - NOT_SET_BY_AN_OPERATOR - set(APP["env"]) == set()
    for name, variable in APP["env"].items():
        assert isinstance(variable, dict) and len(variable.get("description", "").split()) >= 3, name


def required_settings() -> set[str]:
    """The variables without which load_settings refuses to start a process."""
    required = set()
    for name in settings_variables() - set(MINIMAL) | {"STRIPE_WEBHOOK_SECRET", "ADMIN_API_TOKEN"}:
        try:
            load_settings({k: v for k, v in MINIMAL.items() if k != name})
        except ConfigurationError:
            required.add(name)
    return required


def test_every_required_setting_is_present_and_is_asked_for_or_generated() -> None:
    required = required_settings()
    assert required == {"STRIPE_WEBHOOK_SECRET", "ADMIN_API_TOKEN"}
    for name in required:
        variable = APP["env"][name]
        assert variable.get("required", True) is True or "generator" in variable, name
        assert variable.get("generator") == "secret" or "value" not in variable, name  # no shared default secret


@pytest.mark.parametrize("name", ["ADMIN_API_TOKEN", "DYNAMICS_WEBHOOK_KEY", "SESSION_SECRET"])
def test_the_secrets_holdfast_makes_itself_are_generated(name: str) -> None:
    assert APP["env"][name]["generator"] == "secret"


def test_stripes_secret_is_asked_for_since_only_stripe_can_give_it() -> None:
    assert APP["env"]["STRIPE_WEBHOOK_SECRET"]["required"] is True
    assert "generator" not in APP["env"]["STRIPE_WEBHOOK_SECRET"]


def test_the_add_ons_are_postgres_and_redis() -> None:
    plans = {addon["plan"] if isinstance(addon, dict) else addon for addon in APP["addons"]}
    assert {plan.split(":")[0] for plan in plans} == {"heroku-postgresql", "heroku-redis"}
    assert APP["env"]["REDIS_TLS_VERIFY"]["value"] == "false"  # Heroku Redis' certificate is self-signed
    assert (
        load_settings({**MINIMAL, "REDIS_URL": "rediss://h:6379", "REDIS_TLS_VERIFY": "false"}).redis_tls_verify
        is False
    )


def test_the_formation_names_the_procfiles_process_types() -> None:
    types = procfile_types()
    assert set(APP["formation"]) == {"web", "worker", "beat", "outgoing"}
    assert set(APP["formation"]) <= set(types) - {"release"}
    for process in APP["formation"].values():
        assert process["quantity"] >= 1


def test_the_release_phase_migrates_with_a_command_that_is_installed() -> None:
    command = procfile_types()["release"].split()
    assert command == ["alembic", "upgrade", "head"]
    assert (Path(sys.executable).parent / "alembic").exists()
    config = ConfigParser(defaults={"here": str(ROOT)})
    config.read(ROOT / "alembic.ini")
    assert Path(config["alembic"]["script_location"], "env.py").is_file()


def test_the_python_version_is_pinned_to_one_the_project_supports() -> None:
    pinned = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", pinned)
    requires = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert requires is not None and int(pinned.split(".")[1]) >= int(requires[1])


def test_app_json_names_the_app_and_opens_its_docs_after_a_deploy() -> None:
    assert APP["name"] == "Holdfast" and len(APP["description"].split()) >= 5
    assert APP["success_url"] == "/docs"
