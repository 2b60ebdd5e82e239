"""The HTTP api (FastAPI): one package per resource, each with router, service and schemas.
It never imports torch or the worker; training is requested through the broker by task name."""
