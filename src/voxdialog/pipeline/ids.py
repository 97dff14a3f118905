"""Identifiers we mint for the protocol (``sess_…``, ``item_…``, ``resp_…``, ``event_…``).

Every server event gets one, dozens per turn per session: drawing each from the kernel
(``secrets.token_hex``, one ``getrandom`` call) was 4 % of a loaded worker. The bytes still
come from ``os.urandom``, 4 KiB at a time, kept per thread.
"""

from __future__ import annotations

import os
import threading

_ID_BYTES = 10
_POOL_BYTES = 4096


class _Pool(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.at = 0


_pool = _Pool()


def new_id(prefix: str) -> str:
    """A random id such as ``item_3f9a…`` (prefix + underscore + 20 hex chars)."""
    pool = _pool
    if pool.at + _ID_BYTES > len(pool.data):
        pool.data, pool.at = os.urandom(_POOL_BYTES), 0
    start = pool.at
    pool.at = start + _ID_BYTES
    return f"{prefix}_{pool.data[start : start + _ID_BYTES].hex()}"
