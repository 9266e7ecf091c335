"""Sample a running process with py-spy and name the functions that take its time.

Used by ``bench/run.py --profile`` on the Rasa server, the action server and the duty service
while the heaviest load runs. ``py-spy record --format raw`` writes collapsed stacks ("frame;
frame;frame count"); ``top_functions`` turns them into the functions with the most samples
on top of the stack (self) and anywhere in it (inclusive, our own code only), which is what
the report quotes.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

PY_SPY = Path(sys.executable).with_name("py-spy")


def machine_jiffies() -> tuple[int, int]:
    """(busy, all) clock ticks of every core since boot, from ``/proc/stat`` (idle and
    iowait are not busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def start(pid: int, seconds: float, out: Path, rate: int = 50) -> Optional[subprocess.Popen]:
    """py-spy record in the background (non-blocking: the process is never paused; idle
    threads are not sampled)."""
    if not PY_SPY.exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file path without the line)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.10/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


# Leaf frames of threads that are waiting, not working: a thread blocked in C (a queue, the
# event loop's poll) shows the Python function that made the call as its leaf frame, and
# --nonblocking sampling cannot always tell. Samples ending here count as idle.
IDLE_LEAVES = frozenset({
    "_worker (concurrent/futures/thread.py)",  # executor threads waiting for work
    "serve (sanic/server/runners.py)",  # sanic's uvloop polling
    "run_forever (asyncio/base_events.py)",
    "select (selectors.py)",
    "wait (threading.py)",
    "_serve (bot/channels/turnloop.py)",  # the SMS turn loop's uvloop polling
    "_serve (bot/store/dbthread.py)",  # the SMS channel's database thread, queue empty
    "run_app (aiohttp/web.py)",
})


def top_functions(raw: Path, n: int = 8, ours: tuple[str, ...] = ("bot/", "actions/")
                  ) -> dict[str, Any]:
    """Shares of the busy samples: on top of the stack (self), and anywhere in it for our
    own code (inclusive). Waiting threads (``IDLE_LEAVES``) are set apart."""
    self_counts: Counter[str] = Counter()
    incl_ours: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += k
        if frames[-1] in IDLE_LEAVES:
            idle += k
            continue
        self_counts[frames[-1]] += k
        for f in set(frames):
            if f.partition(" (")[2].startswith(ours):
                incl_ours[f] += k
    busy = max(total - idle, 1)
    return {
        "samples": total,
        "busy_share": round((total - idle) / max(total, 1), 3),
        "active_samples": total - idle,
        "top_self": [(f, round(c / busy, 3)) for f, c in self_counts.most_common(n)],
        "top_ours_inclusive": [(f, round(c / busy, 3)) for f, c in incl_ours.most_common(n)],
    }
