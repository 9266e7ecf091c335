"""The risk lexicon: how people say they are at risk, as token patterns over lemmas.

Written from general knowledge of how people in the UK (young and old, SMS and web chat) talk about
suicide, self-harm, abuse and distress, and from crisis-line practice (passive ideation counts;
"I can't go on" is a warning sign; a plan, means to hand or an act under way is an emergency).

Pattern mini-language (compiled to spaCy ``Matcher`` patterns by ``risk.py``):

    word        token whose lemma key equals the key of ``word`` ("took" matches "take", "taking")
    a|b|c       any of these lemma keys
    =a|b        surface form, lower case (for tense: "=took" is not "take")
    @NAME       a word class from ``MACROS``
    #           a number ("30", "twenty")
    ~N          up to N further words (not punctuation)
    x?          optional token
    (a b/c/)    phrase alternatives; a trailing "/" makes the group optional
    $           (last) the match must end the clause

Negations are written as "not" (``n't`` and ``cannot`` reach the matcher as "not").
"""
# A pattern reads best whole, on one line, even past the line length:
# ruff: noqa: E501

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

MACROS: Dict[str, str] = {
    "REFL": "myself|himself|herself|themselves|themself|yourself|ourselves|oneself",
    "OBJ": "me|him|her|them|us",
    "SUBJ": "i|he|she|they|we",
    "REL": (
        "mum|mother|mummy|dad|father|daddy|parent|son|daughter|child|kid|baby|brother|sister|"
        "partner|wife|husband|boyfriend|girlfriend|bf|gf|ex|friend|mate|bestie|flatmate|"
        "housemate|roommate|neighbour|neighbor|boss|manager|colleague|teacher|nan|nana|nanna|gran|"
        "granny|grandma|grandad|grandpa|grandmother|grandfather|uncle|aunt|auntie|cousin|"
        "stepdad|stepmum|fiance|fiancee|niece|nephew|grandson|granddaughter|student|pupil|"
        "client|patient|carer|missus|lad|girl|boy|sibling|twin|family|spouse|teenager|teen|"
        "stepson|stepdaughter|relative"
    ),
    "PERSON": "him|her|them|someone|somebody|people|everyone|everybody|anyone|anybody",
    "PILLS": (
        "pill|tablet|paracetamol|ibuprofen|aspirin|codeine|cocodamol|co-codamol|tramadol|"
        "sertraline|citalopram|fluoxetine|mirtazapine|amitriptyline|venlafaxine|diazepam|valium|"
        "zopiclone|pregabalin|gabapentin|propranolol|quetiapine|olanzapine|lithium|insulin|med|"
        "meds|medication|medicine|painkiller|antidepressant|capsule|prescription|morphine|"
        "oxycodone|methadone|lorazepam|xanax|benzo|benzos|sleeper|tabs|pills|tablets|anadin|"
        "nurofen|lemsip"
    ),
    "QTY": (
        "all|whole|entire|everything|load|loads|lot|lots|bunch|handful|box|packet|pack|bottle|strip|stash|"
        "many|heap|rest|double|triple|bag|tub|jar|month|fistful|shitload|dozen|hundred|"
        "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|fifteen|twelve|ten|eleven|"
        "thirteen|fourteen|sixteen|seventeen|eighteen|nineteen|five|six|seven|eight|nine"
    ),
    # past forms: "took" is an act, "take" may be an intention
    "TOOK": "=took|=taken|=swallowed|=necked|=downed|=popped|=ate|=eaten|=had|=done|=injected|=chucked|=tooken",
    "MEANS": (
        "rope|noose|knife|blade|razor|gun|ligature|belt|cord|charcoal|helium|pill|tablet|"
        "paracetamol|meds|medication|tablets|pills|scissors|glass|lighter|bottle|tabs"
    ),
    "HEIGHT": (
        "bridge|ledge|edge|cliff|cliffs|parapet|viaduct|flyover|overpass|railing|railings|"
        "track|tracks|railway|cliffside|clifftop"
    ),
    "PLACE_WEAK": (
        "roof|rooftop|balcony|platform|station|river|canal|sea|beach|lake|water|motorway|"
        "pier|harbour|dock|quarry|reservoir|tower|window|building|level|car|park|woods|forest"
    ),
    "BODY": (
        "arm|arms|wrist|wrists|leg|legs|thigh|thighs|skin|stomach|tummy|hip|hips|chest|body|"
        "ankle|ankles|forearm|forearms|shoulder|shoulders"
    ),
    "NOW": "now|tonight|today",
}


