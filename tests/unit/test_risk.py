"""Risk detector: levels for many ways of saying (and not saying) that someone is at risk.

Cases are written for these tests, not taken from the evaluation sets. Content warning: they
describe suicide and self-harm, as people text them to a crisis line.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.nlu.risk import LEVELS, Risk, RiskDetector
from bot.nlu.spacy_pipeline import build


@pytest.fixture(scope="module")
def detector() -> RiskDetector:
    return RiskDetector(build(patterns=[]))


def level(detector: RiskDetector, text: str) -> str:
    return detector.assess(text).level


def at_least(got: str, want: str) -> bool:
    return LEVELS.index(got) >= LEVELS.index(want)


# --------------------------------------------------------------------------------- interface --
def test_levels_are_ordered() -> None:
    assert LEVELS == ("none", "concern", "urgent", "imminent")


def test_risk_is_frozen_and_signals_are_machine_names(detector: RiskDetector) -> None:
    text = "my brother says he wants to end his life"
    risk = detector.assess(text)
    assert isinstance(risk, Risk)
    with pytest.raises(dataclasses.FrozenInstanceError):
        risk.level = "none"  # type: ignore[misc]
    assert risk.signals and all(s.replace("_", "").isalpha() for s in risk.signals)
    assert all(s not in text.split() or s in {"plan"} for s in risk.signals)


# ------------------------------------------------------------------------------------ urgent --
URGENT = [
    # direct ideation
    "i want to end my life",
    "I keep thinking about killing myself",
    "I'm going to kill myself",
    "honestly I just want to die",
    "I feel suicidal again",
    "having suicidal thoughts every night",
    "I've been thinking about taking my own life",
    "I'm planning to hang myself",
    "I want to jump off a bridge",
    "thinking of stepping in front of a train",
    "I deserve to die",
    "suicide",
    # passive ideation
    "my family would be better off without me",
    "everyone would be happier if I was gone",
    "I hope I don't wake up tomorrow",
    "I just want to go to sleep forever",
    "there's nothing left to live for",
    "life isn't worth living",
    "I'm tired of being alive",
    "I wish I'd never been born",
    "I want it all to end",
    "I don't want to exist anymore",
    "no point in carrying on",
    "I'm done with life",
    "they won't have to worry about me much longer",
    # negations that are statements of intent
    "I don't want to be alive",
    "I can't carry on like this",
    "I can't do this any more",
    "I cannot keep going",
    "I won't be around much longer",
    "don't think I'll survive tonight",
    "I don't feel safe with myself",
    "I'm not sure I can keep myself safe",
    # self-harm
    "I've been cutting myself",
    "I cut my arms last night",
    "i burnt myself with a lighter on purpose",
    "I keep hurting myself",
    "I self harm",
    "relapsed with self harm after a year clean",
    "the urge to cut is so strong",
    "I want to cut again",
    # plan and means
    "I've been saving up my tablets",
    "I bought a rope today",
    "I've made a plan",
    "I've written letters to my kids",
    "what's the most painless way to die",
    "how many paracetamol would kill me",
    "I've given away all my things",
    # third party and carers
    "my daughter told me she wants to kill herself",
    "my mate keeps saying he wants to die",
    "my girlfriend is self harming",
    "my son is suicidal what do I do",
    "I'm worried my friend is going to hurt herself",
    "my nan is being neglected in her care home",
    "my stepdad hits my mum",
    "I think my neighbour's kids are being abused",
    # risk to others
    "I'm scared I'll hurt my baby",
    "I feel like I could kill someone",
    "I want to stab him",
    "I'm going to hurt my husband",
    # safeguarding, self
    "my partner hits me",
    "I'm scared to go home he'll hurt me",
    "I'm being abused",
    # death as the way out
    "dying is the only way out",
    "I just want the pain to stop forever",
    "no one would even notice if I was gone",
    "i dont see the point in living anymore",
    "ive had enough of life",
    "he said if I leave he'll kill me",
    "is it normal to want to die?",
    "does anyone else feel like ending it all?",
    "I'm a danger to myself",
    "my wife tried to hang herself last week",
]


@pytest.mark.parametrize("text", URGENT)
def test_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


# ---------------------------------------------------------------------------------- imminent --
IMMINENT = [
    "I've taken an overdose",
    "i just took 40 paracetamol",
    "took all my antidepressants an hour ago",
    "swallowed a whole packet of pills",
    "I'm not suicidal but I took twenty tablets",
    "I've overdosed",
    "I'm standing on the edge of the bridge",
    "im on the train tracks",
    "I'm sitting on the ledge",
    "I'm at the top of the multi storey car park and I want to jump",
    "I'm by the river and I want to end it",
    "I've got the rope round my neck",
    "the knife is in my hand",
    "I have the pills in front of me",
    "I'm about to jump",
    "I'm about to take all of my tablets",
    "I'm going to kill myself tonight",
    "gonna end it tonight",
    "this is my last message",
    "I cut too deep and it won't stop bleeding",
    "my sister took a load of pills and she's unconscious",
    "my dad took an overdose and is really drowsy",
    "he won't wake up",
    "I'm going to do it now, I have the tablets here",
    "I'm in the bath with a razor",
    "my partner has locked himself in the bathroom with a knife",
    "I've taken a load of my mum's sleeping pills",
]


@pytest.mark.parametrize("text", IMMINENT)
def test_imminent(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "imminent", text


# ------------------------------------------------------------------------ typos, SMS, shouting --
SMS_URGENT = [
    "i wanna die",
    "im gonna kms",
    "gonna kill myslef",
    "i feel sucidal",
    "suicidle thoughts r back",
    "I WANT TO DIE",
    "i cant go on",
    "dont want 2 live anymore",
    "i dont wanna be here anymore",
    "u lot would b better off without me",
    "i want to dieeeee",
    "been selfharming agen",
    "su1c1dal",
    "i want to unalive myself",
    "im thinkin bout suicide",
]


@pytest.mark.parametrize("text", SMS_URGENT)
def test_sms_and_typos_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


SMS_IMMINENT = [
    "i od'd",
    "jus took an od",
    "took an overdoes",
    "ive took 30 paracetomol",
    "gonna do it 2nite got the pills here",
    "im gonna kill myself tonite",
    "IVE TAKEN AN OVERDOSE",
]


@pytest.mark.parametrize("text", SMS_IMMINENT)
def test_sms_and_typos_imminent(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "imminent", text


# ---------------------------------------------------------------------------------- negation --
NEGATED = [
    "I'm not suicidal",
    "I would never hurt myself",
    "no thoughts of self harm",
    "I'm not going to kill myself, I just need to talk",
    "I don't self harm any more",
    "i have never wanted to die",
    "I'm not feeling suicidal today",
    "no suicidal thoughts",
]


@pytest.mark.parametrize("text", NEGATED)
def test_negated_is_not_urgent(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) in ("none", "concern"), text


def test_negated_signal(detector: RiskDetector) -> None:
    assert "negated" in detector.assess("I'm not suicidal").signals


@pytest.mark.parametrize("text", [
    "I'm not suicidal but I've taken 25 tablets",
    "not trying to scare anyone but I'm on the bridge",
])
def test_negation_in_another_clause_does_not_lower(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "imminent"


@pytest.mark.parametrize("text", [
    "I can't stop thinking about killing myself",
    "I don't know why but I want to die",
    "not gonna lie I want to end it",
    "I've never felt so suicidal",
])
def test_pseudo_negation_stays_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


# ------------------------------------------------------------------------ idioms, safe context --
SAFE = [
    "this essay is killing me",
    "I could murder a curry",
    "I'm dying to see the new film",
    "how do I kill a python process",
    "how can I kill all the weeds in my garden",
    "we shot a photo in the park",
    "help me hang a picture",
    "how do I blow up a balloon without a pump",
    "just killing time before my train",
    "knock 'em dead at your interview",
    "I'd kill for a coffee",
    "my feet are killing me",
    "she's going to kill it on stage",
    "I nearly died laughing",
    "I'd die of embarrassment",
    "that was career suicide",
    "I cut myself shaving",
    "I hurt myself at the gym",
    "I'm dead tired",
    "what's the weather like tomorrow",
    "how do I defeat the final boss in elden ring",
    "my phone is dying",
    "I want to end it with my boyfriend",
    "I need to cut my hair",
    "he killed it at the gig",
    "kill the lights",
    "my mum will kill me if I'm late",
    "I hurt myself laughing",
    "how do you shoot a good portrait",
    "I'm so excited I could die",
    "the suicide squad film was rubbish",
    "is it safe to drive in snow",
    "I've been cutting back on sugar",
    "I overdosed on chocolate lol",
    "I could kill myself for forgetting her birthday",
    "my mum is dying of cancer",
    "I'm going to the bridge club tonight",
    "I took 3 ibuprofen for my back",
]


@pytest.mark.parametrize("text", SAFE)
def test_idioms_and_safe_contexts_are_not_urgent(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) in ("none", "concern"), text


EDUCATION = [
    "what is suicide",
    "why do people self harm",
    "what does self harm mean",
    "how many people die by suicide in the UK each year",
    "I'm writing an essay on suicide prevention",
    "why did Hitler kill himself",
    "in the novel the character takes an overdose",
    "what are the warning signs of suicide",
    "how can I support someone who self harms",
    "how do I kill someone in call of duty",
]


@pytest.mark.parametrize("text", EDUCATION)
def test_questions_of_fact_are_at_most_concern(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) in ("none", "concern"), text


# ----------------------------------------------------------------------------------- concern --
CONCERN = [
    "I feel so hopeless",
    "I can't cope any more",
    "I'm having a panic attack",
    "I'm so lonely",
    "can't stop crying",
    "everything is overwhelming",
    "I'm scared and I don't know what to do",
    "haven't slept in days",
    "I feel worthless",
    "I'm really struggling tonight",
    "i feel like such a burden",
    "I'm not ok",
]


@pytest.mark.parametrize("text", CONCERN)
def test_distress_is_concern(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "concern", text


NONE = [
    "hello",
    "what time are you open",
    "thanks for your help",
    "can I book an appointment",
    "where is the nearest pharmacy",
    "my cat is called Pickle",
    "what's the capital of France",
    "I took 2 paracetamol for my headache",
    "I took my tablets this morning",
    "I'm at the station waiting for the 10pm train",
    "we cycled over the bridge to town",
]


@pytest.mark.parametrize("text", NONE)
def test_everyday_is_none(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "none", text


# --------------------------------------------------------------------------- signals for staff --
@pytest.mark.parametrize("text, signal", [
    ("my son says he wants to die", "third_party_risk"),
    ("I want to kill him", "risk_to_others"),
    ("I think my dad is being abused by his carer", "safeguarding"),
    ("I've taken an overdose", "overdose"),
    ("I'm on the bridge", "at_height"),
    ("I've been stockpiling my meds", "means"),
    ("I've written a goodbye note", "plan"),
    ("I keep cutting myself", "self_harm"),
    ("I want to die", "suicidal_ideation"),
])
def test_signals(detector: RiskDetector, text: str, signal: str) -> None:
    assert signal in detector.assess(text).signals


# ---------------------------------------------------------------------------------- robustness --
ODD = [
    "",
    " ",
    "\n\n\t",
    "😭😭😭",
    "\x00\x01\x02\x1b[31m",
    "a" * 5000,
    "?!?!?!",
    "ｉ ｗａｎｔ ｔｏ ｄｉｅ",
    "\u200b\u200b",
    "123456789",
    "'''''",
    "( ) [ ] { }",
    "lol " * 1500,
    "\ud800",
]


@pytest.mark.parametrize("text", ODD)
def test_never_raises(detector: RiskDetector, text: str) -> None:
    risk = detector.assess(text)
    assert risk.level in LEVELS


def test_non_str_input_does_not_raise(detector: RiskDetector) -> None:
    assert detector.assess(None).level in LEVELS  # type: ignore[arg-type]
    assert detector.assess(42).level in LEVELS  # type: ignore[arg-type]


def test_fullwidth_letters_are_read(detector: RiskDetector) -> None:
    assert level(detector, "ｉ ｗａｎｔ ｔｏ ｄｉｅ") == "urgent"


def test_risk_at_the_end_of_a_long_message_is_found(detector: RiskDetector) -> None:
    text = "today was a normal day at work and then I went home. " * 90 + "I've taken an overdose"
    assert len(text) > 4000
    assert level(detector, text) == "imminent"


def test_fast(detector: RiskDetector) -> None:
    texts = URGENT + SAFE + CONCERN
    detector.assess("warm up")
    t0 = time.perf_counter()
    for t in texts:
        detector.assess(t)
    per = (time.perf_counter() - t0) / len(texts)
    assert per < 0.01, f"{per * 1000:.1f} ms per message"
    t0 = time.perf_counter()
    detector.assess("blah mumble zorp qwertyuiop " * 200)
    assert time.perf_counter() - t0 < 0.5


def test_load_from_disk(tmp_path) -> None:
    nlp = build(patterns=[])
    nlp.to_disk(tmp_path / "nlp")
    loaded = RiskDetector.load(tmp_path / "nlp")
    assert loaded.assess("I want to kill myself").level == "urgent"


def test_lexicon_compiles_without_bad_patterns() -> None:
    # RiskDetector raises PatternError on a malformed pattern; building one is the check.
    from bot.nlu.risk_lexicon import RULES

    names = [r.name for r in RULES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "text,level",
    [
        ("I've just swallowed everything in my medicine cabinet", "imminent"),
        ("she has swallowed everything in the bathroom cupboard", "imminent"),
        ("I swallowed everything he told me", "none"),
        ("had to swallow my pride and apologise", "none"),
    ],
)
def test_swallowing_everything_is_an_overdose_unless_it_is_belief(detector, text, level):
    assert detector.assess(text).level == level


# ----------------------------------------------------------------------- message frames --
# Written for these tests. Each frame lowers what the words alone made urgent, for a reason a
# clinician would accept, and switches off when the message puts risk back in the present.
@pytest.mark.parametrize("text", [
    "kms in minecraft so i respawn at home lol",
    "my character jumped off the tower in skyrim and died, reloading now",
    "got killed by a noob in the lobby again, gonna kms and respawn",
])
def test_a_game_frame_is_not_risk(detector: RiskDetector, text: str) -> None:
    assert detector.assess(text).level in ("none", "concern")


@pytest.mark.parametrize("text", [
    "if the spurs lose again on sat im jumping off the bridge 😂😂",
    "lol if i have to sit through one more of his powerpoints im gonna kms",
    "sorry wrong chat!! meant for the group, if she sings that song again I'll end it all haha",
])
def test_a_joke_frame_is_concern_not_urgent(detector: RiskDetector, text: str) -> None:
    assert detector.assess(text).level == "concern"


@pytest.mark.parametrize("text", [
    "I self harmed years ago at school but I'm doing well now, how do I tell my partner",
    "tried to end my life in 2014. in a good place now and want to volunteer",
    "5 years clean from self harm today and feeling good about it",
    "It's six years since I overdosed, I'm stable now and I'd like to give something back",
])
def test_a_recovered_past_is_concern(detector: RiskDetector, text: str) -> None:
    risk = detector.assess(text)
    assert risk.level == "concern"
    assert "history" in risk.signals


@pytest.mark.parametrize("text", [
    # the present is back: no frame
    "urges to cut are back after 8 months clean, really struggling",
    "i was doing well for years but i want to kill myself again",
    "lol i want to kill myself",  # laughter alone is not a joke
    "if he comes home drunk again i want to die",  # a trigger with no laughter
    "my son keeps playing minecraft and yesterday he said he wants to kill himself",
    "lost again and threw my controller, honestly i want to kill myself",
])
def test_frames_do_not_hide_present_risk(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", [
    "how do I ask someone if they're thinking about suicide without making it worse",
    "what should I say if someone tells me they want to end their life",
])
def test_a_general_someone_is_not_a_person_at_risk(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) in ("none", "concern")


@pytest.mark.parametrize("text", [
    'Slide 7: passive ideation ("I wish I could go to sleep and not wake up") is still risk.',
    "Abstract. We examined suicidal ideation among 2,000 participants; results show the wish "
    "to die was associated with debt.",
    "Case vignette: a 40-year-old man tells his GP he wants to kill himself. Discuss the "
    "assessment.",
    "Saw on the news that another farmer took his own life",
])
def test_prose_with_no_first_person_is_at_most_concern(detector: RiskDetector,
                                                        text: str) -> None:
    assert level(detector, text) in ("none", "concern"), text


@pytest.mark.parametrize("text", [
    "doing an essay on suicide because i want to kill myself and nobody notices",
    "we talked about it in the lecture and now I keep thinking about ending it",
])
def test_prose_with_the_writer_in_it_stays_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", ["overdosed on quality street again lol",
                                  "overdosed on christmas chocolate"])
def test_overdosing_on_sweets_is_an_idiom(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "none"


@pytest.mark.parametrize("text", [
    "500 days sh free today 🎉",
    "hit 2 years without hurting myself today",
    "2 yrs since i last hurt myself today 🎉 felt like telling someone",
])
def test_a_span_free_of_it_is_a_recovered_past(detector: RiskDetector, text: str) -> None:
    assert level(detector, text) == "concern"


@pytest.mark.parametrize("text", [
    "been feeling suicidal for months",
    "i havent slept for days and i want to die",
    "its been 3 days since i started cutting again",
    "haha if i fail this exam im jumping off the roof 😂 not fully joking tho",
])
def test_spans_of_time_in_the_present_stay_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", [
    "dad has cut his arm on purpose, im holding a towel on it and its soaking through",
    "my partner has locked himself in the bathroom and wont answer, earlier he said he "
    "wanted to kill himself",
])
def test_an_act_told_by_what_is_happening_is_imminent(detector: RiskDetector,
                                                       text: str) -> None:
    assert level(detector, text) == "imminent"


@pytest.mark.parametrize("text", [
    # a frightened relative's question is not a question of fact
    "Mum has taken all her tablets and wont wake up, what does that mean",
    "partner has cut her wrists, blood everywhere, which course of action",
    "she swallowed a whole box of pills an hour ago, what does it mean",
    "son says he wants to kill himself, is that a sign",
])
def test_a_relatives_emergency_asked_as_a_question_is_not_prose(detector: RiskDetector,
                                                                 text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", [
    # a span without it, said with a negation
    "i used to cut my arms at uni. havent done it in years and my partner knows all about it",
    "self harmed a lot when i was at uni, haven't for ages, just wanted to say that out loud",
    # an ending said of the past
    "took an overdose back in 2011. came through it and i volunteer with a charity now",
    "was suicidal for a while after the redundancy years ago. thats long gone, got help from my gp",
    # a milestone: a long span since it
    "three years since my suicide attempt today. made myself a cake",
    # "no urges" says the present is clear, it does not bring it back
    "used to burn myself at school, 6 years clean now, no urges just memories when i see a lighter",
    # scars in a message that says the past is over
    "i self harmed years ago and i'm well now. my nephew asked about my scars today, what do i say",
    # told from a later age, a decade, "long ago", and endings in other words (session 17)
    "I tried to kill myself at 22. I'm 51 now and happy, it came up at work and shook me a bit",
    "went through a spell of wanting to die in the eighties. came out the other side, grandad now",
    "a long time ago i cut myself. now i have a job and a flat, i am happy. i just remember today",
    "had suicidal thoughts all through my teens. dbt sorted me out, dont get them anymore",
    "i used to burn my arms. all in the past, been clear since 2003, just never told anyone",
])
def test_a_past_the_person_says_is_over_is_concern(detector: RiskDetector, text: str) -> None:
    risk = detector.assess(text)
    assert risk.level == "concern", text
    assert "history" in risk.signals


@pytest.mark.parametrize("text", [
    # the same pasts, brought into the present: the frame stays off
    "i used to cut my arms at uni. havent done it in years but the urges are back",
    "took an overdose back in 2011. came through it but i want to do it again",
    "hurting myself since year 9 and my mum doesnt know",
    "three years since my suicide attempt and i want to try again",
    # a later age or a past beside an act of today is not a past (session 17)
    "I'm 42 now and I was fine for years, but I took an overdose an hour ago",
    "a long time ago i was in a bad way and happy now, but i have cut myself tonight",
    "took an overdose in the nineties, came out the other side, now i want to do it again",
])
def test_a_past_that_has_come_back_stays_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", [
    "what should i say if my brother ever tells me he wants to end it all? just want to be ready",
    "if a student ever said they were hurting themselves who do i tell, asking in case",
    "the scene on eastenders where she jumps off the bridge was so hard to watch",
    "that song 'i want to disappear forever' has been stuck in my head all day",
])
def test_hypotheticals_and_screen_stories_are_not_urgent(detector: RiskDetector,
                                                          text: str) -> None:
    assert not at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", [
    "my brother told me last night he wants to end it all, what should i say",
    "if my mate ever says it again i'll call 999, he said tonight he wants to die",
    "my mum watched eastenders and now says she wants to take all her pills",
    "someone in the film club just told me he's going to jump off the bridge tonight",
    # someone really said it: a hypothetical or the telly beside it does not make it a story
    "my son said he wants to end it all, what do i do if he ever tries? want to be prepared",
    "was watching telly and he said hes going to kill himself tonight",
])
def test_a_real_person_at_risk_is_urgent_even_beside_a_story(detector: RiskDetector,
                                                             text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text


@pytest.mark.parametrize("text", [
    # "minutes ago" is not a past: a person who was fine until today and has just acted
    "been doing fine since i got out of hospital but tonight i took all my tablets twenty minutes ago",
    "was ok for a while, then 10 mins ago i swallowed the lot. getting dizzy",
    # a joke said in earnest ("tbh", "ngl") is not a joke
    "lol if i fail this module im walking into the sea 😂 ngl some days i wouldnt mind",
])
def test_a_recent_act_or_an_earnest_joke_stays_urgent(detector: RiskDetector, text: str) -> None:
    assert at_least(level(detector, text), "urgent"), text
