"""good standing: when each invoice was paid and the attempts it took; the last allowance decision of an account

Invoices paid before this migration have no paid_at: they do not count towards good standing
(their payment time was not kept), so standing builds up from the invoices paid from now on.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 06:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from adapters.db.tables import UTCDateTime


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('invoices', sa.Column('paid_at', UTCDateTime(timezone=True), nullable=True))
    op.add_column('invoices', sa.Column('attempt_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('accounts', sa.Column('allowance_note', sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('accounts', 'allowance_note')
    op.drop_column('invoices', 'attempt_count')
    op.drop_column('invoices', 'paid_at')