@dataclass(frozen=True)
class Rule:
    """One kind of risk expression and how to score it.

    level      what a plain match means
    signals    machine names reported for it
    negatable  a negation just before it ("not", "never", "no") lowers it one level; False for
               phrases that carry their own negation ("don't want to live", "can't go on")
    topic      a bare mention of the subject (suicide, self-harm, overdose): urgent when it is
               about the person or someone they know, concern when it is a question, a
               definition, the news, a film, an essay, history
    person     a general subject ("why do people ...", "someone in a film") makes it concern
    context    counts only beside another urgent signal ("I've got the rope", "going to do it"),
               otherwise concern
    qty        needs an overdose-sized amount in the match (a number >= 5, "all", "a box of")
    others     risk to others: needs an intention ("want to", "might", "scared I'll") and a person
    act        an act under way: negated or "years ago" makes it urgent, never lower
    accident   "I cut myself shaving", "hurt myself at the gym": an accident word nearby drops it
    first_only the speaker must be the subject ("I'm not safe"); about a third person it becomes
               safeguarding, about no one it is dropped
    third_only the speaker must not be the subject ("he hits me": safeguarding; "I hit him" is not)
    idiom      a safe phrase: any risk match it overlaps is dropped ("killing myself laughing")
    intent     a statement of intention; with "now/tonight" and "going to" it becomes imminent
    needs_negation  counts only when negated or doubted ("I don't think I can keep myself safe")
    """

    name: str
    level: str
    signals: Tuple[str, ...]
    patterns: Tuple[str, ...]
    negatable: bool = True
    topic: bool = False
    person: bool = True
    context: bool = False
    qty: bool = False
    others: bool = False
    act: bool = False
    accident: bool = False
    first_only: bool = False
    third_only: bool = False
    idiom: bool = False
    intent: bool = False
    needs_negation: bool = False


def R(name: str, level: str, signals: str, *patterns: str, **flags: bool) -> Rule:
    return Rule(name, level, tuple(signals.split()), tuple(patterns), **flags)


SI = "suicidal_ideation"
SH = "self_harm"

