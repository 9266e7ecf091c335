"""What a console page may say after a redirect: fixed notices, chosen by a code in ``?notice=``.

Pages used to print whatever ``?notice=`` held, so a link could put any sentence inside the
console, even on the sign-in page ("Your session expired, sign in at evil.example": issue 23).
Now the query carries a code from ``NOTICES`` and the page shows that code's fixed text; an
unknown code shows nothing. ``{ref}`` in a text is the escalation the page is about (taken
from the page's own path, which is checked, never from the query).

A refusal from the escalation engine is turned into a code by ``code_for``: the engine's
messages that are worth showing are here word for word; any other becomes ``refused``.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlencode

from bot.duty.console_db import MAX_FREE_BEDS, MAX_OVERRIDE_REASON
from bot.escalation.blocks import MAX_REASON as MAX_BLOCK_REASON
from bot.duty.takeover import MAX_REPLY_CHARS

NOTICES: dict[str, str] = {
    # conversation page
    "acknowledged": "{ref} acknowledged.",
    "resolved": "{ref} resolved.",
    "taken_over": "You have taken over this conversation.",
    "reply_sent": "Reply sent.",
    "handed_back": "Handed back to the assistant.",
    "referred": "Referral sent.",
    "reply_length": f"Write a reply of 1 to {MAX_REPLY_CHARS} characters.",
    "choose_house": "Choose a house from the list.",
    "choose_outcome": "Choose an outcome from the list.",
    "reason_needed": "Say why you need to read it (for example: risk to life).",
    "reason_too_long": f"Keep the reason to {MAX_OVERRIDE_REASON} characters.",
    "not_refused": "They have not refused sharing: the whole transcript is shown.",
    "no_such_escalation": "No such escalation.",
    "hand_back_first": "Hand {ref} back to the assistant before resolving it.",
    "take_over_first": "Take {ref} over before replying.",
    "held_by_other": "{ref} is taken over by someone else.",
    "display_name_needed": "A display name (first name or role) is needed to take over.",
    "house_closed": "That house is not taking referrals now.",
    "no_free_bed": "That house has no free bed recorded for tonight.",
    "nobody_at_house": "Nobody is on duty at that house to take the referral.",
    "no_sanctuary_consent": "The person has not consented to a sanctuary referral for {ref}; "
                            "ask them first.",
    "relay_down": "The assistant server could not be reached; nothing was changed. Try again.",
    "refused": "That step is not possible now: the conversation's status (shown below) has "
               "changed. Reload and check before trying again.",
    # sanctuary page
    "unknown_house": "Unknown house.",
    "beds_not_a_number": "Free beds must be a number.",
    "beds_out_of_range": f"Free beds must be a number from 0 to {MAX_FREE_BEDS}.",
    "beds_updated": "Free beds updated.",
    # rota page (the change itself is listed under "Recent changes")
    "shift_added": "Shift added.",
    "shift_changed": "Shift changed.",
    "shift_removed": "Shift removed.",
    # block list (conversation page and /duty/blocks)
    "sender_blocked": "Sender blocked. Risk messages from them still reach staff.",
    "sender_unblocked": "Block lifted.",
    "block_reason_needed": "Give a reason for the block.",
    "block_reason_too_long": f"Keep the reason to {MAX_BLOCK_REASON} characters.",
    "block_duration": "Choose how long the block lasts from the list.",
    "already_blocked": "This sender is blocked already; lift that block first to change it.",
    "not_blocked": "That block has ended already.",
    # staff accounts page (the change itself is listed under "Recent changes")
    "account_disabled": "Account disabled: its sessions have ended.",
    "account_enabled": "Account enabled again.",
    "second_factor_reset": "Second factor reset: they set up a new one at their next sign-in.",
}

def text(code: str, ref: str = "") -> str:
    """The fixed text for ``code`` (empty for an unknown code)."""
    template = NOTICES.get(code[:40], "")
    return template.replace("{ref}", ref) if template else ""


def code_for(message: str, ref: str = "") -> str:
    """The code whose text is ``message`` (with this page's ``ref``), else ``refused``."""
    for code, template in NOTICES.items():
        if template.replace("{ref}", ref) == message:
            return code
    if message.startswith("The assistant server"):
        return "relay_down"
    return "refused"


def query(code: Optional[str]) -> str:
    return "?" + urlencode({"notice": code}) if code else ""
