"""How many CPU cores are free for the encoder now."""

from __future__ import annotations

import os


def _busy_now(cores: int, seconds: float = 0.1) -> float | None:
    """Cores busy over the next ``seconds``, from /proc/stat; None where there is none."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # all time, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return cores * (1 - (idle1 - idle0) / (total1 - total0))


def free_cores(measure: bool = False) -> int:
    """Cores not already busy: torch on an oversubscribed core slows down many times over.

    The load average is instant to read but trails by a minute (just after another heavy
    job it still counts it); ``measure`` samples the CPU for a tenth of a second instead,
    for commands that run long enough to care.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    busy = _busy_now(cores) if measure else None
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:  # pragma: no cover
            busy = 0.0
    return max(1, cores - int(busy + 0.5))
