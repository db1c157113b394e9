"""The Alembic environment, configured by `intake.store.migrate` rather than an alembic.ini.

`intake.store.migrate` hands over an open connection (with its transaction
begun and the migration lock taken) in `config.attributes["connection"]`; the
migrations run inside that transaction. Autogenerate compares against the
models, renders batch operations (SQLite can only alter a table by copying
it) and writes intake's own column types as the plain types they store.
"""
from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext

from intake.store.models import Base, UTCDateTime


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """A migration must not import the models (they change after it is written): UTCDateTime is a DateTime."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations() -> None:
    connection: sa.Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run intake's migrations through intake.store.migrate (`intake db upgrade`)")
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      render_item=render_item, compare_type=True, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
