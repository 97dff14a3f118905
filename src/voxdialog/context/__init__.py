"""Conversation context: the recent messages a session's brain sees, cached before the DB."""

from voxdialog.context.cache import CacheStats, ContextCache, Loader

__all__ = ["CacheStats", "ContextCache", "Loader"]
