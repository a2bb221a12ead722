"""accounts, organisations, roles, studio sessions, audit log, presets and reminders; every
existing room becomes a room of the default organisation

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:00:00.000000

"""
import time
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    organisation = op.create_table('organisation',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(organisation, [{'id': 'default', 'name': 'Livewall', 'created_ms': int(time.time() * 1000)}])
    op.create_table('account',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_account_email'), 'account', ['email'], unique=True)
    op.create_table('membership',
    sa.Column('org_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organisation.id'], ),
    sa.PrimaryKeyConstraint('org_id', 'account_id')
    )
    op.create_index(op.f('ix_membership_account_id'), 'membership', ['account_id'], unique=False)
    op.create_table('roomrole',
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['room_id'], ['room.id'], ),
    sa.PrimaryKeyConstraint('room_id', 'account_id')
    )
    op.create_table('studiosession',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_ms', sa.BigInteger(), nullable=False),
    sa.Column('expires_ms', sa.BigInteger(), nullable=False),
    sa.Column('revoked_ms', sa.BigInteger(), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('how', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_studiosession_account_id'), 'studiosession', ['account_id'], unique=False)
    op.create_table('onetimelink',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('expires_ms', sa.BigInteger(), nullable=False),
    sa.Column('used_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_onetimelink_account_id'), 'onetimelink', ['account_id'], unique=False)
    op.create_table('auditentry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.String(length=32), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=True),
    sa.Column('account_id', sa.String(length=32), nullable=True),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_auditentry_org_at', 'auditentry', ['org_id', 'at_ms'], unique=False)
    op.create_index(op.f('ix_auditentry_room_id'), 'auditentry', ['room_id'], unique=False)
    op.create_table('preset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('launched_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['room_id'], ['room.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_preset_room_id'), 'preset', ['room_id'], unique=False)
    op.create_table('reminder',
    sa.Column('room_id', sa.String(length=32), nullable=False),
    sa.Column('viewer_id', sa.String(length=32), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('sent_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['room_id'], ['room.id'], ),
    sa.ForeignKeyConstraint(['viewer_id'], ['viewer.id'], ),
    sa.PrimaryKeyConstraint('room_id', 'viewer_id')
    )
    # Existing rooms become rooms of the default organisation (the server default fills them).
    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_id', sa.String(length=32), nullable=False, server_default='default'))
        batch_op.add_column(sa.Column('scheduled_ms', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('description', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('cover', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('host_key_enabled', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('cloned_from', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_room_org_id'), ['org_id'], unique=False)
        batch_op.create_foreign_key('fk_room_org_id', 'organisation', ['org_id'], ['id'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.drop_constraint('fk_room_org_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_room_org_id'))
        batch_op.drop_column('cloned_from')
        batch_op.drop_column('host_key_enabled')
        batch_op.drop_column('cover')
        batch_op.drop_column('description')
        batch_op.drop_column('scheduled_ms')
        batch_op.drop_column('org_id')
    op.drop_table('reminder')
    op.drop_index(op.f('ix_preset_room_id'), table_name='preset')
    op.drop_table('preset')
    op.drop_index(op.f('ix_auditentry_room_id'), table_name='auditentry')
    op.drop_index('ix_auditentry_org_at', table_name='auditentry')
    op.drop_table('auditentry')
    op.drop_index(op.f('ix_onetimelink_account_id'), table_name='onetimelink')
    op.drop_table('onetimelink')
    op.drop_index(op.f('ix_studiosession_account_id'), table_name='studiosession')
    op.drop_table('studiosession')
    op.drop_table('roomrole')
    op.drop_index(op.f('ix_membership_account_id'), table_name='membership')
    op.drop_table('membership')
    op.drop_index(op.f('ix_account_email'), table_name='account')
    op.drop_table('account')
    op.drop_table('organisation')
