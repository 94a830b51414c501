"""The routes outside the pipeline: ``GET /v1/models``, ``/healthz``, ``/readyz`` and
``/metrics``. Each takes the worker, the request context, the RSGI scope and protocol, and
answers (or raises a FloopyError). The model endpoints are in ``floopy.endpoints``."""
