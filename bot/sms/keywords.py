"""SMS keywords (STOP, START, HELP), the replies the channel sends itself, and a risk-word check.

Twilio acts on its standard keywords itself on long codes: after an opt-out word it refuses to
send to that number (error 21610) until the person texts an opt-in word. It matches the whole
message, trimmed and case-insensitive, so the channel uses the same rule: being looser would
mark someone opted out whom Twilio still delivers to. "Stop it" is a message, not an opt-out.
"""

from __future__ import annotations

import re

# Twilio's default English opt-out, opt-in and help keywords for long codes
# (twilio.com/docs/messaging/tutorials/advanced-opt-out; help.twilio.com article 223134027).
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"

FAILSAFE_REPLY = (
    "Sorry, I'm having trouble replying. If you are in danger call 999 or go to A&E. "
    "Samaritans: 116 123 (free, 24/7). NHS 111, option 2 for mental health."
)

HELP_REPLY = (
    "This is the out-of-hours mental health crisis text line. You are texting an automated "
    "assistant; it can bring in a person from the duty team. "
    "If you are in danger now call 999 or go to A&E. Samaritans: 116 123 (free, 24/7). "
    "NHS 111, option 2 for mental health. Text STOP to stop messages, START to restart."
)


def keyword(body: str | None) -> str | None:
    """The keyword ``body`` is (upper case), or None when it is an ordinary message."""
    word = (body or "").strip().upper()
    if word in OPT_OUT_WORDS or word in OPT_IN_WORDS or word in HELP_WORDS:
        return word
    return None


def classify(body: str | None) -> str | None:
    """``opt_out``, ``opt_in``, ``help`` or None."""
    word = keyword(body)
    if word in OPT_OUT_WORDS:
        return OPT_OUT
    if word in OPT_IN_WORDS:
        return OPT_IN
    if word in HELP_WORDS:
        return HELP
    return None


# A deliberately small, over-inclusive list: the first, cheap half of ``gate.shows_risk``,
# which then asks the NLU's own detector (bot/nlu). It only orders work (risk first, no rate
# limit) and tells the opt-out handling that a conversation showed risk; it can never
# downgrade what the NLU reports.
_RISK = re.compile(
    r"\b("
    r"suicid\w*|kill(?:ing)? my ?self|end(?:ing)? (?:it all|my life|it)|want(?:ed)? to die|"
    r"better off dead|don'?t want to (?:be here|live|wake up)|no reason to live|"
    r"overdos\w*|\bod\b|took (?:all )?(?:my |the )?(?:pills|tablets)|"
    r"self[- ]?harm\w*|hurt(?:ing)? my ?self|cut(?:ting)? my ?self|"
    r"take my (?:own )?life|hang(?:ing)? my ?self|jump(?:ing)? off|"
    r"kill (?:him|her|them|someone)|hurt (?:him|her|them|someone)"
    r")\b",
    re.IGNORECASE,
)


def has_risk_words(text: str | None) -> bool:
    return bool(text) and bool(_RISK.search(text.replace("\u2019", "'")))
