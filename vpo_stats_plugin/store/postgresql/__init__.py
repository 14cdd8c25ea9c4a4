"""The PostgreSQL engine of the store: one server that several nodes record into (CONTRACT
section 7). Its connection and its spelling of the neutral SQL live here; the store's reads and
writes are the same modules SQLite uses."""