RULES: Tuple[Rule, ...] = (
    # ---------------------------------------------------------------- safe phrases (idioms) --
    R("idiom_kill", "none", "idiom",
      "kill|killing time", "kill @REFL (laugh/laughing/with laughter)",
      "=killing @REFL (at/with/over) work", "=killing @REFL (trying/to get/to finish/to meet/to make/to pay/to keep/to please/to hit)",
      "could|would kill for", "kill it|them on|at", "kill the (mood/vibe/lights/light/engine/process/task/app/program/battery)",
      idiom=True),
    R("idiom_die", "none", "idiom",
      "die|dying|died of|from (embarrassment/shame/laughter/laughing/boredom/cringe)",
      "die laughing", "=dying to", "to die for", "(bored/sick/bore) to death", "(scared/frightened/worried) to death",
      "over my dead body", "dead (tired/funny/good/easy/serious/on/end/heat/ringer/cert)",
      "drop dead gorgeous", "die hard", "dying (breed/art/wish)", "phone|battery|laptop be? (dead/dying/die)",
      idiom=True),
    R("idiom_believe", "none", "idiom",
      "(swallowed/swallow/swallowing) ~1 (everything/it/all) ~1 (he/she/they/you/people/anyone/someone) ~1 (say/tell/told/said/sell|sold)",
      "(swallowed/swallow) (it/that) (whole/hook)", "swallow my pride", idiom=True),
    R("idiom_rather_die", "concern", "distress", "rather (be/) (die/dead) than", idiom=True),
    R("idiom_could_kill_self", "concern", "distress",
      "could kill @REFL (for/over) (forget/forgetting/being|doing|saying|missing|losing|not|that|this)", idiom=True),
    R("idiom_suicide", "none", "idiom",
      "(career/political/social/commercial/electoral/financial/professional/fashion/brand) suicide",
      "suicide (squad/door/doors/drill/drills/run/runs/sprint/sprints/bomber/bombers/bombing/bombings/attack/attacks/mission/missions/blonde/squeeze/king/vest/pact film)",
      idiom=True),
    R("idiom_self", "none", "idiom",
      "cut @REFL (some/a) (slack/slice/piece/break)", "cut @REFL off from", "burn @REFL out",
      "=burnt|=burned|=burning @REFL out", "shoot @REFL in the foot", "hurt @REFL laughing",
      "(pull/pulling/tear/tearing) my hair out", "kick @REFL", "beat @REFL up about|over",
      "take my (own/) life back", "take my life in my (own/) hands",
      "(cut/cutting/cuts) (back/down/out/corners/ties/costs/it fine/it close/the cord|in line|in front|through)",
      "=overdosed|=overdosing|=overdose|=od on (chocolate/sugar/caffeine/coffee/cake/sweets|candy|tv|netflix|carbs|junk|pizza|food|sun|exercise|cuteness)",
      "=overdosed|=overdosing|=od on ~2 (chocolate/chocolates/sweets/biscuits/cake/cheese/crisps/pies/turkey/pudding/street/roses/celebrations/telly/tv/coffee/memes)",
      "end it|things with", "end it there|here", "end it on a", "hang in there",
      "safe to (drive/eat/use/travel/go/drink/swim/fly/say/assume)", "edge of my seat",
      "bridge of my|his|her|the nose", "on the edge of (town/the city/the village/the world)",
      idiom=True),

    # ---------------------------------------------------------------------- suicidal ideation --
    R("kill_self", "urgent", SI,
      "kill @REFL", "=unalive @REFL", "take my|his|her|their (own/) life",
      "end (my/his/her/their) (own/) life", "end (it all/it/everything/things/my existence)",
      "commit|attempt|attempted|try suicide", "hang|hanging|hung @REFL", "shoot @REFL",
      "blow my|his|her brains out", "put|stick a bullet in|through my head|brain",
      "(gun/bullet) to|in my head", "drown|gas|poison|electrocute|suffocate|smother|strangle @REFL",
      "starve|drink @REFL to death", "set @REFL on fire|alight",
      "slit|slash|cut my|his|her|their (wrist/wrists/throat)",
      "jump off|from ~3 @HEIGHT|building|roof|balcony|window|tower|car|multi|block",
      "jump|throw|step|walk|lie|lay @REFL? (in front of/under/infront of) ~1 train|bus|lorry|truck|car|traffic",
      "walk|swim ~1 into the (sea/river/lake/water)", "throw @REFL off|from",
      "crash|drive my car into|off", intent=True),
    R("want_die", "urgent", SI,
      "want|wish|ready|prefer|rather|deserve|need|try|trying|plan|decide|hope|like|long ~2 to? die",
      "(want/wish/hope/pray) ~2 (i/to be) ~2 dead", "(wish/hope/pray) ~2 i (was/were/be) (dead/gone)",
      "(better/happier/easier) off dead", "(want/wish) ~2 to be gone", "pray ~3 (die/dead/take me)",
      "(think/thinking/thought/thoughts) ~2 (about/of) (die/dying/death/killing/ending)",
      "(fantasise/fantasize/dream) ~2 about (die/dying/death)", "kill me now please",
      "(think/thinking/thought/fantasise|fantasize|fantasising|dream|dreaming) ~2 about (being/getting) (~2 killed/dead/hurt)",
      "(want/wish) (someone/somebody/something) ~2 (kill/killed) me", intent=True),
    R("suicidal_thoughts", "urgent", SI,
      "suicidal (thought/thoughts/feeling/feelings/ideation/urge/urges/plan/plans/mood/intent)",
      "(feel/feeling/felt/be/get/getting) suicidal", "urges to (die/end it/kill)"),
    R("passive_better_without", "urgent", SI,
      "better|easier|happier ~2 without me|him|her|them|us",
      "better|easier|happier ~2 if i (be/was/were/be not) (gone/dead/here/around/not here/not around/never born)",
      "(world/everyone/everybody/family) ~4 better ~2 without me",
      "when i be (gone/dead)", "after i be (gone/dead)", "(be/get) rid of me",
      negatable=False),
    R("passive_sleep", "urgent", SI,
      "(wish/hope/want/pray/rather/prefer/would|could) ~5 not|never ~2 wake up",
      "sleep|asleep ~1 and not|never ~2 wake up", "not want to wake up", "sleep forever",
      "(go/fall) to sleep ~1 forever", "never wake up again", "not wake up tomorrow|again",
      negatable=False),
    R("passive_no_live", "urgent", SI,
      "not ~2 want ~1 to (live/exist/be alive/be here anymore/be here any longer/be here no more/be around/be on this earth/be in this world/carry on/go on/keep going/continue/exist anymore/live anymore/be alive anymore)",
      "not ~1 deserve to (live/be alive/be here/exist)", "(no/nothing) ~1 reason to (live/be alive/carry on/go on/keep going/stay/exist)",
      "no (point/reason) (in/of/) (living/life/being alive/carrying on/going on/existing/staying alive/trying anymore)",
      "nothing (left/) to live for", "not worth (living/it anymore/being alive)",
      "life be? not worth (it/living)", "what be the point (in/of) (living/being alive/carrying on/going on/staying alive/existing|exist/being here/it all/anything anymore/my life)",
      "tired|sick|done|finished|weary of|with (living/life/being alive/existing/being here/this life)",
      "wish i ~1 (not/never) ~2 (exist/born/existed)", "wish i be never born",
      "want|wish|need ~2 to (disappear/vanish) (for good/forever/for ever/permanently)",
      "want|wish|need (it/everything/all/this/life) ~2 to (end/stop/be over) (forever/for good/permanently/$)",
      "want|wish|need the (pain/hurt/suffering) ~2 to (end/stop/be over) (forever/for good/permanently)",
      "(no one/nobody/anyone) ~3 (notice/miss/care) ~3 if i (be/was/were/died/die|disappeared|killed) (gone/dead/not here/not around/$)",
      "not ~1 see (the/any) point (in/of) (living/going on/carrying on/being alive/life anymore/being here)",
      "(had/have) enough of (life/living/being alive/existing/this life)",
      "want it all to (end/be over/stop)", "not (want/wanna) to be alive",
      "hate (be/being) alive", "ready to go $",
      negatable=False),
    R("passive_cant_go_on", "urgent", SI,
      "can not ~1 (go on/carry on/keep going/keep living/do this anymore/do this any longer/do it anymore/take it anymore/take this anymore/take any more/live like this/live with this/live with myself/be here anymore/be here any longer/continue)",
      "can not ~1 do this (no more/anymore)", "not ~1 (go/able) ~1 to (carry on/go on/keep going) (anymore/any longer/much longer/like this/$)",
      negatable=False),
    R("passive_not_around", "urgent", SI,
      "not ~1 (going/gonna) to be (around/here) (much longer/for long/anymore/tomorrow/by morning/in the morning/next week)",
      "will not be (around/here) (much longer/for long/anymore/tomorrow/by morning/in the morning/to see)",
      "be gone (soon/by morning/by tomorrow/tomorrow/forever)", "not ~1 (going/gonna) to make it (through/past) (tonight/the night/today/this/the weekend)",
      "not ~1 (going/gonna) to make it $", "not (going/gonna) to (survive/last) (tonight/the night/much longer)",
      "will not (have to/need to) (worry/deal/put up) ~2 me (anymore/much longer/for long/again)",
      "not be a (burden/problem) (much longer/for long/anymore)", "(be/get) rid of me (soon/forever/for good)",
      "last time (you/anyone) ~1 (hear/see) from me",
      negatable=False),
    R("unsafe", "urgent", "unsafe",
      "not ~1 (feel/) safe", "(feel/be) unsafe", "can not keep @REFL safe", "not keep @REFL safe",
      "danger to @REFL", negatable=False, first_only=True),
    R("topic_suicide", "urgent", SI,
      "suicide", "suicidal", "=unalive", "=sucide", "noose", topic=True),

    R("death_only_way", "urgent", SI,
      "(only/one/best) (way out/option/answer/solution/escape/choice/way to make it stop) ~3 (die/dying/death/dead/suicide/kill/killing/end it/ending it)",
      "no (way out/other way/escape/other option/option/choice/other choice) ~3 (except/but/other than/apart from/than) (die/dying/death/suicide/dead/killing/ending)",
      "(die/dying/death/suicide/dead) ~2 be (the/my) only (way out/option/answer/solution/escape/choice)",
      negatable=False),
    R("jump_intent", "urgent", "suicidal_ideation at_height",
      "(going/gonna/want/will/ready|about|plan|planning|thinking about|decide|decided) to jump $",
      "(going/gonna/want/will) to jump (now/tonight/today)", intent=True),
    R("keep_safe", "urgent", "unsafe",
      "(keep/stay) (@REFL/) safe", needs_negation=True),
    R("feel_unsafe_self", "urgent", "unsafe",
      "(struggle/struggling/hard|fight|fighting) to (keep @REFL/stay) safe", negatable=False),
    R("survive_doubt", "urgent", SI,
      "(survive/last/make it through/get through) (tonight/the night/the weekend/till morning/until morning/much longer)",
      needs_negation=True),
    # ------------------------------------------------------------------------------ self-harm --
    R("self_harm_topic", "urgent", SH,
      "self (harm/harming/harmed/harmer/injury/injuring/injure|injured/mutilation|mutilate)", "=sh",
      topic=True),
    R("harm_self", "urgent", SH,
      "harm @REFL", "hurt|hurting @REFL (on purpose/deliberately/again/$)", "hurt @REFL", accident=True),
    R("self_injury", "urgent", SH,
      "cut|burn|scratch|hit|punch|bite|carve|scar|bruise|batter|slice|slash|stab|pinch|scald|starve|bang @REFL",
      "cut|cutting|burn|burning|scratch|slice|slash|carve|scar|stab ~1 my|his|her|their @BODY",
      "bang|banging|hit|hitting my|his|her head against", "=cutting|=cut|=burning (again/myself)",
      "(start/started/been/keep/keeps|kept/back to) =cutting|=burning",
      "(sh/self harm/cutting/cut) ~3 (relapse/relapsed/urges/urge)",
      "(relapse/relapsed) ~3 (sh/self harm/cutting/cut/burning)",
      "(urge/urges/temptation/craving|cravings) to (cut/burn/self harm/sh/hurt @REFL/harm @REFL)", "=sh (urges/urge/again/scars/wounds)",
      "(want/wish/need/urge/urges/tempted/crave|craving|itching|going|gonna|started|start) to (cut/burn/bleed) (again/for/so/because/cos/tonight/now/badly/really/so bad|deeper)",
      "(want/wish/need/urge/urges/tempted/crave|craving|itching|going|gonna|started|start) to (cut/burn/bleed) $",
      "cut ~1 (too/so) deep", "(razor/blade/blades) ~2 (my/on) (skin/@BODY)", accident=True),

    # ------------------------------------------------------------------ overdose, plan, means --
    R("overdose_taken", "imminent", "overdose act_in_progress",
      "@TOOK an|a ~1 overdose", "=take an|a overdose (already/earlier/just now)",
      "=overdosed", "=overdosing", "be overdose", act=True),
    R("pills_taken", "imminent", "overdose act_in_progress",
      "@TOOK ~6 @PILLS", "@TOOK ~3 of ~5 @PILLS", "(swallowed/necked/downed) ~3 (the/them/it/all/everything/bottle|lot)",
      "@PILLS ~2 (i/he/she/they) (just/) @TOOK", act=True, qty=True),
    R("overdose_topic", "urgent", "overdose", "overdose|overdoses", "lethal|fatal|toxic dose|amount",
      topic=True),
    R("overdose_intent", "urgent", "overdose means",
      "take|swallow|neck ~4 @PILLS", intent=True, qty=True),
    R("method_seeking", "urgent", "suicidal_ideation plan",
      "(painless/easy/easiest/quick/quickest/best/surest/quietest/fastest|simplest) (way/ways/method/methods) to (die/kill @REFL/end it/end my life/commit suicide/hang @REFL/overdose/od)",
      "how (many/much) (@PILLS/of @PILLS/of my @PILLS) ~4 (kill/die/dead/lethal/fatal/overdose)",
      "how (many/much) ~4 (kill me/kill @REFL/to die/be lethal/be fatal)",
      "how (to/do/can/could/would/should) (i/you/one/) ~1 (kill/hang/drown/poison/overdose/od) @REFL",
      "(research/researched/researching/google/googled/googling/look|looked|looking up/search|searched|searching/read|reading about) ~3 (how/ways/methods/way) to (die/kill/end/overdose/hang)",
      "(lethal/fatal) (dose/amount/quantity) of", person=False),
    R("plan", "urgent", "plan",
      "(have/got/made/make/making) a (plan/date) $", "(have/got/made/making) a plan to",
      "plan|planned|planning ~2 (how/when/where) ~2 (do it/die/kill/end/going to)",
      "plan|planned|planning my (death/suicide/exit/funeral)", "(set/picked/chosen/pick|choose) a date",
      "know (how/when/where) (i) ~3 (do it/going to do it/would do it/will do it)",
      "(suicide/goodbye/farewell) (note/notes/letter/letters/message|video)",
      "have (written/wrote) (a/my) (note/letter/letters/notes) $",
      "(written/wrote/write|writing|left|leave) ~2 (note/notes/letter/letters) (to/for) (everyone/everybody/my family/my kids|children|mum|dad|parents|wife|husband|partner|son|daughter)",
      "said|say|saying my? (goodbye/goodbyes/bye) ~1 (to everyone/to everybody/to all/to my family/to the people)",
      "say my goodbyes", "this be goodbye", "goodbye (forever/everyone/everybody/for good/world/cruel world)",
      "(final/last) goodbye", "give|gave|given|giving away ~1 (my/all my) (stuff/things/belongings/possessions/cat/dog/pet|pets|clothes)",
      "(sorted/made/written|updated|update) my will", "tie|tied|make|made|making a noose",
            negatable=True),
    R("plan_context", "urgent", "plan",
      "(written/wrote/write|writing|left|leave) ~2 (note/notes/letter/letters)",
      "(go/going) through with it", "my (mind/decision) be made up",
      context=True),
    R("do_it_tonight", "urgent", "plan",
      "(going/gonna/will/plan|planning) to (do it/go through with it) (now/tonight/today/this time)",
      "do it (tonight/this time)", "(tonight/today) be the night"),
    R("means", "urgent", "means",
      "(stockpile/stockpiling|stockpiled|hoard|hoarding|hoarded|save|saving|saved|collect|collecting|stash|stashing|keep|keeping|hide|hiding) ~3 @PILLS",
      "(buy/bought/get/got/order/ordered/have|has) ~2 (rope/noose/helium/ligature/charcoal/exit bag)",
      "(buy/bought|ordered) ~3 (razor blades/blades/razors)", negatable=True),
    R("means_context", "urgent", "means",
      "(have/got/get/bought|buy|hold|holding|found) ~3 (rope/knife/blade/blades/razor/gun/pills|tablets|@PILLS|belt|cord)",
      context=True),

    # ---------------------------------------------------------------- imminent: act under way --
    R("means_in_hand", "imminent", "means act_in_progress",
      "@MEANS ~4 (in my hand/in my hands/in front of me/infront of me/next to me/beside me/lined up/counted out/crushed up/ready)",
      "(holding/hold/held|hold) (a/the/my/) (knife/blade|razor|rope|noose|gun|pills|tablets) (to/against) my",
      "(rope/noose/belt/cord/ligature|scarf) ~2 (round/around/on) my (neck/throat)",
      "(knife/blade/razor/gun) ~2 (to/against/on) my (wrist/wrists/throat/neck|head|skin|arm)"),
    R("means_in_place", "imminent", "means act_in_progress",
      "(lock/locked/locking) (@REFL/@REFL in/in) ~4 with (a/the/my/his/her/some/) (knife/knives/razor/blade/blades/rope/pills/tablets/gun)",
      "in the (bath/bathroom/toilet/shower) ~2 with (a/the/my/some) (knife/razor/blade/blades/rope/pills/tablets)"),
    R("means_in_hand_context", "imminent", "means act_in_progress",
      "(holding/hold/held|have|got) (a/the/my/) (knife/blade|razor|rope|noose|gun|pills|tablets|belt)",
      context=True),
    R("at_height", "imminent", "at_height",
      "@SUBJ be|stand|sit|climb|=stood|=sat|=sitting|=standing ~3 on|at|by|over|onto|off|near|up (the/a/this/that/) (top of/) @HEIGHT",
      "on (the/a) (train/railway|rail) (track/tracks/line/lines)", "=standing|=stood|=sitting|=sat on (the/a) (edge/ledge|top)",
      "(climb/climbed/climbing) over the (railing/railings/barrier/fence|edge|wall)",
      "on the (edge/ledge/roof) ~2 (ready/going/about|want|gonna) to (jump/fall)",
      act=True),
    R("at_top_context", "imminent", "at_height",
      "(at/on/up) (the/) top of (the/a/this/) ~3 (park/building/tower/block/multi/multistorey/flats|cliff|bridge|stairwell|stairs|hill)",
      context=True),
    R("at_place_context", "imminent", "at_height",
      "@SUBJ be|stand|sit|=stood|=sat|=sitting|=standing|walk|walking ~3 on|at|by|near|in|to|up|towards (the/a/this/) (top of/) @PLACE_WEAK",
      context=True),
    R("about_to", "imminent", "plan act_in_progress",
      "(about/ready) to (jump/let go/step off/kill @REFL/end it/end my life/hang @REFL/cut/overdose/take them/take the lot/take everything/take ~3 @PILLS/swallow ~3 @PILLS/swallow them)",
      "going to jump (now/right now/in a minute/in a sec/tonight)",
      "this be my last (message/text/night/day/goodbye)", "by the time (you/anyone/someone) (read/get|see|reads|gets) (this/these/my message)",
      "(pills/tablets) ~2 (start/starting/begin|beginning) to (work/kick in)"),
    R("about_to_context", "imminent", "plan act_in_progress",
      "(about/ready) to (do it/go through with it)", "(now/tonight/today) be the (night/day)",
      context=True),
    R("bleeding", "imminent", "self_harm act_in_progress",
      "bleed|bleeding ~2 (heavily/a lot/loads/badly/everywhere/so much/profusely/not stop/non stop)",
      "not ~1 stop (the/) (bleeding/blood)", "blood (everywhere/all over)", "so much blood",
      "(cut/cuts/cutting) ~2 (too/really|very|so) deep", "need (stitches/stitching)",
      "(bleed/bleeding) ~2 not ~1 stop", act=True),
    R("bleeding_context", "imminent", "self_harm act_in_progress", "bleed|bleeding|blood",
      "(soak/soaks/soaking/soaked) ~1 (through/thru)", "(holding/hold/press/pressing) ~3 (towel/tea towel/cloth)",
      context=True),
    # Shut in with risk beside it: "locked himself in the bathroom ... said he wanted to die".
    R("shut_in_context", "imminent", "act_in_progress",
      "(lock/locked/locks/barricade/barricaded) @REFL|himself|herself|themselves|themself ~1 in",
      "not (answer/answering/respond/responding/pick|picking up)", context=True),
    R("unconscious", "imminent", "act_in_progress",
      "(unconscious/unresponsive/unrousable)", "not ~1 wake (him/her/them/my @REL) up",
      "(he/she/they/@REL) ~3 not (wake/waking/breathing/responding)", "(he/she/@REL) ~3 (passed out/collapsed/turned blue/stopped breathing/fitting)",
      negatable=False, act=True),
    R("overdose_effects", "imminent", "overdose act_in_progress",
      "drowsy|sleepy|dizzy|vomit|vomiting|sick|confused|floppy|shaking|fitting|seizure|collapse|collapsed|pass out|passed out",
      context=True),

    # ---------------------------------------------------------------------- risk to others --
    R("harm_others", "urgent", "risk_to_others",
      "kill|murder|stab|strangle|hurt|harm|attack|batter|beat|shoot|smother|suffocate|poison|choke|punch|hit|strangle|kick|slap|shake ~1 (@PERSON/my @REL/the @REL/his @REL/her @REL/my own @REL/this guy/that guy)",
      "shoot up (my/the/a) (school/college/work|office)", "go on a (rampage/killing spree)",
      others=True),

    # ------------------------------------------------------------------------ safeguarding --
    R("abuse", "urgent", "safeguarding",
      "(be/being/been/get|getting) (abused/beaten|battered|groomed|neglected|molested|raped|assaulted|exploited|trafficked|strangled|choked|hit|threatened|mistreated|starved|slapped|kicked|punched)",
      "(be/being/been) (hurt/harmed/locked in/locked up/taken advantage of) by",
      "(sexually/physically/emotionally) (abused/abuse|assaulted)", "sexual abuse|assault",
      "domestic (abuse/violence)", "(abusive/violent/controlling) (relationship/partner/husband|wife|boyfriend|girlfriend|dad|father|mum|mother|parent|parents|carer|ex)",
      "(scared/afraid/terrified|frightened) of (him/her/my @REL)", "(scared/afraid/terrified|frightened) to (go home/be at home/go back home/go back)",
      "not ~1 safe (at/in) (home/my home/the house/my house)", "threaten|threatened|threatening ~2 to (kill|hurt|harm|hit|beat) ~1 (me/her/him/them/my/us)",
      "(touched/touches|touching) me (inappropriately/there/$)", "(make/made/makes|forced|forces|force) me (have sex/do things/touch)",
      "rape|raped|raping"),
    R("threat_reported", "urgent", "safeguarding",
      "(say/said/says/threaten/threatened/threatens/swore|swear|told me) ~5 (kill/hurt/stab|strangle|hit|beat) (me/us/my @REL/the @REL)"),
    R("financial_abuse", "concern", "safeguarding",
      "(take/takes/took/steal/steals/stole|stealing|taking) my (money/pension/benefits/bank card/savings|wages)",
      third_only=True),
    R("abuse_by_third", "urgent", "safeguarding",
      "(hit/hits/hitting|beat|beats|beating|punch|punches|punched|kick|kicks|kicked|slap|slaps|slapped|strangle|strangles|strangled|choke|chokes|choked|abuse|abuses|abused|hurt|hurts|rape|rapes|raped|burn|burns|starve|starves) (me/her/him/them/us/my @REL)",
      third_only=True),

    # ----------------------------------------------------------------- distress (concern) --
    R("hopelessness", "concern", "hopelessness",
      "hopeless|hopelessness|worthless|pointless|helpless|trapped|burden|useless|despair|desperate|failure",
      "no (hope/future/way out/point)", "what be the point", "give|giving up", "had enough",
      "(fed up/sick) (of/with) (everything/it all/life|myself)", "nothing to look forward to",
      "(no one/nobody) (care/cares/would notice/would miss/loves/love/likes)",
      "(done/finished) with (everything/it all)", "want out", "i be done $",
      "(want/wanna) to (disappear/vanish/run away)", "hate (myself/my life/everything/being me)",
      "(can/could) not see ~2 (future/way out/point|end)", "(dark/bad/intrusive/negative/horrible|scary|awful) (thoughts/place)",
      "=disappear|=vanish", "meaningless|empty|purposeless"),
    R("distress", "concern", "distress",
      "depressed|depression|anxious|anxiety|panic|panicking|overwhelmed|overwhelming|lonely|loneliness|isolated|cry|crying|cried|sob|sobbing|tears|scared|terrified|frightened|petrified|afraid|insomnia|exhausted|numb|empty|broken|heartbroken|struggle|struggling|miserable|unhappy|upset|distressed|distraught|stressed|suffering|agony|paranoid|psychotic|psychosis|hallucinate|hallucinating|manic|mania|flashback|flashbacks|nightmare|nightmares|trauma|traumatised|traumatized|ptsd|grief|grieving|bereaved|ashamed|shame|guilt|guilty|alone|crisis|breakdown|meltdown|relapse|relapsed|drunk|anorexia|anorexic|bulimia|bulimic|purge|purging|binge|sad|sadness|low|unbearable|shaking|trembling|mess|wreck|unwell|devastated|lost|scars|scar|wounds|bruises|voices",
      "can not (cope/sleep/breathe/stop crying/stop shaking/think straight/function/handle)", "not (coping/sleeping/eating)",
      "(have/has) not (slept/eaten)", "(falling/fall|fell) apart", "(breaking/break|broke) down", "in pieces",
      "in a (dark/bad/state|mess) (place/way/$)", "(feel/feeling|felt) (low/down|awful|terrible|horrible|rubbish|shit|crap|bad|worse|weird|unreal)",
      "(eating disorder/mental health)", "(hear/hearing) (voices/things)", "(need/want) (help/someone to talk to/to talk)",
      "help me", "please help", "not (okay/ok/alright/all right/fine) $", "in (so much/a lot of) pain",
      "mental (breakdown/health crisis)", "not be myself|me anymore", "=hurting|=hurts", "=pain",
      "(my/the/fresh/deep/new/old) =cuts|=scars|=wounds|=burns"),
)

