"""The training worker: Celery app and task (``celery_app``, ``tasks``), the training engine
(``engine``), models (``architectures``), data preparation (``data``) and metric sinks (``sink``)."""
