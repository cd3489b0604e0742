"""optimizer datasets and their examples

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dataset',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('train', sa.Integer(), nullable=False),
    sa.Column('validation', sa.Integer(), nullable=False),
    sa.Column('test', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_by_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_by_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_dataset_tenant_agent_created', 'dataset', ['tenant_id', 'agent_id', 'created_at'], unique=False)
    op.create_table('dataset_example',
    sa.Column('dataset_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('example_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('split', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('input', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('expected', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('rubric', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('output', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('source_run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('feedback_score', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('dataset_id', 'position'),
    sa.UniqueConstraint('dataset_id', 'example_id')
    )
    op.create_index('ix_dataset_example_split', 'dataset_example', ['dataset_id', 'split', 'position'], unique=False)
    op.create_index(op.f('ix_dataset_example_tenant_id'), 'dataset_example', ['tenant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_dataset_example_tenant_id'), table_name='dataset_example')
    op.drop_index('ix_dataset_example_split', table_name='dataset_example')
    op.drop_table('dataset_example')
    op.drop_index('ix_dataset_tenant_agent_created', table_name='dataset')
    op.drop_table('dataset')
