"""Durability helpers shared by every process that writes files."""
from __future__ import annotations

import os


def fsync_dir(path) -> None:
    """fsync a directory, so a rename or a new file in it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
