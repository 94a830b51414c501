"""Random identifiers made on the request path: request ids, the ids of generated answers.

From the process's Mersenne Twister (``random``, which reseeds itself from the system in a
forked child), not ``os.urandom`` or ``uuid.uuid4``: those read the system's generator with
the GIL released, and a thread waiting for the GIL (granian's, handing the event loop new
requests) takes it meanwhile, so one id cost the event loop two thread switches. These ids
must be unique, not unguessable; keys and credentials keep using ``secrets``.
"""

from __future__ import annotations

import random

_bits = random.getrandbits


def hex32() -> str:
    """128 random bits as 32 lowercase hex digits: the shape of ``uuid.uuid4().hex``."""
    return f"{_bits(128):032x}"
