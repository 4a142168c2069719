"""Facts about the machine a benchmark ran on, printed with its results (shared by bench/*)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def load_average() -> float:
    """The 1-minute load average (-1 where unknown): other work on the box skews timings."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"
