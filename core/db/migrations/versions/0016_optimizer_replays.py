"""optimizer counterfactual replays and their per-run results

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('replay',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('run_ids', _JSON, nullable=False),
    sa.Column('metric', _JSON, nullable=True),
    sa.Column('summary', _JSON, nullable=True),
    sa.Column('error', _JSON, nullable=True),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_replay_tenant_agent_created', 'replay', ['tenant_id', 'agent_id', 'created_at'], unique=False)
    op.create_table('replay_result',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('replay_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('recorded_output', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('candidate_output', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('recorded_score', sa.Float(), nullable=True),
    sa.Column('recorded_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('candidate_score', sa.Float(), nullable=True),
    sa.Column('candidate_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('tool_calls', _JSON, nullable=False),
    sa.Column('from_recording', sa.Integer(), nullable=False),
    sa.Column('not_in_recording', sa.Integer(), nullable=False),
    sa.Column('error', _JSON, nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['replay_id'], ['replay.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('replay_id', 'run_id')
    )


def downgrade() -> None:
    op.drop_table('replay_result')
    op.drop_index('ix_replay_tenant_agent_created', table_name='replay')
    op.drop_table('replay')
