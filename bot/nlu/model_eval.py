"""The risk evaluation through the whole trained NLU pipeline, as `POST /model/parse` sees it.

``bot.nlu.risk_eval`` measures the rule-based detector alone; this measures what the line
really does: classifier, fallback and risk guard together (the guard takes the higher of the
detector's and the classifier's readings, so the classifier can add false alarms).

    python -m bot.nlu.model_eval [--show-misses]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Callable, List, Optional

from bot.nlu.risk_eval import Report, eval_dir, evaluate, print_report


def model_assess(model: Path) -> Callable[[str], str]:
    """A function that parses text with the trained model and returns the risk level."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # Rasa's debug log carries message text; keep it quiet here as on the servers.
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()

    def assess(text: str) -> str:
        parsed = loop.run_until_complete(agent.parse_message(text))
        return parsed["risk"]["level"]

    return assess


def run(model: Optional[Path] = None, where: Optional[Path] = None) -> Report:
    from bot.train import model_path

    return evaluate(model_assess(model or model_path()), where or eval_dir())


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.model_eval")
    parser.add_argument("--show-misses", action="store_true",
                        help="print each failed item's text to the terminal (never to logs)")
    parser.add_argument("--model", type=Path, default=None, help="trained model (default: current)")
    args = parser.parse_args(argv)
    where = eval_dir()
    if not where.is_dir():
        print(f"evaluation sets not found at {where}", file=sys.stderr)
        return 2
    report = run(args.model, where)
    print("Risk through the full NLU pipeline (POST /model/parse):")
    return print_report(report, args.show_misses)


if __name__ == "__main__":
    sys.exit(main())
