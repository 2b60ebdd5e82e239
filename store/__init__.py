"""Persistence and the shared experiment spec: what the api writes and the worker reads."""
