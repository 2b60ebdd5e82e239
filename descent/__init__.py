"""The ``descent`` command and the Python client (``descent.client``, HTTP only)."""

__version__ = "0.1.0"
