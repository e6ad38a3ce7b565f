"""Migration scripts, applied in order by Alembic (it skips this file)."""
