"""Database schema, engine and queries (SQLAlchemy 2.0; PostgreSQL and SQLite)."""
