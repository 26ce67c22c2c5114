"""SQLAlchemy tables, engine and repositories."""
