"""The migrations build exactly the schema the models declare (tables, columns, indexes), on
SQLite and PostgreSQL, and step down and up again cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lstmq.db.migrate import alembic_config, upgrade
from lstmq.db.schema import Base


def schema_drift(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def test_migrated_schema_is_the_models_schema(migrated_db):
    assert schema_drift(migrated_db) == []


def test_latest_migration_steps_down_and_up_again(migrated_db):
    command.downgrade(alembic_config(migrated_db), "-1")
    assert schema_drift(migrated_db) != []  # the step down changed something the models declare
    upgrade(migrated_db)
    assert schema_drift(migrated_db) == []
