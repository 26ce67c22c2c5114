"""Holdfast's command line, as Flask commands on the app: ``flask --app webhooks:create_app <command>``.

``./scripts/holdfast`` runs them with the project's .venv and .env. Each command is a thin
call of the same services the API uses, in the same process configuration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click
import structlog
from flask import Flask
from flask.cli import AppGroup

from adapters.policy_file import PolicyError, load_policy
from domain.access import InvalidTokenName, Role, TokenNameTaken
from services import accounts as account_service
from services import inbox as inbox_service
from services import retention as retention_service
from services import tokens as token_service
from services import what_if as what_if_service
from webhooks.api.accounts import checked_account_id
from webhooks.api.policy_schemas import PolicyChangeSchema
from webhooks.api.schemas import AccountSchema
from webhooks.context import container
from webhooks.errors import ApiError

log = structlog.get_logger(__name__)

ROLES = [str(role) for role in Role]


@click.group("tokens", help="Tokens of the people and systems that use the API.", cls=AppGroup)
def tokens_cli() -> None:
    pass


@tokens_cli.command("create")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def create_token(name: str, role: str) -> None:
    """Make a token NAME with ROLE; its secret is printed once, here, and never again."""
    c = container()
    try:
        created = token_service.create_token(c.uow(), name, Role(role), c.clock())
    except (InvalidTokenName, TokenNameTaken) as error:
        raise click.ClickException(str(error)) from None
    log.info("api_token_created", token_id=created.token_id, name=created.name, role=role, by="command line")
    click.echo(f"Token {created.token_id} for {created.name} ({created.role}). Its secret, shown only now:")
    click.echo(created.token)


@tokens_cli.command("list")
def list_tokens() -> None:
    """Every token, oldest first, revoked ones included (never a secret)."""
    c = container()
    after = None
    while True:
        page = token_service.list_tokens(c.uow(), after=after, limit=500)
        for token in page:
            revoked = f"revoked {token.revoked_at.isoformat()}" if token.revoked_at else "active"
            click.echo(
                f"{token.token_id}\t{token.role}\t{token.name}\tcreated {token.created_at.isoformat()}\t{revoked}"
            )
        if len(page) < 500:
            return
        after = (page[-1].created_at, page[-1].token_id)


@tokens_cli.command("revoke")
@click.argument("token_id")
def revoke_token(token_id: str) -> None:
    """Revoke the token TOKEN_ID at once."""
    c = container()
    try:
        token = token_service.revoke_token(c.uow(), token_id, c.clock())
    except token_service.TokenNotFound as error:
        raise click.ClickException(str(error)) from None
    log.info("api_token_revoked", token_id=token.token_id, name=token.name, by="command line")
    click.echo(f"Token {token.token_id} ({token.name}) is revoked.")


@click.group("account", help="Accounts.", cls=AppGroup)
def account_cli() -> None:
    pass


@account_cli.command("show")
@click.argument("account_id")
def show_account(account_id: str) -> None:
    """The account ACCOUNT_ID as GET /api/accounts/<id> shows it."""
    c = container()
    try:
        view = account_service.view_account(c.uow(), checked_account_id(account_id), c.context, c.clock())
    except ApiError as error:
        raise click.ClickException(error.message) from None
    except account_service.AccountNotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(AccountSchema().dump(view), indent=2))


@click.group("events", help="Stored webhook deliveries.", cls=AppGroup)
def events_cli() -> None:
    pass


@events_cli.command("replay")
@click.argument("source", required=False)
@click.argument("event_id", required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Replay every failed event.")
def replay_events(source: str | None, event_id: str | None, all_failed: bool) -> None:
    """Process the failed event SOURCE EVENT_ID again, or every failed one with --failed."""
    if all_failed == bool(source or event_id):
        raise click.UsageError("Give SOURCE and EVENT_ID, or --failed (not both).")
    if not all_failed and not (source and event_id):
        raise click.UsageError("Give both SOURCE and EVENT_ID.")
    targets = _failed_events() if all_failed else [(source or "", event_id or "")]
    for target_source, target_id in targets:
        _replay(target_source, target_id)
    if all_failed:
        click.echo(f"{len(targets)} failed event(s) queued again.")


@events_cli.command("purge")
@click.option(
    "--days", type=click.IntRange(min=1), default=None, help="Keep this many days instead of INBOX_RETENTION_DAYS."
)
def purge_events(days: int | None) -> None:
    """Delete processed and ignored deliveries older than the retention (failed and waiting ones stay)."""
    c = container()
    keep = c.settings.inbox_retention_days if days is None else days
    if keep == 0:
        click.echo("INBOX_RETENTION_DAYS is 0: every delivery is kept.")
        return
    purged = retention_service.purge_inbox(c.uow, now=c.clock(), retention_days=keep)
    click.echo(f"{purged.rows} processed or ignored event(s) older than {keep} days deleted.")


def _failed_events() -> list[tuple[str, str]]:
    c = container()
    found: list[tuple[str, str]] = []
    after = None
    while True:
        page = inbox_service.list_events(c.uow(), "failed", after, 500)
        found += [(event.source, event.external_id) for event in page]
        if len(page) < 500:
            return found
        after = page[-1].id


def _replay(source: str, event_id: str) -> None:
    c = container()
    try:
        event = inbox_service.replay(c.uow(), c.publisher, source, event_id, c.clock())
    except inbox_service.NotReplayable as error:
        raise click.ClickException(str(error)) from None
    if event is None:
        raise click.ClickException(f"No {source} event {event_id} is stored.")
    click.echo(f"{source} event {event_id} is queued again.")


@click.group("policy", help="The hold policy.", cls=AppGroup)
def policy_cli() -> None:
    pass


@policy_cli.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check_policy(path: str) -> None:
    """Check a policy file as Holdfast does at start (the same sentence for a bad file)."""
    try:
        load_policy(path)
    except PolicyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{path} is a valid hold policy.")


def _reasons(reasons: Sequence[str]) -> str:
    return ", ".join(reasons) or "none"


@policy_cli.command("what-if")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the answer of POST /api/policy/what-if, every change.")
def what_if_policy(path: str, as_json: bool) -> None:
    """What the policy file PATH would change now (what it leaves out stays as in force); changes nothing."""
    c = container()
    try:
        candidate = load_policy(path, base=c.policy)
    except PolicyError as error:
        raise click.ClickException(str(error)) from None
    page = what_if_service.what_if(c.uow(), c.policy, candidate, c.clock())
    changes = PolicyChangeSchema(many=True).dump(page.changes)
    if as_json:
        click.echo(json.dumps({"accounts_evaluated": page.accounts_evaluated, "changes": changes}, indent=2))
        return
    click.echo(f"{page.accounts_evaluated} account(s) evaluated; {len(changes)} would change under {path}.")
    for change in changes:
        orders = f"orders released {change['orders_released']}, parked {change['orders_parked']}"
        click.echo(
            f"{change['account_id']}\t{change['name'] or ''}\tholds {_reasons(change['holds_now'])} -> "
            f"{_reasons(change['holds_under_candidate'])}\tplaced {_reasons(change['placed'])}\t"
            f"released {_reasons(change['released'])}\t{orders}"
        )


def register_commands(app: Flask) -> None:
    for group in (tokens_cli, account_cli, events_cli, policy_cli):
        app.cli.add_command(group)
