"""Alembic migrations of the storage package (a package so env.py ships in wheels)."""
