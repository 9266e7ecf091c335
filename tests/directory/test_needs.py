import pytest

from bot.directory.needs import NEEDS, need_from_text, place_matters


@pytest.mark.parametrize(
    "text, need",
    [
        ("where can I go instead of A&E", "a_and_e_alternative"),
        ("I don't want to go to A and E", "a_and_e_alternative"),
        ("I think I need A&E", "emergency"),
        ("is the sanctuary open this weekend", "sanctuary"),
        ("support for carers in Yeovil", "carers"),
        ("I'm worried about my son", "carers"),
        ("I've been evicted and have nowhere to sleep", "housing"),
        ("my benefits have been stopped", "money"),
        ("is there a chemist open, I've run out of my meds", "pharmacy"),
        ("is anything open near Bridgwater tonight", "crisis"),
        ("I just need someone to talk to", "talk"),
        ("I think I'm going to be sectioned, what are my rights", "advocacy"),
        ("call an ambulance", "emergency"),
        ("hello", None),
        ("", None),
        ("peer_support", "peer_support"),
    ],
)
def test_need_from_text(text, need):
    assert need_from_text(text) == need


def test_place_matters_only_for_local_needs():
    assert not place_matters("talk") and not place_matters("emergency")
    assert place_matters("sanctuary") and place_matters("carers") and place_matters(None)
    assert set(NEEDS) >= {"crisis", "sanctuary", "talk", "carers", "a_and_e_alternative", "housing",
                          "money", "advocacy", "pharmacy", "peer_support", "emergency"}
