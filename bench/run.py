"""``make bench``: the whole line under load, against a stock Rasa bot measured in the same run.

    PYTHONPATH=. .venv/bin/python bench/run.py            # the full run (~14 min on 2 cores)
    PYTHONPATH=. .venv/bin/python bench/run.py --quick    # a few minutes, for development
    BENCH_QUICK=1 make bench                              # the same through make

Steps, in one process (the fake Twilio API and the simulated people run here):

1. The stock bot's model (``rasa init --no-prompt`` in a temporary folder, cached under
   ``var/bench/`` by Rasa version, so only the first run trains it).
2. The line, started as ``make run`` starts it (``bench/line.py``): cold start, memory at rest.
3. Simulated conversations (``bench/load.py``) through the REST channel, then through signed
   SMS webhooks, at 1, 10 and 50 conversations at a time: turn latency p50/p95/p99,
   throughput, emergency reply latency (imminent risk -> the reply with 999), risk message ->
   first staff alert at the fake Twilio API, webhook acknowledgement, memory under load.
4. The stock bot through REST at the same concurrency: cold start, memory, latency, throughput.
   Its heaviest level is also measured before step 2, and the two runs pooled (latency over
   both runs' turns, throughput their mean), so that the machine's drift in speed during the
   run does not fall on one side of the ratios (``--no-bracket``: after the line only).
5. ``bench/sms_ack.py``: the SMS webhook's acknowledgement at 100 requests/s.
6. Results to ``bench/results/<date>.json`` with a plot, and the tables in ``bench/README.md``
   (quick runs write to ``var/bench/`` and leave the README alone).

Targets are reported (met / NOT met), not asserted: a loaded machine gives noisy figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import load, report  # noqa: E402
from bench import profiling as prof  # noqa: E402  (named so as not to shadow stdlib "profile")
from bench.line import (  # noqa: E402
    CACHE_DIR,
    PSEUDONYM_KEY,
    RASA_TOKEN,
    Baseline,
    Line,
    baseline_model,
    create_database,
    drop_database,
    rasa_version,
)

RESULTS_DIR = ROOT / "bench" / "results"


class RssSampler:
    """Peak resident memory of each process while a load runs (read from /proc each second)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.peak: dict[str, float] = {}
        self._task: Optional[asyncio.Task] = None

    async def _run(self) -> None:
        while True:
            for name, mb in (await asyncio.to_thread(self.target.rss)).items():
                self.peak[name] = max(self.peak.get(name, 0.0), mb)
            await asyncio.sleep(1.0)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
        # What the bench and the fault run write themselves (results, README tables) does
        # not make the code under test differ from the commit.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!bench/results", ":!bench/README.md"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        return out.stdout.strip() + ("+changes" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run_line(args: argparse.Namespace, results: dict[str, Any]) -> None:
    fake = load.FakeTwilio()
    await fake.start()
    line = Line(fake.url, db_kind=args.db, keep_logs=args.keep_logs)
    print(f"starting the line ({args.db}) ...", flush=True)
    try:
        cold = await asyncio.to_thread(line.start)
        # The line answers from here; its NLU process (bot/rasa_runtime/nluproc.py) loads on,
        # and is waited for so that its memory is counted and the levels time it.
        nlu_ready = await asyncio.to_thread(line.wait_nlu)
        results["line"] = {
            "cold_start_s": {"launch_to_ready": round(cold.launch_to_ready_s, 2),
                             **cold.process_to_ready_s, "nlu_process": nlu_ready},
            "rss_mb_at_rest": line.rss(),
            "levels": [],
        }
        print(f"  ready: {results['line']['cold_start_s']}  rss {results['line']['rss_mb_at_rest']}",
              flush=True)
        tracker = load.TurnTracker(line.db_url, fake)
        tracker.start()
        try:
            # A few turns first, so the first level does not time TensorFlow's first call.
            await load.run_rest(line.rasa_url, 2, args.warmup, prefix="warmup", token=RASA_TOKEN)
            await load.run_sms(line.rasa_url, tracker, 2, args.warmup, seed=99)
            numbers = iter(range(10_000, 10**6))
            for channel in args.channels:
                for c in args.levels:
                    print(f"  line {channel} x{c} for {args.duration:.0f} s ...", flush=True)
                    profiling = []
                    if args.profile and c == max(args.levels):
                        for name, pid in line.pids().items():
                            out = CACHE_DIR / "profiles" / f"{channel}-{c}-{name}.txt"
                            p = prof.start(pid, args.duration, out)
                            if p is not None:
                                profiling.append((name, p, out))
                    with RssSampler(line) as rss:
                        if channel == "rest":
                            level = await load.run_rest(line.rasa_url, c, args.duration,
                                                        seed=c, token=RASA_TOKEN)
                        else:
                            level = await load.run_sms(line.rasa_url, tracker, c, args.duration,
                                                       seed=c, numbers=numbers)
                        await asyncio.sleep(2.0)  # alerts for the last risk messages
                    figures = level.figures()
                    refs = await asyncio.to_thread(load.escalation_refs, line.db_url)
                    figures["staff_alert_ms"] = load.alert_latencies(level.turns, fake, refs)
                    if channel == "sms":
                        figures["sms_stages_ms"] = await asyncio.to_thread(
                            load.sms_stages, line.db_url, level.turns)
                    figures["rss_mb_peak"] = rss.peak
                    figures["load_average"] = load_average()
                    for name, p, out in profiling:
                        await asyncio.to_thread(p.wait, 60)
                        if out.exists():
                            figures.setdefault("profile", {})[name] = prof.top_functions(out)
                    results["line"]["levels"].append(figures)
                    print("   ", report.level_line(figures), flush=True)
        finally:
            await tracker.stop()
        results["line"]["fake_twilio"] = dict(fake.counts)
    finally:
        await asyncio.to_thread(line.stop)
        await fake.stop()


