"""The "tell it once" summary handed to staff with an escalation.

Built from the conversation's events and slots, never from message text: the risk level and
signals, what the assistant already suggested, places and needs mentioned, consent given.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

# What each response suggests, in words staff use. Only responses that suggest something.
SUGGESTIONS: Mapping[str, List[str]] = {
    "utter_risk_urgent": ["Samaritans 116 123", "NHS 111 option 2", "999 if in danger"],
    "utter_risk_imminent": ["999 / A&E now"],
    "utter_human_requested": ["waiting for a person", "999 if worse", "Samaritans 116 123"],
    "utter_grounding_1": ["breathing exercise"],
    "utter_grounding_2": ["5-4-3-2-1 grounding"],
    "utter_carer_how_to_help": ["carer advice for tonight"],
    "utter_carer_urgent_help": ["999 if in danger", "NHS 111 option 2"],
    "utter_carer_self_support": ["carers' support", "Samaritans 116 123"],
    "utter_carer_assessment": ["carer's assessment"],
    "utter_help_keyword": ["999", "Samaritans 116 123", "NHS 111 option 2"],
}


def suggested_from_events(events: Iterable[Mapping[str, Any]]) -> List[str]:
    """What the assistant has already suggested, in order, without repeats."""
    out: List[str] = []
    for event in events:
        if event.get("event") != "bot":
            continue
        utter = (event.get("metadata") or {}).get("utter_action")
        for item in SUGGESTIONS.get(utter or "", []):
            if item not in out:
                out.append(item)
        for service in (event.get("metadata") or {}).get("services_suggested") or []:
            if service not in out:
                out.append(service)
    return out


def build_summary(
    level: str,
    signals: Iterable[str],
    events: Iterable[Mapping[str, Any]],
    place: Optional[str] = None,
    need: Optional[str] = None,
    audience: Optional[str] = None,
    consent: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    return {
        "risk_level": level,
        "signals": list(dict.fromkeys(signals)),
        "suggested": suggested_from_events(events),
        "places": [place] if place else [],
        "needs": [need] if need else [],
        "audience": audience,
        "consent": dict(consent) if consent else {},
    }
