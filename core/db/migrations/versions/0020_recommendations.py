"""recommendations: findings of the recommendation engine, their evidence, action, status and outcome

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('recommendation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target', _JSON, nullable=False),
    sa.Column('target_key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('evidence', _JSON, nullable=False),
    sa.Column('expected_gain', _JSON, nullable=False),
    sa.Column('action', _JSON, nullable=False),
    sa.Column('basis', _JSON, nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('previous_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('result', _JSON, nullable=True),
    sa.Column('outcome', _JSON, nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recommendation_tenant_created', 'recommendation', ['tenant_id', 'created_at'], unique=False)
    op.create_index(
        'ix_recommendation_tenant_fingerprint', 'recommendation', ['tenant_id', 'fingerprint', 'created_at'], unique=False
    )
    op.create_index(
        'ux_recommendation_open_fingerprint', 'recommendation', ['tenant_id', 'fingerprint'], unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index('ux_recommendation_open_fingerprint', table_name='recommendation')
    op.drop_index('ix_recommendation_tenant_fingerprint', table_name='recommendation')
    op.drop_index('ix_recommendation_tenant_created', table_name='recommendation')
    op.drop_table('recommendation')
