"""The duty service's cold start and resident memory at rest, on SQLite (issue 25).

``python bench/duty_footprint.py [--runs 3] [--root DIR]``: starts ``python -m bot.duty`` from
``--root`` (this checkout by default; another checkout measures the code before a change)
against a new SQLite database each run, times launch until ``/health`` answers (any status:
the Rasa and action servers are not started), waits ``--rest`` seconds and reads ``VmRSS``.
Prints one JSON object: each run and the medians. Figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def answered(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True  # an answer, if not a happy one
    except OSError:
        return False


def one_run(root: Path, rest_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="duty-footprint-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "REDIS_"))}
        env.update(PYTHONPATH=str(root), DATABASE_URL=f"sqlite:///{tmp}/line.db",
                   DUTY_PORT=str(port), RASA_PORT=str(free_port()),
                   ACTIONS_PORT=str(free_port()), TF_CPP_MIN_LOG_LEVEL="2",
                   RASA_TELEMETRY_ENABLED="false", SQLALCHEMY_SILENCE_UBER_WARNING="1")
        launched = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "bot.duty"], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/health"
            while not answered(url):
                if proc.poll() is not None:
                    raise RuntimeError(f"bot.duty exited with {proc.returncode}")
                if time.monotonic() - launched > 120:
                    raise TimeoutError("no /health in 120 s")
                time.sleep(0.05)
            ready = time.monotonic() - launched
            time.sleep(rest_s)
            return {"cold_start_s": round(ready, 2), "rss_at_rest_mb": round(rss_mb(proc.pid), 1)}
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rest", type=float, default=10.0, help="seconds at rest before VmRSS")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    runs = [one_run(args.root.resolve(), args.rest) for _ in range(args.runs)]
    print(json.dumps({
        "root": str(args.root), "runs": runs,
        "median_cold_start_s": statistics.median(r["cold_start_s"] for r in runs),
        "median_rss_at_rest_mb": statistics.median(r["rss_at_rest_mb"] for r in runs),
    }, indent=1))


if __name__ == "__main__":
    main()