# Words that mark a message about a subject rather than about a person: a question of fact,
# a definition, study, the news, fiction, games, history.
EDUCATION_CUES = frozenset(
    """essay assignment homework coursework research dissertation thesis study studies statistic
    statistics stats rate rates figure figures percentage history historical historically war
    century film movie book novel character characters song songs lyric lyrics poem poetry
    episode series season documentary article news report definition define defined meaning mean
    term word words awareness campaign training course lecture lesson class project game games
    gaming anime show tv netflix celebrity famous author writer artist band singer poet soldier
    soldiers samurai prevention prevent signs sign symptoms causes cause fiction story stories
    plot scene play theatre wikipedia research paper journal teach teaching explain explained
    legal law illegal crime hypothetically theory philosophy philosopher religion religious
    bible quran myth legend kamikaze seppuku harakiri epidemic society""".split()
)

# Words that put a violent verb inside a video game or sport ("kill the boss in Elden Ring").
GAME_CUES = frozenset(
    """game games gaming minecraft fortnite roblox gta cod call duty warzone halo zelda skyrim
    elden souls pokemon level levels boss npc npcs character characters zombie zombies enemy
    enemies player players multiplayer server quest mission dnd d&d campaign dungeon chess
    mafia werewolf among us sims xbox playstation ps5 switch steam console valorant overwatch
    apex league raid pvp respawn""".split()
)

