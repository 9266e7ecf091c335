"""SMS text: GSM-7 only, at most 306 characters a message, readable times."""

from bot.directory.messages import MAX_CHARS, gsm7, gsm7_length, pack, when_open

from .conftest import london


def test_pack_splits_without_losing_items():
    items = [f"Service number {i} (until 02:00) 01632 960{i:03d}" for i in range(20)]
    messages = pack("Open now near Bridgwater: ", items)
    assert len(messages) > 1
    assert all(gsm7_length(m) <= MAX_CHARS for m in messages)
    assert messages[0].startswith("Open now near Bridgwater: Service number 0")
    assert messages[1].startswith("Also: ")
    joined = " ".join(messages)
    assert all(f"01632 960{i:03d}" in joined for i in range(20))


def test_non_gsm_characters_are_replaced():
    assert gsm7("Carers’ café – open") == "Carers' café - open"  # é is GSM-7; ’ and – are not
    assert gsm7("Ŵrexham") == "Wrexham"
    assert gsm7_length("€5") == 3


def test_when_open_words():
    now = london(2026, 11, 28, 23, 30)  # Saturday
    assert when_open(now, True, None, None) == "24 hours"
    assert when_open(now, True, london(2026, 11, 29, 2, 0), None) == "until 02:00"
    assert when_open(now, True, london(2026, 11, 30, 9, 0), None) == "until Mon 09:00"
    assert when_open(now, False, None, london(2026, 11, 29, 10, 0)) == "opens tomorrow 10:00"
    assert when_open(now, False, None, london(2026, 12, 2, 19, 0)) == "opens Wed 19:00"
    assert when_open(now, False, None, london(2026, 12, 9, 19, 0)) == "opens 9 Dec 19:00"
