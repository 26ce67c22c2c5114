"""accounts: crm_sync_due_at, when the CRM's creditonhold is looked at again; revision, one more at every save

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import adapters.db.tables


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crm_sync_due_at', adapters.db.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_crm_sync_due_at'), ['crm_sync_due_at'], unique=False)
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('revision')
        batch_op.drop_index(batch_op.f('ix_accounts_crm_sync_due_at'))
        batch_op.drop_column('crm_sync_due_at')
