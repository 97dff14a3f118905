"""Shim: the clock lives in ``voxdialog.clock`` (removed when pipeline/ is migrated)."""

from voxdialog.clock import Clock as Clock
from voxdialog.clock import MonotonicClock as MonotonicClock
