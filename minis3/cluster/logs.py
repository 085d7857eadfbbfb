"""One log format for every process: time, process name, level, message."""
from __future__ import annotations

import logging
import os
import sys


def setup_logging(name: str) -> None:
    level = os.environ.get("MINIS3_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(stream=sys.stderr, level=level,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
