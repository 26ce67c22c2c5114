"""inbox retention: a partial index of the deliveries that ended (processed or ignored), by received_at

On PostgreSQL the index is built CONCURRENTLY, outside the migration's transaction, so webhooks keep
storing deliveries while it is built over a large inbox (a plain CREATE INDEX would block their
INSERTs for the whole build).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 00:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ENDED = sa.text("status IN ('processed', 'ignored')")


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(
                'ix_inbox_events_ended_received_at', 'inbox_events', ['received_at'],
                unique=False, postgresql_where=ENDED, postgresql_concurrently=True,
            )
    else:
        op.create_index(
            'ix_inbox_events_ended_received_at', 'inbox_events', ['received_at'], unique=False, sqlite_where=ENDED,
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_inbox_events_ended_received_at', table_name='inbox_events')
