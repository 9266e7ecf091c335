"""CPU to rebuild a conversation from the tracker store's rows: Rasa's event lookup against
``bot.rasa_runtime.speedups``' (the event class of each row's name looked up once per name).

Every turn of a conversation the Rasa server does not hold in memory as objects starts by
reading its current session back from JSON (``DialogueStateTracker.from_dict``); the line's
tracker store does this for every turn. Builds conversations of the load scripts' length
(``--events``), rebuilds each with Rasa's own lookup and with ours, rounds interleaved, and
prints CPU per rebuild, the ratio, and whether both gave the same events (they must).

    PYTHONPATH=. .venv/bin/python bench/tracker_read.py [--events 42] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def conversation(size: int) -> list:
    from rasa.shared.core.events import (
        ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered,
    )

    events = [SessionStarted(), ActionExecuted("action_listen")]
    while len(events) < size:
        events += [UserUttered("is anywhere open tonight near Taunton",
                               intent={"name": "find_service", "confidence": 0.93},
                               parse_data={"risk": {"level": "none", "signals": []}}),
                   SlotSet("place", "Taunton"), ActionExecuted("action_find_services"),
                   BotUttered("Here is what is open tonight."), ActionExecuted("action_listen")]
    return events[:size]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=42, help="events per conversation")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=50, help="rebuilds per round")
    args = parser.parse_args()

    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa_runtime import speedups as fast

    fast.install()
    if fast.rasa_resolve_event_type is None:
        print("bot.rasa_runtime.speedups did not replace Event.resolve_by_type", file=sys.stderr)
        return 1
    events = conversation(args.events)
    rows = [e.as_dict() for e in events]
    variants = {"rasa": staticmethod(fast.rasa_resolve_event_type),
                "line": staticmethod(fast._resolve_event_type)}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    same = True
    for _ in range(args.rounds):
        for name, lookup in variants.items():
            Event.resolve_by_type = lookup
            start = time.process_time()
            for _ in range(args.per_round):
                tracker = DialogueStateTracker.from_dict("bench", rows, [])
            cpu[name].append((time.process_time() - start) / args.per_round * 1000)
            same = same and list(tracker.events) == events
    Event.resolve_by_type = variants["line"]
    rasa, line = statistics.median(cpu["rasa"]), statistics.median(cpu["line"])
    print(f"rebuilding a {args.events}-event conversation from its rows "
          f"(median of {args.rounds} rounds of {args.per_round}):")
    print(f"  Rasa's lookup: {rasa:.3f} ms CPU")
    print(f"  line's lookup: {line:.3f} ms CPU (x{line / rasa:.2f} of Rasa's)")
    print(f"  same events: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
