"""sources (entry links per channel), shop orders with amounts and first/last-touch attribution;
the source code on attendance, intents and claims; UTM settings of follow-up links

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 07:28:05.254819

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('viewer_id', sa.String(length=32), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('discount_id', sa.Integer(), nullable=True),
    sa.Column('claim_id', sa.Integer(), nullable=True),
    sa.Column('draw_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('first_ref', sa.String(length=16), nullable=True),
    sa.Column('last_ref', sa.String(length=16), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('refunded_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('placed_ms', sa.BigInteger(), nullable=True),
    sa.Column('paid_ms', sa.BigInteger(), nullable=True),
    sa.Column('refunded_ms', sa.BigInteger(), nullable=True),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['room_id'], ['room.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('room_id', 'order_id', name='uq_order_room_order')
    )
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.create_index('ix_order_room_discount', ['room_id', 'discount_id'], unique=False)
        batch_op.create_index('ix_order_room_first_ref', ['room_id', 'first_ref'], unique=False)
        batch_op.create_index('ix_order_room_paid', ['room_id', 'paid_ms'], unique=False)
        batch_op.create_index('ix_order_room_product', ['room_id', 'product_id'], unique=False)
        batch_op.create_index('ix_order_room_ref', ['room_id', 'last_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_viewer_id'), ['viewer_id'], unique=False)

    op.create_table('sourcecode',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('archived', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['room_id'], ['room.id'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('sourcecode', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sourcecode_room_id'), ['room_id'], unique=False)

    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref', sa.String(length=16), nullable=True))

    with op.batch_alter_table('intentevent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_intentevent_ref', ['room_id', 'ref'], unique=False)

    with op.batch_alter_table('roomviewer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_ref', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('last_ref', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('last_message_id', sa.Integer(), nullable=True))

    with op.batch_alter_table('followupsettings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('utm', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('utm_source', sa.String(length=40), nullable=True))



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('followupsettings', schema=None) as batch_op:
        batch_op.drop_column('utm_source')
        batch_op.drop_column('utm')

    with op.batch_alter_table('roomviewer', schema=None) as batch_op:
        batch_op.drop_column('last_message_id')
        batch_op.drop_column('last_ref')
        batch_op.drop_column('first_ref')

    with op.batch_alter_table('intentevent', schema=None) as batch_op:
        batch_op.drop_index('ix_intentevent_ref')
        batch_op.drop_column('ref')

    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_column('ref')

    with op.batch_alter_table('sourcecode', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sourcecode_room_id'))

    op.drop_table('sourcecode')
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_viewer_id'))
        batch_op.drop_index('ix_order_room_ref')
        batch_op.drop_index('ix_order_room_product')
        batch_op.drop_index('ix_order_room_paid')
        batch_op.drop_index('ix_order_room_first_ref')
        batch_op.drop_index('ix_order_room_discount')

    op.drop_table('order')
