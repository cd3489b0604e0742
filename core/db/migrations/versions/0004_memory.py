"""memory: long-term memories on pgvector (HNSW, cosine) and thread compactions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 03:40:00
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.execute('create extension if not exists vector')
    op.create_table('memory',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('metadata', JSON, nullable=False),
    sa.Column('embedding', pgvector.sqlalchemy.Vector(384), nullable=True),
    sa.Column('embedder', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('importance', sa.Float(), nullable=False),
    sa.Column('use_count', sa.Integer(), nullable=False),
    sa.Column('source_run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('source_step_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_memory_tenant_subject', 'memory', ['tenant_id', 'subject', 'created_at'], unique=False)
    op.execute(
        'create index ix_memory_embedding_hnsw on memory using hnsw (embedding vector_cosine_ops)'
        ' with (m = 16, ef_construction = 200)'
    )
    op.create_table('thread_compaction',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('thread_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('upto_seq', sa.Integer(), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('tokens_before', sa.Integer(), nullable=False),
    sa.Column('tokens_after', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('thread_id', 'upto_seq')
    )
    op.create_index(op.f('ix_thread_compaction_tenant_id'), 'thread_compaction', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_thread_compaction_thread_id'), 'thread_compaction', ['thread_id'], unique=False)
    op.create_index('ix_thread_message_tenant_subject', 'thread_message', ['tenant_id', 'subject'], unique=False)
    op.create_index('ix_run_tenant_subject', 'run', ['tenant_id', 'subject'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_run_tenant_subject', table_name='run')
    op.drop_index('ix_thread_message_tenant_subject', table_name='thread_message')
    op.drop_table('thread_compaction')
    op.drop_table('memory')
