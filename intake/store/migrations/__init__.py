"""The Alembic environment of intake's database (run through `intake.store.migrate`)."""
