"""Owner-only files and folders for what the server keeps on disk (database, keys, audio).

Other local users must not read the database or the keys, whatever the umask: folders are
made 0700 and files 0600 when created, and tightened at start when an older release (or a
copy) left them wider. SQLite gives its ``-wal`` and ``-shm`` files the mode of the database
file, so creating that file 0600 before SQLite opens it covers all three.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) owner-only, or tighten it if it is ours."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only if missing, or tighten it if it is ours.

    The folder above it is made with `private_dir`.
    """
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)


def tighten_if_present(path: Path) -> None:
    """Make an existing file owner-only (a database's ``-wal`` left by an older release)."""
    if path.exists():
        _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & ~mode == 0:
        return
    if info.st_uid != os.getuid():
        # Someone else's folder (a shared parent, say): not ours to change; say so once.
        log.warning("a data path is readable by others", extra={"path": str(path)})
        return
    os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
