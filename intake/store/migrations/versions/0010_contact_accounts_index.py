"""An index for a contact's accounts: the directory reads them for every message.

`account_contacts` is keyed (account_id, contact_id), which answers "the
contacts of an account" but not "the accounts of a contact", the look-up the
decision makes for every sender; without this it scanned the whole table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 02:10:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('account_contacts', schema=None) as batch_op:
        batch_op.create_index('ix_account_contacts_contact_id', ['contact_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account_contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_account_contacts_contact_id')
