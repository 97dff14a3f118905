"""VoxDialog: a self-hosted, real-time voice conversation server."""

__version__ = "0.1.0"
