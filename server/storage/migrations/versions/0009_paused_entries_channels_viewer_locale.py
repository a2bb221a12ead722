"""paused journeys keep (or skip) their entries, processes announce their channels, viewer language

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00.000000

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
    op.create_table('followupprocess',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('channels', sa.String(length=200), nullable=False),
    sa.Column('seen_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_followupprocess_seen_ms'), 'followupprocess', ['seen_ms'], unique=False)
    op.create_table('pausedentry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('journey_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('viewer_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('ended_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['intentevent.id'], ),
    sa.ForeignKeyConstraint(['journey_id'], ['journey.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('journey_id', 'event_id')
    )
    op.create_index('ix_pausedentry_held', 'pausedentry', ['status', 'journey_id'], unique=False)
    with op.batch_alter_table('journey', schema=None) as batch_op:
        batch_op.add_column(sa.Column('while_paused', sa.String(length=8), server_default='hold', nullable=False))
    with op.batch_alter_table('viewer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('viewer', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('journey', schema=None) as batch_op:
        batch_op.drop_column('while_paused')
    op.drop_index('ix_pausedentry_held', table_name='pausedentry')
    op.drop_table('pausedentry')
    op.drop_index(op.f('ix_followupprocess_seen_ms'), table_name='followupprocess')
    op.drop_table('followupprocess')
