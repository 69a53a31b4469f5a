"""Storage shared by the service, the arena and the CLI: the tables and sessions (``db``), stored
images (``files``), API keys, quotas, the Image Creator's allowances, attempt counters, and the
Alembic migrations that create and upgrade the schema."""
