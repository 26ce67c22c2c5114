"""timeline_entries.actor widened to 120: ``user:<token name>`` with a name of 100 characters fits

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 00:01:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # SQLite keeps no length (and a batch copy of the timeline would be slow): PostgreSQL only,
    # where widening a varchar changes the catalog, not the rows.
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('timeline_entries', 'actor', type_=sa.String(length=120), existing_nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column(
            'timeline_entries', 'actor', type_=sa.String(length=64), existing_nullable=False,
            postgresql_using='left(actor, 64)',
        )
