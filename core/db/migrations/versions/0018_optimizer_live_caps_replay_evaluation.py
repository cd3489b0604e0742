"""optimizer: live runs and replays counted per tenant, replay evaluation, tool-call counts of evaluations

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.add_column('optimizer_run', sa.Column('evaluation', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='safe'))
    op.add_column('optimizer_eval', sa.Column('from_recording', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('optimizer_eval', sa.Column('not_in_recording', sa.Integer(), nullable=False, server_default='0'))
    op.create_index('ix_optimizer_run_tenant_live', 'optimizer_run', ['tenant_id'], unique=False, postgresql_where=_LIVE)
    op.create_index('ix_replay_tenant_live', 'replay', ['tenant_id'], unique=False, postgresql_where=_LIVE)


def downgrade() -> None:
    op.drop_index('ix_replay_tenant_live', table_name='replay', postgresql_where=_LIVE)
    op.drop_index('ix_optimizer_run_tenant_live', table_name='optimizer_run', postgresql_where=_LIVE)
    op.drop_column('optimizer_eval', 'not_in_recording')
    op.drop_column('optimizer_eval', 'from_recording')
    op.drop_column('optimizer_run', 'evaluation')
