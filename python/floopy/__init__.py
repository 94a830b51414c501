"""Floopy: a self-hosted, OpenAI-compatible AI gateway."""

import os
from importlib.metadata import PackageNotFoundError, version

# numpy (the vector tiers, the local firewall, clickhouse-connect) loads OpenBLAS, which starts
# a thread per core that spins for work after every call. The workers and the log store
# already take the cores, and their matrices are too small to gain from threads: one thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    __version__ = version("floopy")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
