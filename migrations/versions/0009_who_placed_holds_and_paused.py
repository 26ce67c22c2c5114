"""holds.placed_by and accounts.paused_by: who placed a hold or paused enforcement, filled from the timeline

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:55:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('placed_by', sa.String(length=120), nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_by', sa.String(length=120), nullable=True))
    # Holds and pauses already there: the actor of the timeline entry that recorded them (the
    # entry of a hold has the hold's time; (account_id, id) is the timeline's index).
    op.execute(
        "UPDATE holds SET placed_by = (SELECT t.actor FROM timeline_entries t "
        "WHERE t.account_id = holds.account_id AND t.kind = 'hold_placed' AND t.at = holds.since "
        "ORDER BY t.id DESC LIMIT 1)"
    )
    op.execute(
        "UPDATE accounts SET paused_by = (SELECT t.actor FROM timeline_entries t "
        "WHERE t.account_id = accounts.account_id AND t.kind = 'enforcement_paused' "
        "ORDER BY t.id DESC LIMIT 1) WHERE enforcement_paused_until IS NOT NULL"
    )


def downgrade() -> None:
    """Downgrade schema."""
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ has it): a batch copy of accounts would drop the
    # table that other tables' foreign keys refer to.
    op.drop_column('accounts', 'paused_by')
    op.drop_column('holds', 'placed_by')
