"""Phone numbers, however they are written, are one person: parsed by ``phonenumbers``."""

from __future__ import annotations

import pytest

from bot.sms.pseudonym import BadNumber, normalise_number, normalise_uk_number, pseudonym

SAME_PERSON = ["07700 900 123", "07700900123", "+44 7700 900123", "+447700900123",
               "+44 (0)7700 900123", "(07700) 900-123", "+44-7700-900-123"]


@pytest.mark.parametrize("written", SAME_PERSON)
def test_a_uk_number_written_any_way_is_the_same_staff_member(written):
    assert normalise_uk_number(written) == "+447700900123"


def test_the_international_zero_does_not_make_a_different_person():
    # Before phonenumbers, "(0)" kept its zero: +4407700900123, a second conversation id for
    # the same phone, and a second person in the rota.
    assert normalise_number("+44 (0)7700 900123") == "+447700900123"
    assert pseudonym("+44 (0)7700 900123", key="k") == pseudonym("+447700900123", key="k")


def test_international_numbers_keep_their_country():
    assert normalise_uk_number("+1 202 555 0123") == "+12025550123"
    assert normalise_number("+353 1 234 5678") == "+35312345678"


@pytest.mark.parametrize(
    "written",
    ["12345", "not a number", "", "07700 9OO123", "0800 FLOWERS", "07700 900123 ext. 2",
     "+999 999 999", "+44 7700"],
)
def test_what_is_not_a_number_is_refused(written):
    assert normalise_uk_number(written) is None
    with pytest.raises(BadNumber) as err:
        normalise_number(written)
    assert str(err.value) == "sender is not an E.164 phone number"


def test_the_sms_sender_must_carry_its_country_code():
    # Twilio always sends E.164: a national number there is not a sender we can answer.
    with pytest.raises(BadNumber):
        normalise_number("07700 900123")
    assert normalise_number("07700 900123", region="GB") == "+447700900123"


def test_ofcom_drama_numbers_and_unlisted_ranges_are_accepted():
    # The library's is_valid_number refuses 07700 900xxx (reserved for drama) and any range
    # allocated after its metadata: the length check is what is kept.
    assert normalise_number("+447700900000") == "+447700900000"
