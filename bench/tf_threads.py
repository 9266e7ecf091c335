"""The intent classifier's TensorFlow call with TensorFlow's default threads and with one.

    PYTHONPATH=. .venv/bin/python bench/tf_threads.py          # about a minute

``bot.run`` starts the Rasa server with ``TF_INTRA_OP_PARALLELISM_THREADS`` and
``TF_INTER_OP_PARALLELISM_THREADS`` at 1. This measures why: each setting in a process of its
own (TensorFlow fixes its threads when it starts), parsing the same messages with the trained
model, with and without a busy core beside it (as under load, where the other processes of the
line share the machine). Printed: wall time and CPU per parse, and the TensorFlow call's p50
and p90, in the order measured; the settings alternate so a drifting machine favours neither.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ["I feel really low tonight", "is anywhere open near Leeds",
            "my son is not eating, how can I help him", "I want to talk to a person", "hello"]
COUNT = 400


def child() -> None:
    """One measurement, in a process whose TensorFlow threads come from the environment."""
    sys.path.insert(0, str(ROOT))
    from rasa.utils.tensorflow import environment

    environment.setup_tf_environment()  # what `rasa run` does at start
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.tensorflow.models import RasaModel

    from bot.rasa_runtime import speedups as rasa_speedups
    from bot.train import model_path

    rasa_speedups.install()
    calls: list[float] = []
    predict = RasaModel._rasa_predict

    def timed(self, batch):
        started = time.perf_counter()
        try:
            return predict(self, batch)
        finally:
            calls.append(time.perf_counter() - started)

    RasaModel._rasa_predict = timed
    processor = Agent.load(str(model_path())).processor

    def parse(n: int) -> None:
        processor._parse_message_with_graph(UserMessage(MESSAGES[n % len(MESSAGES)]),
                                            DialogueStateTracker.from_events("bench", []))

    for n in range(50):
        parse(n)  # warm
    calls.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(COUNT):
        parse(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    calls.sort()
    print(json.dumps({"wall_ms": wall / COUNT * 1000, "cpu_ms": cpu / COUNT * 1000,
                      "tf_p50_ms": calls[len(calls) // 2] * 1000,
                      "tf_p90_ms": calls[int(len(calls) * 0.9)] * 1000}))


def measure(threads: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    for name in ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS"):
        env.pop(name, None)
        if threads:
            env[name] = threads
    out = subprocess.run([sys.executable, __file__, "--child"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for threads in (None, "1", None, "1"):
                r = measure(threads)
                print(f"{'a busy core beside it' if busy else 'a quiet machine':22s} "
                      f"threads {threads or 'default':7s} parse {r['wall_ms']:.2f} ms "
                      f"(CPU {r['cpu_ms']:.2f} ms), TensorFlow call p50 {r['tf_p50_ms']:.2f} "
                      f"p90 {r['tf_p90_ms']:.2f} ms", flush=True)
        finally:
            if hog is not None:
                hog.kill()


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
