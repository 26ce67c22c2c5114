"""The command line (flask --app webhooks:create_app ..., ./scripts/holdfast): tokens, accounts, replay, policy."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.policy_file import PolicyError, load_policy
from tests.bad_input import FAILED_EVENT_ID


@pytest.fixture
def cli(app: Any) -> Any:
    runner = app.test_cli_runner()

    def run(*args: str) -> Any:
        return runner.invoke(args=list(args))

    return run


def test_a_token_made_on_the_command_line_works_once_shown_and_is_listed_without_its_secret(
    cli: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = cli("tokens", "create", "maria", "finance")
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    assert secret.startswith("hf_")
    assert client.get("/api/accounts", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listed = cli("tokens", "list")
    assert listed.exit_code == 0 and "maria" in listed.output and "finance" in listed.output
    assert secret not in listed.output
    token_id = listed.output.split("\t", 1)[0]
    revoked = cli("tokens", "revoke", token_id)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert client.get("/api/accounts", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "revoked" in cli("tokens", "list").output
    assert secret not in "\n".join(repr(r.__dict__) for r in caplog.records)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        pytest.param(("tokens", "create", "admin", "admin"), "reserved", id="reserved-name"),
        pytest.param(("tokens", "create", "bob", "root"), "viewer", id="unknown-role"),
        pytest.param(("tokens", "revoke", "no-such-token"), "No token no-such-token", id="unknown-token"),
        pytest.param(("account", "show", "nobody"), "No account nobody", id="unknown-account"),
        pytest.param(("events", "replay", "stripe", "evt_nope"), "No stripe event evt_nope", id="unknown-event"),
        pytest.param(("events", "replay"), "--failed", id="nothing-to-replay"),
    ],
)
def test_bad_input_on_the_command_line_is_refused_with_a_sentence(
    cli: Any, args: tuple[str, ...], sentence: str
) -> None:
    result = cli(*args)
    assert result.exit_code != 0 and sentence in result.output, result.output


def test_a_name_taken_is_refused(cli: Any) -> None:
    assert cli("tokens", "create", "maria", "viewer").exit_code == 0
    taken = cli("tokens", "create", "maria", "sales")
    assert taken.exit_code == 1 and "revoke it first" in taken.output


def test_account_show_prints_the_account_as_the_api_shows_it(cli: Any, client: Any, admin: dict[str, str]) -> None:
    client.put("/api/accounts/acme", json={"name": "Acme", "credit_limit": "100.00"}, headers=admin)
    shown = cli("account", "show", "acme")
    assert shown.exit_code == 0, shown.output
    assert '"name": "Acme"' in shown.output and '"credit_limit": "100.00"' in shown.output


def failed_event(container: Any, event_id: str) -> None:
    now = datetime.now(UTC)
    stored = container.deliveries.add("stripe", event_id, "invoice.paid", "{}", now)
    with container.uow() as uow:
        uow.inbox.record_outcome(stored, "failed", now, error="ValueError: test")
        uow.commit()


def test_events_replay_queues_one_failed_event_or_all_of_them(
    cli: Any, container: Any, queued: list[tuple[str, Any]]
) -> None:
    failed_event(container, FAILED_EVENT_ID)
    failed_event(container, "evt_failed_0002")
    one = cli("events", "replay", "stripe", FAILED_EVENT_ID)
    assert one.exit_code == 0 and "queued again" in one.output
    again = cli("events", "replay", "stripe", FAILED_EVENT_ID)
    assert again.exit_code == 1 and "only a failed event" in again.output
    every = cli("events", "replay", "--failed")
    assert every.exit_code == 0 and "1 failed event(s) queued again" in every.output
    assert len(queued) == 2


def test_policy_check_gives_the_sentence_a_bad_file_gets_at_start(cli: Any, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[non_payment]\nfailed_attempts = 2\n")
    assert cli("policy", "check", str(good)).exit_code == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[non_payment]\nfailed_attempts = 'two'\n")
    with pytest.raises(PolicyError) as at_start:
        load_policy(str(bad))
    checked = cli("policy", "check", str(bad))
    assert checked.exit_code == 1 and str(at_start.value) in checked.output
