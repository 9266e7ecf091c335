"""Action tests: a fresh CollectingDispatcher per test, trackers from named snapshots or events."""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

DATA = Path(__file__).parent / "data"


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


def user_event(text: str, intent: str, risk: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    parse = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    if risk is not None:
        parse["risk"] = risk
    return {"event": "user", "text": text, "parse_data": parse, "input_channel": "rest"}


def bot_event(utter: str, text: str = "") -> Dict[str, Any]:
    return {"event": "bot", "text": text, "metadata": {"utter_action": utter}}


def make_tracker(
    events: List[Dict[str, Any]],
    sender_id: str = "test-conversation",
    slots: Optional[Dict[str, Any]] = None,
) -> Tracker:
    latest = next((e["parse_data"] for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(
        sender_id=sender_id,
        slots=slots or {},
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


def load_snapshot(name: str) -> Tracker:
    """A tracker saved as JSON in tests/actions/data/<name>.json."""
    data = json.loads((DATA / f"{name}.json").read_text())
    return make_tracker(data["events"], data.get("sender_id", name), data.get("slots"))
