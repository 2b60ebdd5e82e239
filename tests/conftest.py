"""Test-wide configuration; service fixtures live in the conftest of the layer that needs them."""
