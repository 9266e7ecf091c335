"""CPU of Rasa's model graph per message: dask's runner against ``bot.rasa_speedups``'.

Loads the trained model once, then for every message of the load scripts (``load.SCRIPTS``)
parses it (the NLU graph) and predicts the next action on a tracker holding it (the policy
graph), as a turn does, with Rasa's own ``DaskGraphRunner.run`` and with the sequential one,
rounds interleaved. Prints CPU time per message for each, the ratio, and whether both gave
the same intent, confidence, entities and predicted action for every message (they must).

    PYTHONPATH=. .venv/bin/python bench/graph_runner.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds per runner")
    args = parser.parse_args()

    import logging

    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bench.load import SCRIPTS
    from bot import rasa_speedups
    from bot.train import model_path

    # As the Rasa server runs: no debug lines (their cost would be measured too).
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    rasa_speedups.install()
    dask_run, sequential_run = rasa_speedups.rasa_graph_run, DaskGraphRunner.run
    if dask_run is None or sequential_run is dask_run:
        print("bot.rasa_speedups did not replace the runner", file=sys.stderr)
        return 1

    path = model_path()
    if not path.exists():
        print(f"no model at {path}: run `make train`", file=sys.stderr)
        return 1
    agent = Agent.load(str(path))
    processor = agent.processor
    texts = sorted({turn.text for script in SCRIPTS for turn in script.turns})
    loop = asyncio.new_event_loop()

    def one_pass() -> list[tuple]:
        seen = []
        for text in texts:
            parsed = loop.run_until_complete(processor.parse_message(_message(text)))
            tracker = DialogueStateTracker.from_events(
                "bench", [ActionExecuted("action_listen"), UserUttered(text, parsed)],
                slots=agent.domain.slots,
            )
            prediction = processor._predict_next_with_tracker(tracker)
            intent = parsed["intent"]
            seen.append((intent["name"], round(intent["confidence"], 6),
                         tuple((e["entity"], e["value"]) for e in parsed.get("entities", [])),
                         prediction.max_confidence_index, prediction.policy_name))
        return seen

    runners = {"dask (Rasa's own)": dask_run, "sequential (bot.rasa_speedups)": sequential_run}
    per_message: dict[str, list[float]] = {name: [] for name in runners}
    answers: dict[str, list[tuple]] = {}
    for name, run in runners.items():  # warm-up: TensorFlow traces its functions once
        DaskGraphRunner.run = run
        answers[name] = one_pass()
    for _ in range(args.rounds):
        for name, run in runners.items():
            DaskGraphRunner.run = run
            started = time.process_time()
            one_pass()
            per_message[name].append((time.process_time() - started) / len(texts) * 1000)
    DaskGraphRunner.run = sequential_run

    same = answers["dask (Rasa's own)"] == answers["sequential (bot.rasa_speedups)"]
    base = statistics.median(per_message["dask (Rasa's own)"])
    print(f"{len(texts)} messages, parse + next action, {args.rounds} interleaved rounds, "
          "CPU ms per message (median of rounds):")
    for name, values in per_message.items():
        median = statistics.median(values)
        print(f"  {name:32s} {median:7.2f} ms  x{median / base:.2f}")
    print(f"same intents, confidences, entities and predicted actions: {same}")
    return 0 if same else 1


def _message(text: str):
    from rasa.core.channels.channel import UserMessage

    return UserMessage(text, sender_id="bench")


if __name__ == "__main__":
    sys.exit(main())
