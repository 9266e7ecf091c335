"""What a person is looking for, in a small fixed vocabulary the directory's entries use.

``need_from_text`` is deliberately plain: keyword phrases checked in order, most specific first
("instead of A&E" before "A&E"). It only picks which services to show; it never judges risk
(the risk guard in ``bot.nlu`` does that, and no answer here can lower it).
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

# need -> (what it means, whether the answer depends on where the person is)
NEEDS: Dict[str, Tuple[str, bool]] = {
    "emergency": ("life in danger now: 999 and A&E", False),
    "crisis": ("urgent mental-health help tonight", True),
    "a_and_e_alternative": ("somewhere to go instead of A&E", True),
    "sanctuary": ("a safe place to go and be with people (sanctuary, crisis café)", True),
    "talk": ("someone to talk to or text, now", False),
    "carers": ("support for family, friends and carers", True),
    "peer_support": ("people who have been through it", True),
    "advocacy": ("help to be heard, rights under the Mental Health Act", True),
    "housing": ("housing, homelessness, somewhere to sleep tonight", True),
    "money": ("money, debt and benefits", True),
    "pharmacy": ("medication and prescriptions", True),
}

# Intents (domain.yml) of a person asking as a family member, friend or carer: their request
# is for carers' services (actions/services.py), and the report counts their contact as a
# carer's (bot/report/figures.py).
CARER_INTENTS = ("carer_how_to_help", "carer_self_support", "carer_assessment",
                 "carer_confidentiality")

# Checked in this order; the first need whose pattern matches wins.
_PATTERNS = [
    ("a_and_e_alternative", r"(instead of|alternative to|rather than|other than|avoid(ing)?|not|"
     r"don'?t want to|do not want to|won'?t)( go| going)?( to)?( the)? "
     r"(a ?(&|and|n) ?e|hospital|casualty|emergency department)"),
    ("emergency", r"\b(999|ambulance|emergency|a ?(&|and|n) ?e|casualty|police)\b"),
    ("sanctuary", r"\b(sanctuary|safe ?haven|safe space|crisis (caf[eé]|house)|caf[eé]|"
     r"somewhere to go|place to go|drop[- ]in)\b"),
    ("carers", r"\b(carers?|caring for|look(ing)? after (my|a|her|him|them)|my (son|daughter|"
     r"husband|wife|partner|mum|mother|dad|father|brother|sister|friend|child|kid))\b"),
    ("housing", r"\b(housing|homeless|evicted|eviction|rough|nowhere to (sleep|stay|live)|"
     r"somewhere to (sleep|stay)|kicked out|landlord)\b"),
    ("money", r"\b(money|debts?|benefits?|universal credit|pip|bills|rent arrears|skint|broke)\b"),
    ("pharmacy", r"\b(pharmacy|pharmacist|chemist|prescriptions?|medication|meds|tablets)\b"),
    ("advocacy", r"\b(advocacy|advocate|my rights|sectioned|section \d|mental health act|"
     r"complain|complaint)\b"),
    ("peer_support", r"\b(peer|support group|group|lived experience|been through)\b"),
    ("crisis", r"\b(crisis|crisis team|urgent|can'?t cope|breaking down|mental health team|"
     r"help now|open (now|tonight)|anything open)\b"),
    ("talk", r"\b(talk|chat|listen|someone to (text|ring|call|phone)|lonely|alone|helplines?|"
     r"hotlines?)\b"),
]
_COMPILED = [(need, re.compile(p, re.IGNORECASE)) for need, p in _PATTERNS]


def need_from_text(text: Optional[str]) -> Optional[str]:
    """The need a message asks about, or ``None`` when it names none."""
    if not text:
        return None
    lowered = text.strip().lower().replace("_", " ")
    if lowered.replace(" ", "_") in NEEDS:
        return lowered.replace(" ", "_")
    for need, pattern in _COMPILED:
        if pattern.search(lowered):
            return need
    return None


def place_matters(need: Optional[str]) -> bool:
    """Whether to ask where the person is before answering (not for 999 or a listening line)."""
    if need is None:
        return True
    return NEEDS.get(need, ("", True))[1]
