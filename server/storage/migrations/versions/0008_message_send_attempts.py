"""message send attempts: the attempt that contacted the provider, and uncertain re-sends

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 19:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('uncertain_resends', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('uncertain_resends')
        batch_op.drop_column('attempt_id')
