"""Places: names in any case, misspellings, postcode districts, unknown places, refusals."""

import pytest

from bot.directory import loader
from bot.directory.places import Gazetteer, entity_patterns, is_declined, resolve_place

SHIPPED = loader.load_directory()


@pytest.fixture
def gaz():
    return Gazetteer(SHIPPED.places)


@pytest.mark.parametrize(
    "text, key",
    [
        ("Bridgwater", "bridgwater"),
        ("BRIDGWATER", "bridgwater"),
        ("bridgewater", "bridgwater"),  # the most common misspelling, listed as an alias
        ("is anything open near bridgewater tonight", "bridgwater"),
        ("yeavil", "yeovil"),
        ("support for carers in Yeovil", "yeovil"),
        ("tauntn", "taunton"),  # not listed anywhere: found by closeness
        ("I'm near Minhead", "minehead"),
        ("burnham on sea", "burnham-on-sea"),
        ("Burnham-on-Sea", "burnham-on-sea"),
        ("shepton malet", "shepton-mallet"),
        ("glastonbery", "glastonbury"),
        ("Street", "street"),
        ("I live in Street", "street"),
        ("wells", "wells"),
        ("somerset", "somerset"),
    ],
)
def test_names_and_misspellings(gaz, text, key):
    place = gaz.resolve(text)
    assert place is not None and place.key == key


@pytest.mark.parametrize(
    "text, key, district",
    [
        ("TA6 3xx", "bridgwater", "TA6"),
        ("ta6 3xx", "bridgwater", "TA6"),
        ("TA63XX", "bridgwater", "TA6"),
        ("TA1", "taunton", "TA1"),
        ("my postcode is TA12 5AB", "yeovil", "TA12"),  # TA12 is not TA1
        ("BA16 0AA", "street", "BA16"),
        ("TA24", "minehead", "TA24"),
    ],
)
def test_postcode_districts(gaz, text, key, district):
    place = gaz.resolve(text)
    assert place.key == key and place.postcode == district


@pytest.mark.parametrize(
    "text",
    [
        "Leeds",
        "M1 1AE",  # a real-looking postcode outside the directory
        "I'm sleeping on the street",  # "street" as a word, not the town
        "I'm in a bad frame of mind",  # "frame" is not Frome
        "I'm not well",
        "",
        "   ",
    ],
)
def test_unknown_places_are_none(gaz, text):
    assert gaz.resolve(text) is None


@pytest.mark.parametrize(
    "text",
    ["I'd rather not say", "prefer not to say", "don't want to tell you", "no", "Nah.", "not sure",
     "none of your business", "skip", "not given"],
)
def test_declining_to_say(text):
    assert is_declined(text)


@pytest.mark.parametrize("text", ["Bridgwater", "near Taunton", "TA6", "I'm in Yeovil"])
def test_naming_a_place_is_not_declining(text):
    assert not is_declined(text)


def test_declined_answer_still_finds_an_exact_place_but_does_not_guess():
    assert resolve_place("not sure, near Taunton I think").key == "taunton"
    assert resolve_place("I'd rather not say") is None


def test_resolve_place_without_database_uses_data_files(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    from bot import settings

    settings.reset()
    try:
        assert resolve_place("bridgewater").key == "bridgwater"
    finally:
        settings.reset()


def test_entity_ruler_finds_places_in_sentences():
    import spacy

    # The ruler as bot/nlu/spacy_pipeline.py configures it; patterns go in after initialize(),
    # which empties an entity ruler.
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    nlp.initialize()
    ruler.add_patterns(entity_patterns())
    cases = {
        "is anything open near Bridgwater tonight": ("Bridgwater", "bridgwater"),
        "support for carers in yeovil": ("yeovil", "yeovil"),
        "i live in bridgewater": ("bridgewater", "bridgwater"),
        "my postcode is TA6 3XX": ("TA6 3XX", "bridgwater"),
        "I'm in Street": ("in Street", "street"),
        "I'm at LS1 4AP": ("LS1 4AP", "unknown_postcode"),
        "burnham-on-sea please": ("burnham-on-sea", "burnham-on-sea"),
    }
    for text, (span, key) in cases.items():
        ents = [(e.text, e.ent_id_) for e in nlp(text).ents if e.label_ == "PLACE"]
        assert ents == [(span, key)], text
    assert not nlp("I've been sleeping on the street").ents
    # Every entity the ruler finds resolves to the place its id names.
    assert resolve_place("in Street").key == "street"


def test_the_built_pipeline_recognises_places():
    from bot.nlu.spacy_pipeline import build

    nlp = build(entity_patterns())
    assert [e.ent_id_ for e in nlp("near bridgewater").ents] == ["bridgwater"]
    assert [e.ent_id_ for e in nlp("my postcode is TA6 3XX").ents] == ["bridgwater"]
