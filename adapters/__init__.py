"""Adapters: the database, the broker and the clients of other systems."""
