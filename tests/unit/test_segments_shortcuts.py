"""The SMS splitter's shortcuts (one-part replies, plain division) give what the long way gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sms import segments
from bot.sms.segments import (
    GSM7, MULTI, SINGLE, Part, _cost, _pack, _sentences, _split_words, encoding_of, normalise,
    segment_count, split_message,
)

# Plain GSM-7, its two-septet extension, GSM-7 accents, a BMP character outside GSM-7 and one
# outside the BMP (a surrogate pair in UCS-2), and the breaks the splitter looks for.
_text = st.text(alphabet=st.sampled_from(list("abc xyz.?!\n") + ["€", "{", "é", "ą", "😀"]),
                max_size=700)


def _segments_the_long_way(text: str) -> int:
    if not text:
        return 1
    encoding = GSM7 if all(c in segments.GSM_BASIC or c in segments.GSM_EXTENDED
                           for c in text) else segments.UCS2
    costs = [_cost(c, encoding) for c in text]
    if sum(costs) <= SINGLE[encoding]:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > MULTI[encoding]:
            count, used = count + 1, 0
        used += cost
    return count


@settings(max_examples=400, deadline=None)
@given(_text)
def test_segment_count_is_the_handsets_count(text):
    assert segment_count(text) == _segments_the_long_way(text)


@settings(max_examples=300, deadline=None)
@given(_text, st.integers(min_value=1, max_value=3))
def test_split_message_is_what_packing_sentences_gives(text, max_segments):
    plain = normalise(text).strip()
    packed = _pack(_sentences(plain), max_segments, _split_words) if plain else []
    expected = [Part(c, encoding_of(c), segment_count(c)) for c in packed if c]
    assert split_message(text, max_segments) == expected


def test_an_emoji_costs_two_code_units_and_a_euro_two_septets():
    assert segment_count("😀" * 35) == 1 and segment_count("😀" * 36) == 2
    assert segment_count("€" * 80) == 1 and segment_count("€" * 81) == 2
    assert segment_count("a" * 160) == 1 and segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2 and segment_count("a" * 307) == 3
