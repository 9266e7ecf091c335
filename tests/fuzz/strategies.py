"""Hypothesis strategies shared by the fuzz tests."""

from __future__ import annotations

import uuid

from hypothesis import strategies as st

# Characters that broke SMS gateways, databases or parsers somewhere: NUL and other controls,
# form syntax, bidirectional overrides, the byte-order mark, a non-character, emoji, a lone
# combining mark, GSM-7 escapes.
AWKWARD = "\x00\x01\x1b\x7f\r\n\t%&=+;#?\u00a0\u200b\u202e\ufeff\uffff\U0001f600\u0301€[]{}~^|\\"

# Any unicode a phone, a gateway or an attacker could put in a field (surrogates cannot be sent
# as UTF-8), with an awkward character between most pieces: with the small budgets here, plain
# ``st.text()`` rarely draws a NUL or a bidi override.
any_text = st.lists(
    st.one_of(st.sampled_from(AWKWARD), st.text(st.characters(exclude_categories=("Cs",)),
                                                 max_size=8)),
    max_size=8,
).map("".join)


def canary() -> st.SearchStrategy[str]:
    """A marker no log line contains by chance: if it reaches a log, message text leaked."""
    return st.builds(lambda: "cnry" + uuid.uuid4().hex[:10])
