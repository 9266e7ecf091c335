"""The statistical risk reading: trained from the corpus files, it reads words no pattern has,
never lowers the lexicon, and a fault in it still sends the person to a human.

Content warning: the examples describe suicide and self-harm as people text them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu import risk_model
from bot.nlu.risk import Risk, RiskDetector
from bot.nlu.risk_model import Example, RiskModel, read_corpus


def test_corpus_rows_name_a_cell_and_a_known_level(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("cell\tlevel\ttext\nsetting\tdire\tsample\n", "utf-8")
    with pytest.raises(ValueError, match="a.tsv:2"):
        read_corpus(tmp_path)
    (tmp_path / "a.tsv").write_text("text\tlevel\n", "utf-8")
    with pytest.raises(ValueError, match="first line"):
        read_corpus(tmp_path)


def test_the_project_corpus_covers_every_cell_of_the_taxonomy() -> None:
    """docs/risk.md names the cells; the training corpus has examples of each."""
    doc = (risk_model.ROOT / "docs" / "risk.md").read_text(encoding="utf-8")
    import re

    cells = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.M))
    assert len(cells) >= 25
    have = {e.cell for e in read_corpus()}
    assert cells - have == set(), f"cells without training examples: {sorted(cells - have)}"


def test_thresholds_keep_the_recall_asked_for() -> None:
    scores = [0.9, 0.8, 0.7, 0.3, 0.1]
    positive = [True, True, True, True, False]
    assert risk_model.choose_threshold(scores, positive, 0.75) == 0.5  # capped at 0.5
    assert risk_model.choose_threshold(scores, positive, 1.0) == 0.3
    assert risk_model.choose_threshold([0.05, 0.01], [True, True], 1.0) == risk_model.MIN_THRESHOLD


@pytest.fixture(scope="module")
def tiny(full_detector: RiskDetector) -> RiskModel:
    """A model trained on a handful of examples written here (no lexicon word in them)."""
    rows = [Example("sat in the motor in the lock up with the engine going", "imminent"),
            Example("in the motor with the engine going and the door shut", "imminent"),
            Example("engine going in the lock up, door down", "imminent"),
            Example("the motor needs a new engine, garage says friday", "none"),
            Example("lock up the shop before you go home", "none"),
            Example("what time does the garage shut", "none"),
            Example("feeling rubbish and tearful today", "concern"),
            Example("so tearful and rubbish all week", "concern"),
            Example("nothing matters and im done with all of it for good", "urgent"),
            Example("done with all of it for good, nothing matters", "urgent")]
    prepare = full_detector.prepare
    return RiskModel.fit([prepare(e.text) for e in rows], [e.level for e in rows], 0.5, 0.5)


def test_the_model_reads_a_setting_no_pattern_names(full_detector: RiskDetector,
                                                      tiny: RiskModel) -> None:
    text = "im sat in the motor in the lock up engine going"
    lexicon_only = RiskDetector(full_detector.nlp)
    assert lexicon_only.assess(text).level in ("none", "concern")
    with_model = RiskDetector(full_detector.nlp, tiny)
    risk = with_model.assess(text)
    assert risk.level == "imminent"
    assert "model_imminent" in risk.signals


def test_the_model_never_lowers_an_imminent_reading(full_detector: RiskDetector,
                                                    tiny: RiskModel) -> None:
    text = "i have taken all my tablets"
    lexicon_only = RiskDetector(full_detector.nlp).assess(text)
    assert lexicon_only.level == "imminent"
    assert RiskDetector(full_detector.nlp, tiny).assess(text) == lexicon_only


def test_an_academic_frame_caps_the_model_only_without_first_person(
        full_detector: RiskDetector, tiny: RiskModel) -> None:
    detector = RiskDetector(full_detector.nlp, tiny)
    framed = "essay question: why is the engine going in the lock up with the door down"
    assert detector.assess(framed).level in ("none", "concern")
    mine = "for my essay i sat in the motor in the lock up with the engine going"
    assert detector.assess(mine).level == "imminent"


class _Broken:
    def read(self, prepared: str):
        raise RuntimeError("model fault")


def test_a_fault_in_the_model_counts_as_urgent(full_detector: RiskDetector) -> None:
    detector = RiskDetector(full_detector.nlp, _Broken())  # type: ignore[arg-type]
    risk = detector.assess("hello, what time is it")
    assert risk == Risk("urgent", ("detector_error",))


@pytest.mark.parametrize("text", ["x" * 10000, "😢😢😢", "Ich will nicht mehr leben",
                                  "\x00\x07\x1b[31m", "", "   "])
def test_any_input_gets_a_level(full_detector: RiskDetector, text: str) -> None:
    assert full_detector.assess(text).level in ("none", "concern", "urgent", "imminent")


def test_saved_model_loads_and_reads_the_same(tmp_path: Path, tiny: RiskModel,
                                              full_detector: RiskDetector) -> None:
    tiny.save(tmp_path)
    again = RiskModel.load(tmp_path)
    prepared = full_detector.prepare("engine going in the lock up")
    assert again.read(prepared) == tiny.read(prepared)


def test_a_missing_model_leaves_the_lexicon_working(tmp_path: Path, caplog) -> None:
    detector = RiskDetector.load(risk_model.ROOT / "build" / "spacy_en", tmp_path / "absent") \
        if (risk_model.ROOT / "build" / "spacy_en").is_dir() else None
    if detector is None:
        pytest.skip("build/spacy_en not built (make setup)")
    assert detector.model is None
    assert "risk model" in caplog.text
    assert detector.assess("i want to kill myself").level == "urgent"


# --- cells, sources and a model that is current ----------------------------------------------

def test_the_model_learns_cells_with_their_levels() -> None:
    assert Example("t", "imminent", "plan", "round2-risk").label == "plan/imminent"
    assert Example("t", "urgent", "plan", "round2-risk").label == "plan/urgent"
    assert Example("t", "none", "nlu:greet", "nlu").label == "nlu/none"
    assert Example("t", "concern").label == "concern"
    assert [risk_model.level_of(x) for x in ("plan/imminent", "nlu/none", "urgent")] == [
        "imminent", "none", "urgent"]
    corpus = read_corpus()
    assert {e.source for e in corpus} >= {"risk-cells", "round3-a"}


def test_a_reading_adds_up_every_cell_of_its_level(full_detector: RiskDetector) -> None:
    """Two cells of urgent risk, each said one way, and two harmless cells: a message like
    either risk cell reads urgent, though no single class holds half the probability."""
    rows = [Example("sat in the motor in the lock up with the engine going", "imminent", "setting"),
            Example("engine going in the lock up with the door down", "imminent", "setting"),
            Example("wrote letters to my kids and gave the dog to next door", "urgent", "farewell"),
            Example("gave my things away and wrote the letters tonight", "urgent", "farewell"),
            Example("what time does the garage shut on sunday", "none", "everyday"),
            Example("can you tell me where the chemist is", "none", "everyday"),
            Example("died on the last boss again lol", "none", "gaming"),
            Example("the boss fight killed me ten times", "none", "gaming")]
    prepare = full_detector.prepare
    model = RiskModel.fit([prepare(e.text) for e in rows], [e.label for e in rows], 0.5, 0.5)
    assert len(model.classifiers[0].classes_) == 4  # the cells
    assert list(model.classifiers[1].classes_) == ["imminent", "none", "urgent"]  # the levels
    concern, urgent, imminent = model.probabilities([prepare("wrote the letters, gave the dog away")])[0]
    assert urgent >= 0.5 and concern >= urgent >= imminent
    assert model.probabilities([prepare("where is the chemist on sunday")])[0][1] < 0.5


def test_cross_validation_holds_out_a_writer_whole(monkeypatch) -> None:
    """A fold never trains on a message from the source it is scoring: each corpus file is
    one writer, and a writer's own phrasing in training makes held-out scores look better
    than blind batches then are."""
    seen = []

    class Recorder:
        @classmethod
        def fit(cls, texts, labels, *args, **kwargs):
            seen.append(set(texts))
            return cls()

        def probabilities(self, texts):
            seen[-1] = (seen[-1], set(texts))
            return [(0.5, 0.5, 0.1) for _ in texts]

    monkeypatch.setattr(risk_model, "RiskModel", Recorder)
    sources = [f"file{i % 6}" for i in range(60)]
    texts = [f"{s} message {i}" for i, s in enumerate(sources)]
    labels = ["urgent" if i % 2 else "none" for i in range(60)]
    risk_model.cross_validate(texts, labels, sources)
    assert len(seen) == 5
    for trained, scored in seen:
        held_out = {t.split()[0] for t in scored}
        assert not {t.split()[0] for t in trained} & held_out


def test_a_model_built_from_other_inputs_is_not_current(tmp_path: Path, full_detector) -> None:
    model = RiskModel.fit([full_detector.prepare(t) for t in ("help me", "hello")],
                          ["urgent", "none"], 0.5, 0.5,
                          {"inputs": risk_model.inputs_hash(risk_model.training_inputs())})
    model.save(tmp_path)
    assert risk_model.is_current(tmp_path)
    meta = tmp_path / risk_model.META_FILE
    meta.write_text(meta.read_text().replace(model.meta["inputs"], "0" * 16))
    assert not risk_model.is_current(tmp_path)
    assert not risk_model.is_current(tmp_path / "absent")


# The lexicon's urgent reading is weighed by the model (RiskDetector._weighed): set aside only
# when the model's urgent probability is under the bar for what the reading rests on.


class _Fixed:
    """A model that gives every message the same urgent probability, with the given bars."""

    def __init__(self, p_urgent: float, bars: dict) -> None:
        self.p_urgent, self.bars = p_urgent, bars

    def read(self, prepared: str) -> risk_model.Reading:
        return risk_model.Reading("none", 0.0, self.p_urgent, 0.0)


FIRST = "i want to kill myself"
ABOUT_HIM = "my brother keeps saying he wants to kill himself"


def test_an_urgent_reading_says_whether_the_writer_said_it_of_themselves(
        full_detector: RiskDetector) -> None:
    lexicon = RiskDetector(full_detector.nlp)
    assert (lexicon.assess(FIRST).level, lexicon.assess(FIRST).basis) == ("urgent", "first")
    assert (lexicon.assess(ABOUT_HIM).level, lexicon.assess(ABOUT_HIM).basis) == ("urgent", "cue")
    assert lexicon.assess("i have taken all my tablets").basis == ""  # imminent: no basis
    assert risk_model.basis_of(lexicon.prepare(FIRST)) == "first"


def test_a_model_sure_the_words_are_not_risk_sets_the_reading_aside(
        full_detector: RiskDetector) -> None:
    bars = {"first": 0.1, "cue": 0.3}
    unsure = RiskDetector(full_detector.nlp, _Fixed(0.2, bars))  # type: ignore[arg-type]
    # Said of oneself, the reading stands unless the model is very sure (under 0.1) ...
    assert unsure.assess(FIRST).level == "urgent"
    # ... about someone else, under the higher bar it is concern, marked for the console.
    aside = unsure.assess(ABOUT_HIM)
    assert aside.level == "concern" and "unconfirmed" in aside.signals
    sure = RiskDetector(full_detector.nlp, _Fixed(0.05, bars))  # type: ignore[arg-type]
    assert sure.assess(FIRST).level == "concern"
    # An imminent reading always stands.
    assert sure.assess("i have taken all my tablets").level == "imminent"


def test_without_bars_the_lexicons_reading_stands(full_detector: RiskDetector) -> None:
    detector = RiskDetector(full_detector.nlp, _Fixed(0.0, {}))  # type: ignore[arg-type]
    assert detector.assess(ABOUT_HIM).level == "urgent"


def test_the_bars_keep_what_they_are_asked_to_keep() -> None:
    scores = [0.9, 0.8, 0.6, 0.2, 0.05]
    positive = [True, True, True, True, False]
    assert risk_model.bar_keeping(scores, positive, 1.0, 0.5) == 0.2  # keeps every positive
    assert risk_model.bar_keeping(scores, positive, 0.75, 0.5) == 0.5  # never above the ceiling
    assert risk_model.bar_keeping(scores, [False] * 5, 0.99, 0.5) == 0.0  # nothing to go on


def test_the_trained_model_has_a_bar_per_basis_under_its_threshold(
        full_detector: RiskDetector) -> None:
    model = full_detector.model
    assert set(model.bars) == set(risk_model.TARGET_KEEP)
    assert all(0.0 <= bar <= model.urgent_threshold for bar in model.bars.values())
