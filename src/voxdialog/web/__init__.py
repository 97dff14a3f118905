"""The talk page: static HTML, CSS, JavaScript and AudioWorklets served at ``/``."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
