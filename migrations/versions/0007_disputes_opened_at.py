"""disputes: opened_at, when the event that opened the dispute was created (merges in any order)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import adapters.db.tables


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', adapters.db.tables.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_column('opened_at')
