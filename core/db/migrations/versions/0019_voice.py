"""voice sessions, their turns and their recordings

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_LIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table('voice_session',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_version', sa.Integer(), nullable=False),
    sa.Column('thread_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('idle_timeout_s', sa.Float(), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('experiment_arm', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('error', _JSON, nullable=True),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_voice_session_tenant_created', 'voice_session', ['tenant_id', 'created_at'], unique=False)
    op.create_index('ix_voice_session_tenant_subject', 'voice_session', ['tenant_id', 'subject'], unique=False)
    op.create_index('ix_voice_session_live', 'voice_session', ['tenant_id'], unique=False, postgresql_where=_LIVE)
    op.create_table('voice_turn',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('transcript', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reply_text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('user_audio_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('reply_audio_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('user_audio_s', sa.Float(), nullable=False),
    sa.Column('reply_audio_s', sa.Float(), nullable=False),
    sa.Column('vad_ms', sa.Float(), nullable=False),
    sa.Column('stt_ms', sa.Float(), nullable=False),
    sa.Column('agent_ms', sa.Float(), nullable=False),
    sa.Column('tts_ms', sa.Float(), nullable=False),
    sa.Column('total_ms', sa.Float(), nullable=False),
    sa.Column('interrupted', sa.Boolean(), nullable=False),
    sa.Column('error', _JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['voice_session.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'seq')
    )
    op.create_index(op.f('ix_voice_turn_tenant_id'), 'voice_turn', ['tenant_id'], unique=False)
    op.create_table('voice_audio',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('session_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_voice_audio_tenant_session', 'voice_audio', ['tenant_id', 'session_id'], unique=False)
    op.create_index(op.f('ix_voice_audio_created_at'), 'voice_audio', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_voice_audio_created_at'), table_name='voice_audio')
    op.drop_index('ix_voice_audio_tenant_session', table_name='voice_audio')
    op.drop_table('voice_audio')
    op.drop_index(op.f('ix_voice_turn_tenant_id'), table_name='voice_turn')
    op.drop_table('voice_turn')
    op.drop_index('ix_voice_session_live', table_name='voice_session', postgresql_where=_LIVE)
    op.drop_index('ix_voice_session_tenant_subject', table_name='voice_session')
    op.drop_index('ix_voice_session_tenant_created', table_name='voice_session')
    op.drop_table('voice_session')
