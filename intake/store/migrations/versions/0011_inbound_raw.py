"""The raw bytes of inbound messages in a table of their own, `inbound_raw`.

SQLite writes a whole row again when any column of it changes, so with the
bytes in `inbound_messages` every change to a message's row (taking it,
recording its outcome) copied them twice in memory and wrote them again: a
message with a 25 MB attachment cost some 70 MB more than it needed at each.
The bytes are copied across as they are; nothing else changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:01:06.914129
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbound_raw',
    sa.Column('inbound_message_id', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_messages.id'],
                            name=op.f('inbound_raw_inbound_message_id_fkey')),
    sa.PrimaryKeyConstraint('inbound_message_id', name=op.f('inbound_raw_pkey'))
    )
    op.execute("INSERT INTO inbound_raw (inbound_message_id, raw) SELECT id, raw FROM inbound_messages")
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_column('raw')


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw', sa.LargeBinary(), nullable=True))
    op.execute("UPDATE inbound_messages SET raw = (SELECT raw FROM inbound_raw"
               " WHERE inbound_raw.inbound_message_id = inbound_messages.id)")
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table('inbound_raw')
