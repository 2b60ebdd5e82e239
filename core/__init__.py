"""What the api, the store, the worker and the client agree on, with none of their machinery.

Importing anything here loads neither torch, SQLAlchemy, FastAPI nor Celery (the layering test
checks it in a fresh interpreter): the experiment spec and its validation (``core.spec``), the
datasets, splits and split arrays (``core.datasets``, ``core.splits``), the run statuses and
their transitions (``core.statuses``), which way a metric improves (``core.metrics``), the
queue contract (``core.queue``) and the process settings (``core.settings``)."""
