"""Tokens of the admin API in the database: found by the hash of their secret, never by the secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.db.tables import ApiTokenRow
from domain.access import ApiToken, Role, TokenNameTaken


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(row.token_id, row.name, Role(row.role), row.created_at, row.revoked_at)


class SqlTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: ApiToken, secret_hash: str) -> None:
        """Store a new token (TokenNameTaken if a token not revoked has its name, even one added just now)."""
        if self.active_named(token.name) is not None:
            raise TokenNameTaken(token.name)
        row = ApiTokenRow(
            token_id=token.token_id,
            name=token.name,
            role=str(token.role),
            secret_hash=secret_hash,
            created_at=token.created_at,
            revoked_at=None,
        )
        try:
            with self.session.begin_nested():  # a name taken at the same moment: refused by the unique index
                self.session.add(row)
        except IntegrityError:
            raise TokenNameTaken(token.name) from None

    def active_named(self, name: str) -> ApiToken | None:
        row = self.session.execute(
            select(ApiTokenRow).where(ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None))
        ).scalar_one_or_none()
        return None if row is None else _token(row)

    def get(self, token_id: str) -> ApiToken | None:
        row = self.session.get(ApiTokenRow, token_id)
        return None if row is None else _token(row)

    def by_secret_hash(self, secret_hash: str) -> tuple[ApiToken, str] | None:
        """The token whose secret has this hash, and the hash as stored (to compare in constant time)."""
        row = self.session.execute(
            select(ApiTokenRow).where(ApiTokenRow.secret_hash == secret_hash)
        ).scalar_one_or_none()
        return None if row is None else (_token(row), row.secret_hash)

    def revoke(self, token_id: str, now: datetime) -> None:
        row = self.session.get(ApiTokenRow, token_id, with_for_update=True)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
            self.session.flush()

    def page(self, after: tuple[datetime, str] | None, limit: int) -> list[ApiToken]:
        """Tokens oldest first, revoked ones included (with when)."""
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.token_id).limit(limit)
        if after is not None:
            created, token_id = after
            query = query.where(
                or_(
                    ApiTokenRow.created_at > created,
                    (ApiTokenRow.created_at == created) & (ApiTokenRow.token_id > token_id),
                )
            )
        return [_token(row) for row in self.session.execute(query).scalars()]
