"""Experiments: create (validated against the catalog and the split), list, cancel, clone, delete."""
