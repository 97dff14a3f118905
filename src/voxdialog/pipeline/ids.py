"""Identifiers we mint for the protocol (``sess_…``, ``item_…``, ``resp_…``, ``event_…``)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A random id such as ``item_3f9a…`` (prefix + underscore + 20 hex chars)."""
    return f"{prefix}_{secrets.token_hex(10)}"
