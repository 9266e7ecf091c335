"""CPU of Rasa's model graph per message: Rasa as shipped against ``bot.rasa_runtime.speedups``.

Loads the trained model once, then for every message of the load scripts (``load.SCRIPTS``)
parses it (the NLU graph) and predicts the next action on a tracker holding it (the policy
graph), as a turn does. Each pass runs with Rasa's own methods, then with the speed-ups of
``bot/rasa_runtime/speedups.py`` added one at a time (the sequential graph runner, the rule policy's
matching on parsed rules, the intent classifier's flat TensorFlow call), rounds interleaved.
Prints CPU time per message for each, the ratio to Rasa's own, and whether every variant gave
the same intent, confidence, entities and predicted action for every message (they must).

    PYTHONPATH=. .venv/bin/python bench/graph_runner.py [--rounds 20]
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
    parser.add_argument("--rounds", type=int, default=20, help="rounds per variant")
    args = parser.parse_args()

    import logging

    from rasa.core.agent import Agent
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog
    from rasa.utils.tensorflow.models import RasaModel

    from bench.load import SCRIPTS
    from bot.rasa_runtime import speedups as fast
    from bot.train import model_path

    # As the Rasa server runs: no debug lines (their cost would be measured too).
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    fast.install()
    patches = [  # (class, attribute, Rasa's own, ours)
        (DaskGraphRunner, "run", fast.rasa_graph_run, fast._run_graph),
        (RulePolicy, "_get_possible_keys", fast.rasa_get_possible_keys,
         fast._get_possible_keys),
        (RasaModel, "_rasa_predict", fast.rasa_predict, fast._rasa_predict),
    ]
    if any(own is None or own is ours for _, _, own, ours in patches):
        print("bot.rasa_runtime.speedups did not replace Rasa's methods", file=sys.stderr)
        return 1

    def use(ours: int) -> None:
        """The first ``ours`` speed-ups on, the rest Rasa's own."""
        for i, (cls, attribute, own, mine) in enumerate(patches):
            setattr(cls, attribute, mine if i < ours else own)

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

    variants = {
        "Rasa's own": 0,
        "+ sequential graph runner": 1,
        "+ rule matching on parsed rules": 2,
        "+ flat TensorFlow call (all)": 3,
    }
    per_message: dict[str, list[float]] = {name: [] for name in variants}
    answers: dict[str, list[tuple]] = {}
    for name, ours in variants.items():  # warm-up: TensorFlow traces its functions once
        use(ours)
        answers[name] = one_pass()
    for _ in range(args.rounds):
        for name, ours in variants.items():
            use(ours)
            started = time.process_time()
            one_pass()
            per_message[name].append((time.process_time() - started) / len(texts) * 1000)
    use(len(patches))

    base_answers = answers["Rasa's own"]
    same = all(a == base_answers for a in answers.values())
    base = statistics.median(per_message["Rasa's own"])
    print(f"{len(texts)} messages, parse + next action, {args.rounds} interleaved rounds, "
          "CPU ms per message (median of rounds):")
    for name, values in per_message.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median:7.2f} ms  x{median / base:.2f}")
    print(f"same intents, confidences, entities and predicted actions: {same}")
    return 0 if same else 1


def _message(text: str):
    from rasa.core.channels.channel import UserMessage

    return UserMessage(text, sender_id="bench")


if __name__ == "__main__":
    sys.exit(main())
