"""Helpers shared by the actions: reading risk from the tracker and running blocking calls."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, TypeVar

from rasa_sdk import Tracker

T = TypeVar("T")

LEVEL_FOR_INTENT = {"risk_imminent": "imminent", "risk_urgent": "urgent"}


def latest_risk(tracker: Tracker) -> Dict[str, Any]:
    """The risk guard's reading of the latest message (level ``none`` if there is none)."""
    risk = (tracker.latest_message or {}).get("risk") or {}
    return {"level": risk.get("level") or "none", "signals": list(risk.get("signals") or [])}


def escalation_level(tracker: Tracker) -> str:
    """Urgent or imminent, from the risk guard, or from the intent the guard set."""
    risk = latest_risk(tracker)["level"]
    if risk in ("urgent", "imminent"):
        return risk
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    return LEVEL_FOR_INTENT.get(intent, "urgent")


def channel_of(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "unknown"


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call (database) off the action server's event loop."""
    return await asyncio.to_thread(func, *args, **kwargs)