# Nearby words that make "I cut/hurt myself" an accident.
ACCIDENT_CUES = frozenset(
    """accident accidentally accidental shaving shave cooking cook chopping chop kitchen slip
    slipped fell tripped trip gym football rugby training workout exercise sport sports bike
    cycling skiing gardening diy nail tin paper papercut stairs ladder lifting injury injured
    sprain sprained muscle knee hockey netball tennis""".split()
)

# Key words worth correcting when misspelled ("suicidle", "paracetomol", "myslef"). Only an
# unknown word close to one of these is changed, so ordinary typos are left alone.
KEYWORDS = frozenset(
    """suicide suicidal overdose overdosed overdosing paracetamol ibuprofen sertraline
    citalopram fluoxetine mirtazapine amitriptyline codeine tramadol tablets medication
    myself himself herself themselves harming cutting hurting killing hopeless worthless
    depressed depression anxiety anxious panicking overwhelmed lonely bleeding unconscious
    unresponsive strangle noose razor blades stockpiling anymore tonight goodbye everyone
    disappear exhausted terrified frightened struggling miserable abused abusive assaulted
    domestic violence deserve breathing drowsy pointless helpless trapped burden living
    swallowed painkillers antidepressants suicidally worthless kill""".split()
)

# Words that put an act in the past ("I overdosed years ago"): still urgent, not imminent.
HISTORY_CUES = frozenset("used past history childhood teenager younger teen teens twenties"
                         .split())
