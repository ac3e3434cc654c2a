"""Peak resident memory of this process and all its descendants, sampled from /proc.

No dependency: psutil is not in the project's environment and /proc has all it needs (Linux).
A daemon thread sums the RSS of the process tree every ``interval`` seconds and keeps the
peak per phase (``phase("...")``) and overall. Sampling misses spikes shorter than the interval.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and every descendant right now."""
    kids, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(kids.get(pid, []))
    return total


class PeakMemory:
    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peaks, self.current = interval, {}, "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-memory")

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def phase(self, name: str) -> None:
        self.current = name

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            rss = tree_rss(me)
            phase = self.current
            self.peaks[phase] = max(self.peaks.get(phase, 0), rss)
            self._stop.wait(self.interval)

    def report(self) -> dict[str, float]:
        """Peak MiB per phase and ``overall``."""
        out = {k: round(v / 2**20) for k, v in self.peaks.items()}
        out["overall"] = max(out.values(), default=0)
        return out


def sample_once() -> float:
    return tree_rss(os.getpid()) / 2**20


__all__ = ["PeakMemory", "tree_rss"]
