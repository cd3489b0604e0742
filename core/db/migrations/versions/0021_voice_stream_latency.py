"""voice_turn: the latency stages of streamed turns (endpointing, agent first token, first audio)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ('endpoint_ms', 'agent_first_token_ms', 'tts_first_audio_ms', 'first_audio_ms')


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column('voice_turn', sa.Column(name, sa.Float(), nullable=False, server_default='0'))


def downgrade() -> None:
    for name in _COLUMNS:
        op.drop_column('voice_turn', name)
