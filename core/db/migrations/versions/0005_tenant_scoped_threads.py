"""tenant-scoped thread sequences; platform administrators shown as the platform in tenant audit logs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A thread id names a thread within one tenant: sequences never cross tenants.
    op.drop_constraint('thread_message_thread_id_seq_key', 'thread_message', type_='unique')
    op.create_unique_constraint('uq_thread_message_tenant_thread_seq', 'thread_message', ['tenant_id', 'thread_id', 'seq'])
    op.drop_constraint('thread_compaction_thread_id_upto_seq_key', 'thread_compaction', type_='unique')
    op.create_unique_constraint(
        'uq_thread_compaction_tenant_thread_upto', 'thread_compaction', ['tenant_id', 'thread_id', 'upto_seq']
    )
    # Tenant-visible audit events never name a platform user: keep the real actor in the platform log.
    op.execute(
        """
        insert into audit_event (id, tenant_id, actor_id, actor_kind, action, target_type, target_id, data, created_at)
        select 'aud_p' || substr(a.id, 5), null, a.actor_id, a.actor_kind, a.action, a.target_type, a.target_id,
               a.data, a.created_at
        from audit_event a join "user" u on u.id = a.actor_id
        where u.is_platform_admin and a.tenant_id is not null
        """
    )
    op.execute(
        """
        update audit_event set actor_id = 'platform', actor_kind = 'platform'
        where tenant_id is not null and actor_id in (select id from "user" where is_platform_admin)
        """
    )


def downgrade() -> None:
    op.drop_constraint('uq_thread_compaction_tenant_thread_upto', 'thread_compaction', type_='unique')
    op.create_unique_constraint('thread_compaction_thread_id_upto_seq_key', 'thread_compaction', ['thread_id', 'upto_seq'])
    op.drop_constraint('uq_thread_message_tenant_thread_seq', 'thread_message', type_='unique')
    op.create_unique_constraint('thread_message_thread_id_seq_key', 'thread_message', ['thread_id', 'seq'])