async def measure_stock(args: argparse.Namespace,
                        levels: list[int]) -> tuple[dict[str, Any], list[Any], dict[int, dict]]:
    """Start the stock bot, load it at each of ``levels``, stop it: (what was measured at
    start, the levels' results, each level's peak memory)."""
    started = time.monotonic()
    model = await asyncio.to_thread(baseline_model, CACHE_DIR / "baseline-train.log")
    trained_s = time.monotonic() - started
    bot = Baseline(model)
    print("starting the stock bot ...", flush=True)
    measured: list[Any] = []
    peaks: dict[int, dict[str, float]] = {}
    try:
        cold = await asyncio.to_thread(bot.start)
        info = {
            "what": f"rasa init --no-prompt (Rasa {rasa_version()}), REST channel, "
                    "in-memory tracker store",
            "model_ready_s": round(trained_s, 1),
            "cold_start_s": {"rasa": round(cold.launch_to_ready_s, 2)},
            "rss_mb_at_rest": bot.rss(),
        }
        await load.run_rest(bot.rasa_url, 2, args.warmup, prefix="warmup")
        for c in levels:
            print(f"  stock bot rest x{c} for {args.duration:.0f} s ...", flush=True)
            with RssSampler(bot) as rss:
                level = await load.run_rest(bot.rasa_url, c, args.duration, seed=c)
            measured.append(level)
            peaks[c] = dict(rss.peak)
            print("   ", report.level_line(level.figures()), flush=True)
    finally:
        await asyncio.to_thread(bot.stop)
    return info, measured, peaks


def peak_memory(*peaks: dict[str, float]) -> dict[str, float]:
    """Each process's highest resident memory over several runs of a level."""
    merged: dict[str, float] = {}
    for peak in peaks:
        for name, mb in peak.items():
            merged[name] = max(merged.get(name, 0.0), mb)
    return merged


async def run_baseline(args: argparse.Namespace, results: dict[str, Any],
                       before: list[Any], before_peaks: dict[int, dict] | None = None) -> None:
    """The stock bot at every level; a level also measured ``before`` the line is pooled
    with it (``load.pooled_figures``), and its memory peak is the higher of the two runs'."""
    info, after, peaks = await measure_stock(args, args.levels)
    results["baseline"] = {**info, "levels": []}
    for level in after:
        runs = [b for b in before if b.concurrency == level.concurrency] + [level]
        figures = load.pooled_figures(runs)
        figures["rss_mb_peak"] = peak_memory(peaks[level.concurrency],
                                             (before_peaks or {}).get(level.concurrency, {}))
        figures["load_average"] = load_average()
        results["baseline"]["levels"].append(figures)
        if len(runs) > 1:
            print(f"    stock bot rest x{level.concurrency}, before and after the line: "
                  + report.level_line(figures), flush=True)


