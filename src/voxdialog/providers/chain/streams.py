"""How a chain opens, reads and abandons its providers' streams."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from voxdialog.providers.base import close_provider

# The package's one logger, named as the module was before the package was split.
log = logging.getLogger("voxdialog.providers.chain")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Opened(Generic[_T]):
    """A stream that produced its first piece of content (``None``: it ended without any)."""

    stream: AsyncIterator[_T]
    first: _T | None


async def first_item(stream: AsyncIterator[_T], has_content: Callable[[_T], bool]) -> Opened[_T]:
    """Pull until the first piece with content (empty pieces are dropped); close on failure."""
    try:
        while True:
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return Opened(stream, None)
            if has_content(item):
                return Opened(stream, item)
    except BaseException:
        await aclose_quietly(stream)
        raise


async def first_and_close(stream: AsyncIterator[_T]) -> None:
    """Read one piece of ``stream`` (if any), then close it."""
    try:
        await anext(stream, None)
    finally:
        await aclose_quietly(stream)


async def aclose_quietly(stream: AsyncIterator[object]) -> None:
    """Close an abandoned stream; a provider's error while closing is logged, not raised."""
    try:
        await close_provider(stream)
    except Exception as e:
        log.debug("provider stream failed to close", extra={"error_kind": type(e).__name__})