def machine_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over ``seconds`` (from ``/proc/stat``)."""
    busy0, total0 = prof.machine_jiffies()
    time.sleep(seconds)
    busy1, total1 = prof.machine_jiffies()
    return (busy1 - busy0) / max(total1 - total0, 1)


def settle(db: str, quiet: float = 0.15, max_wait_s: float = 90.0) -> dict[str, Any]:
    """Wait for what the steps before left behind to end before a 10-second measurement.

    The stock bot's and the line's processes take seconds to exit, and PostgreSQL still holds
    the dirty pages of the line's databases (dropped just before), which a checkpoint writes
    out. Inside ``make bench`` the acknowledgement's p99 had been 66 and 221 ms where
    ``sms_ack.py`` run alone gave 34-58 ms on the same slow machine, and one probe there gave
    179 ms just after a timed checkpoint against 37 ms after a ``CHECKPOINT`` by hand. So a
    ``CHECKPOINT`` writes them out now, and the wait ends when the machine is quiet (under
    ``quiet`` of all cores for a second) or after ``max_wait_s``. What remains busy is printed
    with the figures (bench/sms_ack.py reports the rest of the machine's CPU and
    PostgreSQL's checkpoints during its run)."""
    started = time.monotonic()
    busy_before = machine_busy(0.5)
    checkpoint_s = None
    if db == "postgresql":
        from sqlalchemy import create_engine, text

        from bench.line import POSTGRES_ADMIN_URL

        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
        try:
            t0 = time.monotonic()
            with admin.connect() as conn:
                conn.execute(text("CHECKPOINT"))
            checkpoint_s = round(time.monotonic() - t0, 2)
        except Exception as exc:  # noqa: BLE001 not a superuser: measure without it
            print(f"    (no CHECKPOINT: {type(exc).__name__})", flush=True)
        finally:
            admin.dispose()
    busy = machine_busy()
    while busy > quiet and time.monotonic() - started < max_wait_s:
        busy = machine_busy()
    return {"waited_s": round(time.monotonic() - started, 1),
            "machine_busy_before": round(busy_before, 3), "machine_busy": round(busy, 3),
            "checkpoint_s": checkpoint_s}


def run_sms_ack(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """bench/sms_ack.py as it is (the lead tunes the webhook against it), read back."""
    print("sms webhook acknowledgement at 100/s (bench/sms_ack.py) ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "latencies.json"
        db_url = create_database(args.db, Path(tmp), "bench_ack")
        settled = settle(args.db) if args.settle else None
        if settled:
            print(f"    settled: {settled}", flush=True)
        cmd = [sys.executable, str(ROOT / "bench" / "sms_ack.py"), "--latencies-out", str(out),
               "--count", str(args.ack_count), "--database-url", db_url]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
        finally:
            drop_database(db_url)
        latencies = json.loads(out.read_text()) if out.exists() else []
    figures = {"rate_per_s": 100, "requests": args.ack_count, "database": args.db,
               **load.summary(latencies), "exit_code": proc.returncode, "settled": settled,
               "printed": proc.stdout.strip().splitlines()[-8:]}
    results["sms_ack"] = figures
    print("   ", "\n    ".join(figures["printed"]), flush=True)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["PSEUDONYM_KEY"] = PSEUDONYM_KEY  # the bench computes SMS pseudonyms itself
    from bot import settings as settings_module

    settings_module.reset()
    results: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": args.command,
        "quick": args.quick,
        "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "rasa": rasa_version(), "load_average_at_start": load_average()},
        "config": {"levels": args.levels, "duration_s": args.duration, "database": args.db,
                   "risk_share": round(load.risk_share(), 3),
                   "scripts": {s.name: s.weight for s in load.SCRIPTS}},
    }
    before: list[Any] = []
    before_peaks: dict[int, dict] = {}
    if not args.skip_baseline:
        # Trained (or found in the cache) first, so the line's figures never share the CPU
        # with a training run. Then the heaviest level once before the line as well as after
        # it: a shared machine's speed drifts by more than the differences measured here
        # (the same code 19.6 and 26.7 SMS turns/s forty minutes apart), and a baseline
        # measured only after the line would carry that drift into every ratio.
        await asyncio.to_thread(baseline_model, CACHE_DIR / "baseline-train.log")
        if args.bracket:
            _, before, before_peaks = await measure_stock(args, [max(args.levels)])
    await run_line(args, results)
    if not args.skip_baseline:
        await run_baseline(args, results, before, before_peaks)
    if not args.skip_ack:
        await asyncio.to_thread(run_sms_ack, args, results)
    results["targets"] = report.targets(results, report.latest_faults(RESULTS_DIR))
    return results


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                        help="short levels (1 and 10, 15 s each); results to var/bench/")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")],
                        help="concurrent conversations, comma-separated (default 1,10,50)")
    parser.add_argument("--duration", type=float, help="seconds per level (default 45)")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--channels", type=lambda s: [c for c in s.split(",") if c],
                        default=["rest", "sms"], help="the line's channels to load (rest,sms)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ack", action="store_true")
    parser.add_argument("--no-bracket", dest="bracket", action="store_false",
                        default=None, help="measure the stock bot only after the line")
    parser.add_argument("--no-settle", dest="settle", action="store_false",
                        help="measure the acknowledgement straight after the stock bot, without"
                        " a CHECKPOINT and waiting for a quiet machine")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy every process during the largest level")
    parser.add_argument("--keep-logs", action="store_true", help="keep the line's log folder")
    parser.add_argument("--out", type=Path, help="results folder")
    args = parser.parse_args(argv)
    args.levels = args.levels or ([1, 10] if args.quick else [1, 10, 50])
    args.duration = args.duration or (15.0 if args.quick else 45.0)
    args.warmup = 3.0 if args.quick else 8.0
    if args.bracket is None:
        args.bracket = not args.quick
    args.ack_count = 300 if args.quick else 1000
    args.out = args.out or (CACHE_DIR / "results" if args.quick else RESULTS_DIR)
    args.command = ("BENCH_QUICK=1 " if args.quick else "") + "make bench" if not argv else \
        "bench/run.py " + " ".join(argv)
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    results = asyncio.run(main_async(args))
    results["wall_time_s"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = dt.date.today().isoformat()
    json_path = args.out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    png_path = args.out / f"{stem}.png"
    report.plot(results, png_path)
    print()
    print(report.markdown(results, png_path.name))
    if args.out == RESULTS_DIR:
        report.update_readme(ROOT / "bench" / "README.md", "bench",
                             report.markdown(results, f"results/{png_path.name}"))
    print(f"\nresults: {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path}"
          f"  plot: {png_path.name}  ({results['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
