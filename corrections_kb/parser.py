"""A deterministic, rule-based parser of operator corrections: `parse(text) -> Correction`.

No ML, no network: a tokenizer, a lexer for numbers/units/magnitudes, and one small
recogniser per correction kind. Object, colour, direction, unit and number words come
from `robot.vocab` (the one vocabulary); each skill's words from the `Lexicon` the parser
is handed (`ParserConfig.lexicon`); the English grammar lives in the GRAMMAR TABLES
section below, and the code after it only walks those tables.

Pipeline
    normalise (NFKD, lower case, quotes, control chars) -> tokens -> contractions
    expanded ("that's" -> "that is") -> typos fixed -> fillers dropped -> repeated
    words collapsed -> [strong stop?] -> [preference marker?] -> recognisers on the
    whole utterance -> else recognisers per clause (split on , ; . ! ?) combined.

Recognisers run in this order (first match wins): confirm, resume, stop, speed,
skill, gripper, rotate, motion, plan, object. Most of them must "explain" every
token of the clause (every word is one of their phrases or an allowed filler), so a
plain new instruction such as "pick up the red block" is left `unknown` (the agent
tries its skill library on unknown text).

Decisions (where the spec left a choice):
- `parse` never raises; anything unexpected gives kind "unknown". Only the first
  2000 characters / 200 tokens of an utterance are parsed. A `config` that is not a
  `ParserConfig` is ignored (defaults are used). `Correction.text` is the input as
  given (`None` -> "", bytes decoded, other objects `str()`-ed).
- stop: a strong stop word (stop, halt, freeze, whoa, abort, emergency) anywhere wins
  over everything, unless negated or conditional before it in its clause ("don't
  stop" = resume, "always stop before the edge" = preference). Soft stops (wait, hold
  on, hang on, pause, ...) only win when nothing else in the utterance is actionable:
  "wait, the other bowl" is an object correction. "no" alone is unknown; two or more
  "no"s and nothing else ("no no no") is stop.
- preference markers (always, never [not "never mind"], from now on, in (the) future,
  next time, every/each time, whenever, by default, I prefer, I'd rather, I like ...
  better/more, don't ever) win over every kind but a strong stop. `statement` is the
  cleaned utterance (lower case, fillers and leading "ok/so/no/please" removed,
  contractions expanded: "I'd rather" -> "i would rather"). target/negated are set
  only for "prefer X (over Y)", "rather have X (than Y)", "like X better (than Y)",
  "always use X", "never use/touch X" when X is a plain noun phrase.
- motion: "more"/"a bit more"/"further"/"another 2 cm" without a direction ->
  relative=True, direction None. With a direction, relative=False. "further away" /
  "further forward" -> +x. Several directions are summed and normalised ("higher up"
  counts up once); "left 5 cm and up 2 cm" (as many distances as directions) is summed
  as vectors. Opposite directions that cancel -> not a motion. "too high" / "too far
  left" -> the opposite direction. A bare number in a motion is centimetres ("left
  5"). "put it <dir>" is a motion only with a magnitude or "to"/"more" ("put it back",
  "put it down" are new instructions -> unknown). "your left"/"toward you" refer to the
  robot and do not flip with viewpoint="facing"; "left", "my left", "forward",
  "closer", "toward me" do.
- rotate: axis is always (0, 0, 1). A bare number is degrees. No sense given ("rotate
  90 degrees") -> counterclockwise (+); "rotate a bit more" also sets relative=True.
  "turn around" = pi. turn left/right flips with viewpoint="facing", clockwise does not.
- skill: the words come from the lexicon the parser is handed (each skill declares its
  `Adjustment`s beside its code, see robot.lexicon; without a lexicon no skill
  correction is recognised). Amounts are for a plain phrase; with scale "magnitude"
  "a bit" halves them, "much"/"a lot" doubles them, an explicit distance replaces them
  ("grab it 2 cm lower" -> grasp_offset delta (0, 0, -0.02)); with scale "count" the
  number said replaces them ("wipe it twice more" -> passes delta 2). "lift it higher" alone is a motion; it is
  pick.lift_height only with a cue ("before moving", "after grasping", "when ...").
  "place/set/drop it <horizontal direction>" -> place.offset delta; "put it <dir>" is a
  motion. "open the gripper wider before grasping" -> open_drawer.pregrasp_gripper
  delta -0.25 (0 = open, 1 = closed; pick always opens fully).
- object: descriptions keep adjectives and "one" ("red one", "left one": the agent
  sees that only a colour/position was given), drop articles/demonstratives. "the
  other bowl" -> target "bowl", other=True; "the other one" / "wrong one" / "not that
  one" -> target None, other=True. "grab/take/get X" is an object correction only with
  "instead" or a leading "no"; "use X" / "I meant X" always are; a bare phrase needs an
  article or an object/colour word ("the banana", "banana", "red one"; not "asdf").
- plan: "first/before that/... <verb phrase>" and "<verb phrase> first" -> insert,
  instructions split on "then" ("first open the drawer, then pick the apple" -> two).
  Reorder needs a generic verb or none ("do/handle/start with the banana first",
  "the banana before the apple"); "pick the banana first" -> insert (the agent may
  dedupe). skip sets `target` when a thing is named ("forget the apple" -> "apple").
  replace needs "instead"/"not ..."/no verb ("in the basket") so "put it in the
  basket" stays a new instruction; "instead of Y" sets `negated`.
- speed: scales are fixed ("slower" 0.5, "a little slower" 0.75, "much slower" 0.3,
  "faster" 1.5, "a bit faster" 1.25, "much faster" 2.0); also "N times faster/slower",
  "N percent slower/faster", "half/quarter speed", "twice/half as fast", "not so fast".
- confirm: "right" is a confirmation only next to another confirm word ("yes,
  right"); alone it is a motion. Confirm followed by a correction ("good, now a bit
  higher") gives the correction; "good, continue" gives resume.
- numbers: every float out of `parse` is finite and within its documented range
  (corrections_kb.types.FLOAT_RANGES; a last check turns anything else into unknown).
  A number token saturates at 1e6 and a length at 100 m, an angle at ten turns, a speed
  scale at 0.01..100 (a 400-digit number of cm reads as 100 m; the agent then moves its
  25 cm cap and says so). "1e400", "nan", "inf" are not numbers. A minus sign before a
  digit is honoured: "move -5 cm left" = 5 cm right, "rotate -90 degrees" = 90 clockwise,
  "grab it -2 cm lower" = 2 cm higher, "-50 percent slower" = 1.5x; "another -2 cm" (no
  direction to reverse) is not a motion; "-2 times faster" is not a speed.
- typos: a word of 5+ letters that is not in the grammar vocabulary nor a protected
  common word is replaced by the unique vocabulary word with the same first letter at
  (optimal string alignment) edit distance 1 ("rigth", "higer", "clockwize"); 4-letter
  words only by a swap of two adjacent letters ("lfet").
- clauses: when the whole utterance matches nothing, each clause is parsed and the
  first actionable one (motion, rotate, gripper, speed, skill, plan, object,
  preference) wins; else the last of stop/resume; else confirm; else unknown.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

from corrections_kb.types import MAX_AMOUNT, MAX_ANGLE_RAD, MAX_DISTANCE_M, SPEED_SCALE_RANGE, Correction
from robot import vocab
from robot.lexicon import EMPTY_LEXICON, Adjustment, Lexicon

Vec = tuple[float, float, float]

# =============================================================================
# GRAMMAR TABLES (all vocabulary of the parser lives here)
# =============================================================================

VIEWPOINTS: tuple[str, ...] = ("robot", "facing")
MAX_CHARS = 2000
MAX_TOKENS = 200
MAX_PHRASE_WORDS = 5  # the longest phrase in any table below

# ---- normalisation ----------------------------------------------------------
CHAR_MAP = {"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"',
            "\u2033": '"', "\u2212": "-", "\u00bd": " 0.5 ", "\u00bc": " 0.25 ", "\u00be": " 0.75 ", "\u00ba": "\u00b0"}
CONTRACTIONS: dict[str, str] = {
    "that's": "that is", "thats": "that is", "it's": "it is", "what's": "what is", "whats": "what is",
    "there's": "there is", "here's": "here is", "don't": "do not", "dont": "do not", "doesn't": "does not",
    "didn't": "did not", "didnt": "did not", "isn't": "is not", "isnt": "is not", "wasn't": "was not",
    "aren't": "are not", "can't": "can not", "cant": "can not", "cannot": "can not", "won't": "will not",
    "i'd": "i would", "you'd": "you would", "we'd": "we would", "i'm": "i am", "im": "i am",
    "you're": "you are", "youre": "you are", "we're": "we are", "they're": "they are", "let's": "let us",
    "lets": "let us", "i've": "i have", "you've": "you have", "i'll": "i will", "you'll": "you will",
    "we'll": "we will", "it'll": "it will", "gonna": "going to", "wanna": "want to", "gotta": "got to",
}
SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ll", " will"), ("'ve", " have"), ("'d", " would"),
            ("'m", " am"), ("'s", ""))
WORD_ALIASES: dict[str, str] = {
    "okay": "ok", "okey": "ok", "k": "ok", "kk": "ok", "towards": "toward", "anticlockwise": "counterclockwise",
    "yeah": "yes", "yea": "yes", "yep": "yes", "yup": "yes", "ya": "yes", "woah": "whoa",
    "millimetre": "millimeter", "millimetres": "millimeters", "centimetre": "centimeter",
    "centimetres": "centimeters", "metre": "meter", "metres": "meters",
}
PHRASE_ALIASES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("counter", "clockwise"): ("counterclockwise",), ("anti", "clockwise"): ("counterclockwise",),
    ("all", "right"): ("alright",), ("per", "cent"): ("percent",), ("end", "effector"): ("gripper",),
}

# ---- fillers ----------------------------------------------------------------
FILLER_WORDS = frozenset({
    "uh", "uhh", "uhm", "um", "umm", "erm", "er", "err", "hmm", "hmmm", "hm", "mmm", "ah", "ahh",  # not "mm" (unit)
    "please", "pls", "plz", "kindly", "actually", "basically", "really", "very", "maybe", "perhaps",
})
FILLER_PHRASES: tuple[tuple[str, ...], ...] = (
    ("i", "think"), ("i", "guess"), ("i", "believe"), ("you", "know"), ("sort", "of"), ("kind", "of"),
    ("if", "you", "can"), ("if", "possible"), ("for", "me"),
)
LIKE_KEEPERS = frozenset({"i", "we", "you", "would", "looks", "look", "they"})  # "like" is filler unless after these
# dropped at the start of an utterance / clause (only when something is left)
LEADING_PHRASES: tuple[tuple[str, ...], ...] = (
    ("ok", "so"), ("alright", "so"), ("so",), ("well",), ("hey",), ("oh",), ("now",), ("no",), ("nope",),
    ("nah",), ("oops",), ("sorry",), ("ok",), ("alright",), ("robot",), ("hmm",),
    ("can", "you"), ("could", "you"), ("would", "you"), ("will", "you"), ("can", "we"), ("could", "we"),
    ("i", "want", "you", "to"), ("i", "need", "you", "to"), ("i", "would", "like", "you", "to"),
    ("try", "to"), ("go", "ahead", "and"), ("you", "need", "to"), ("you", "have", "to"),
    ("you", "should"), ("you", "must"),
)
NO_WORDS = frozenset({"no", "nope", "nah", "noo", "nooo"})

# ---- numbers and units --------------------------------------------------------
ONES = vocab.ONES
TENS = vocab.TENS
COUNT_WORDS = vocab.COUNT_WORDS
# number phrases valid only right before a unit ("a couple of cm", "half a turn")
NUMBER_PHRASES: dict[tuple[str, ...], float] = {
    ("a", "couple", "of"): 2, ("a", "couple"): 2, ("couple", "of"): 2, ("a", "few"): 3, ("few",): 3,
    ("several",): 3, ("half", "a"): 0.5, ("half", "an"): 0.5, ("half", "of", "a"): 0.5, ("a", "half"): 0.5,
    ("a", "quarter", "of", "a"): 0.25, ("a", "quarter"): 0.25, ("quarter", "of", "a"): 0.25,
    ("quarter", "a"): 0.25, ("a", "full"): 1, ("full",): 1, ("a",): 1, ("an",): 1, ("one",): 1,
}
FRACTION_TAILS: dict[tuple[str, ...], float] = {("and", "a", "half"): 0.5, ("and", "a", "quarter"): 0.25}
# unit word -> (quantity kind, factor to SI); "in" and '"' only after digits ("the one in the box").
# Spellings that WORD_ALIASES rewrites ("centimetre") never reach the lexer.
UNITS: dict[str, tuple[str, float]] = {w: u for w, u in vocab.UNITS.items() if w not in WORD_ALIASES}
DIGIT_ONLY_UNITS = vocab.DIGIT_ONLY_UNITS

# ---- magnitudes -------------------------------------------------------------
# phrase -> symbol; "#too" inverts the direction/sense after it ("too high" = go down)
MAGNITUDES: dict[tuple[str, ...], str] = {
    ("a", "little", "bit"): "#small", ("a", "little"): "#small", ("little", "bit"): "#small",
    ("a", "tiny", "bit"): "#small", ("tiny", "bit"): "#small", ("a", "wee", "bit"): "#small",
    ("a", "bit"): "#small", ("bit",): "#small", ("little",): "#small", ("slightly",): "#small",
    ("a", "tad"): "#small", ("tad",): "#small", ("a", "touch"): "#small", ("a", "hair"): "#small",
    ("a", "smidge"): "#small", ("a", "smidgen"): "#small", ("marginally",): "#small", ("not", "much"): "#small",
    ("a", "lot"): "#large", ("lots",): "#large", ("a", "great", "deal"): "#large", ("a", "good", "deal"): "#large",
    ("a", "long", "way"): "#large", ("all", "the", "way"): "#large", ("much",): "#large", ("way",): "#large",
    ("far",): "#large", ("considerably",): "#large", ("significantly",): "#large", ("loads",): "#large",
    ("too", "much"): "#too", ("too", "far"): "#too", ("too",): "#too", ("not", "so"): "#too",
}
# "way", "far", "much" are nouns/other words after these ("the other way", "so far", "how much")
MAGNITUDE_BLOCKERS = frozenset({"the", "other", "this", "that", "same", "long", "so", "how", "as", "no", "any"})
MORE_WORDS = frozenset({"more", "further", "farther", "another", "additional", "extra"})

# ---- directions (robot frame: +x forward/away from the base, +y robot's left, +z up) ----
# phrase -> (vector, anchored); anchored phrases name the robot's own side and never flip with viewpoint
DIRECTIONS: dict[tuple[str, ...], tuple[Vec, bool]] = {
    phrase: (vocab.DIRECTION_VECTORS[d], anchored) for phrase, (d, anchored) in vocab.DIRECTION_PHRASES.items()}
MOTION_ALLOWED = frozenset({
    "move", "moving", "go", "going", "shift", "slide", "nudge", "bring", "come", "head", "keep", "take",
    "it", "that", "this", "them", "the", "a", "an", "your", "gripper", "hand", "arm", "tool", "to", "toward",
    "by", "about", "around", "roughly", "approximately", "some", "side", "direction", "over", "and", "then",
    "also", "now", "just", "again", "even", "still", "is", "are", "you", "went", "be", "should", "need",
    "needs", "of", "yourself", "position", "bit", "little", "tiny", "ok", "so", "there",
})
MOTION_PUT_VERBS = frozenset({"put", "set"})  # motion only with a magnitude or "to"/"more"

# ---- rotation ---------------------------------------------------------------
ROTATE_VERBS = frozenset({"rotate", "turn", "twist", "spin", "swivel", "rotation", "yaw"})
ROTATE_SENSE: dict[tuple[str, ...], int] = {
    ("counterclockwise",): 1, ("ccw",): 1, ("clockwise",): -1, ("cw",): -1,
}
ROTATE_ALLOWED = frozenset({
    "the", "a", "an", "it", "that", "this", "gripper", "hand", "wrist", "your", "by", "about", "to", "and",
    "now", "just", "again", "side", "direction", "of", "bit", "little", "more", "another", "further",
    "even", "around", "then", "ok", "so", "object", "slightly",
})

# ---- gripper ----------------------------------------------------------------
GRIPPER_PHRASES: dict[tuple[str, ...], str] = {
    ("let", "go", "of"): "open", ("let", "it", "go"): "open", ("let", "go"): "open", ("open", "up"): "open",
    ("open",): "open", ("release",): "open", ("drop",): "open", ("ungrip",): "open", ("unclench",): "open",
    ("loosen",): "open",
    ("close", "up"): "close", ("close",): "close", ("grab",): "close", ("grip",): "close", ("grasp",): "close",
    ("squeeze",): "close", ("clamp",): "close", ("clench",): "close", ("pinch",): "close", ("shut",): "close",
    ("tighten",): "close", ("hold", "tight"): "close",
}
GRIPPER_ALLOWED = frozenset({
    "the", "your", "gripper", "grippers", "hand", "hands", "claw", "fingers", "finger", "jaws", "jaw", "it",
    "that", "this", "them", "of", "now", "again", "fully", "completely", "all", "up", "a", "object",
    "grip", "just", "then", "ok", "so", "way", "tight", "wide",
})

# ---- speed ------------------------------------------------------------------
SPEED_SENSE: dict[tuple[str, ...], int] = {
    ("slow", "down"): -1, ("slow", "it", "down"): -1, ("more", "slowly"): -1, ("less", "fast"): -1,
    ("slower",): -1, ("slowly",): -1, ("slow",): -1, ("decelerate",): -1, ("reduce", "speed"): -1,
    ("speed", "up"): 1, ("speed", "it", "up"): 1, ("hurry", "up"): 1, ("hurry",): 1, ("more", "quickly"): 1,
    ("pick", "up", "the", "pace"): 1, ("pick", "up", "speed"): 1, ("faster",): 1, ("quicker",): 1,
    ("quickly",): 1, ("quick",): 1, ("fast",): 1, ("accelerate",): 1, ("less", "slowly"): 1,
}
SPEED_EXACT: dict[tuple[str, ...], float] = {
    ("half", "speed"): 0.5, ("half", "the", "speed"): 0.5, ("half", "as", "fast"): 0.5,
    ("quarter", "speed"): 0.25, ("a", "quarter", "speed"): 0.25, ("twice", "as", "fast"): 2.0,
    ("twice", "the", "speed"): 2.0, ("double", "speed"): 2.0, ("double", "the", "speed"): 2.0,
    ("twice", "as", "quickly"): 2.0, ("half", "as", "quickly"): 0.5,
}
SPEED_SCALES: dict[int, dict[str, float]] = {  # sense -> magnitude -> scale
    -1: {"#small": 0.75, "": 0.5, "#large": 0.3},
    1: {"#small": 1.25, "": 1.5, "#large": 2.0},
}
SPEED_ALLOWED = frozenset({
    "go", "move", "moving", "going", "do", "it", "that", "this", "a", "the", "you", "are", "be", "is", "was",
    "now", "just", "at", "bit", "little", "your", "even", "still", "so", "times", "as", "than", "then",
    "things", "motion", "movement", "ok", "and", "a", "way", "lot", "bit", "little", "there", "speed",
})

# ---- stop / resume / confirm ----------------------------------------------------
STRONG_STOP = frozenset({"stop", "halt", "freeze", "whoa", "abort", "emergency"})
STOP_BLOCKERS = frozenset({"not", "never", "without", "always", "whenever", "when", "before", "after",
                           "until", "if", "every", "each"})
STOP_PHRASES: dict[tuple[str, ...], str] = {p: "stop" for p in (
    ("stop",), ("halt",), ("freeze",), ("whoa",), ("abort",), ("emergency",), ("wait",), ("hold", "on"),
    ("hold", "it"), ("hold", "up"), ("hold", "still"), ("hang", "on"), ("pause",), ("one", "second"),
    ("one", "sec"), ("one", "moment"), ("a", "second"), ("a", "sec"), ("a", "moment"), ("a", "minute"),
    ("not", "yet"), ("stay",), ("stay", "put"), ("stay", "still"), ("do", "not", "move"), ("enough",),
    ("cancel",), ("wait", "up"),
)}
STOP_ALLOWED = frozenset({
    "right", "there", "now", "it", "that", "is", "everything", "immediately", "at", "once", "the", "arm",
    "robot", "motion", "moving", "you", "are", "doing", "what", "for", "just", "all", "of", "ok", "still",
    "here", "wait", "a", "hey", "no",
})
RESUME_PHRASES: dict[tuple[str, ...], str] = {p: "resume" for p in (
    ("continue",), ("go", "ahead"), ("carry", "on"), ("keep", "going"), ("keep", "moving"), ("keep", "at", "it"),
    ("keep", "it", "going"), ("resume",), ("go", "on"), ("proceed",), ("go",), ("do", "not", "stop"),
    ("as", "you", "were"), ("unpause",), ("let", "us", "go"), ("you", "can", "go"), ("back", "to", "work"),
    ("on", "you", "go"), ("off", "you", "go"), ("get", "going"), ("go", "for", "it"), ("start", "again"),
    ("where", "you", "left", "off"), ("all", "clear"), ("you", "may", "continue"), ("keep", "on"),
)}
RESUME_ALLOWED = frozenset({
    "ok", "yes", "good", "fine", "alright", "now", "you", "can", "may", "then", "again", "with", "the", "task",
    "it", "what", "were", "doing", "plan", "so", "and", "that", "is", "just", "from", "there", "here", "right",
    "great", "perfect", "thanks", "please", "robot", "hey", "well",
})
CONFIRM_PHRASES: dict[tuple[str, ...], str] = {p: "confirm" for p in (
    ("that", "is", "it"), ("this", "is", "it"), ("that", "is", "right"), ("that", "is", "correct"),
    ("that", "is", "the", "one"), ("that", "works"), ("there", "you", "go"), ("well", "done"),
    ("spot", "on"), ("just", "right"), ("looks", "good"), ("looks", "right"), ("looks", "great"),
    ("i", "like", "it"), ("i", "like", "that"), ("thank", "you"), ("much", "better"), ("nice", "one"),
    ("yes",), ("ok",), ("good",), ("great",), ("perfect",), ("nice",), ("excellent",), ("awesome",),
    ("exactly",), ("correct",), ("fine",), ("thanks",), ("cool",), ("bingo",), ("better",), ("brilliant",),
    ("super",), ("wonderful",), ("lovely",), ("sure",), ("alright",), ("fantastic",), ("splendid",),
    ("yay",), ("sweet",), ("beautiful",),
)}
CONFIRM_ALLOWED = frozenset({"that", "is", "it", "this", "the", "one", "job", "work", "now", "so", "all",
                             "right", "oh", "wow", "well", "very", "much", "looks", "good", "you", "robot",
                             "hey", "ok", "yes", "there"})

# ---- skill parameters -------------------------------------------------------------
# Each skill's `Adjustment` patterns (from the lexicon) are matched against the lexed clause
# (magnitudes appear as #small/#large/#too, distances as #len, counts as #count) after these
# macros expand: {OBJ} = an optional object ("it", "the mug"), {MAG} = optional magnitudes,
# {COUNT} = an optional count, {GRASP} = a grasping verb, {RELEASE} = a releasing verb, {CUE} = a time cue.
SKILL_MACROS = {
    "{OBJ}": r"(?:(?:it|that|this|them|(?:the|that|this) [a-z]+(?: [a-z]+)?) )?",
    "{MAG}": r"(?:(?:#small|#large|#len|more|even|still) )*",
    "{COUNT}": r"(?:#count )?",
    "{GRASP}": r"(?:grasp|grab|grip|pick up|pick|hold|take|catch|pinch)",
    "{CUE}": r"(?:before|when|while|after|as|once) [a-z# ]+",
    "{RELEASE}": r"(?:release|drop|let go of|let go|let)",
}

# ---- plan ---------------------------------------------------------------------
# verbs that start an instruction ("first open the drawer"); every skill's own verbs count too
ACTION_VERBS = frozenset({
    "open", "close", "pick", "put", "place", "move", "push", "pull", "take", "grab", "get", "lift", "stack",
    "bring", "clear", "remove", "empty", "wipe", "press", "pour", "fetch", "set", "drop", "release", "slide",
    "shut", "unlock", "find", "check", "clean", "fold", "insert", "go", "turn", "rotate", "hand", "give",
    "sort", "unstack", "throw", "tidy", "load", "unload", "fill", "grasp", "carry", "return", "look", "wash",
})
GERUNDS: dict[str, str] = {
    "opening": "open", "closing": "close", "picking": "pick", "putting": "put", "placing": "place",
    "moving": "move", "pushing": "push", "pulling": "pull", "taking": "take", "grabbing": "grab",
    "getting": "get", "lifting": "lift", "stacking": "stack", "bringing": "bring", "clearing": "clear",
    "removing": "remove", "emptying": "empty", "wiping": "wipe", "pressing": "press", "pouring": "pour",
    "fetching": "fetch", "checking": "check", "cleaning": "clean", "turning": "turn", "rotating": "rotate",
}
C = r"(?: ,)?"  # an optional comma in plan/object patterns
MODAL = (r"(?:(?:you|we) (?:need|have|should|must|ought|got) to |you should |you must |please |remember to |"
         r"make sure to |make sure you )?")
FIRST = r"(?:first|first of all|firstly|to begin with|to start with|beforehand|before anything else)"
BEFORE_THAT = (r"(?:that|this|doing that|doing this|you do that|you do this|that step|this step|it|anything else|"
               r"you continue|continuing|you go on)")
PLAN_INSERT = (  # the group "ins" must be a verb phrase
    rf"(?:but |and )?{FIRST}{C} {MODAL}(?P<ins>.+)",
    rf"{MODAL}(?P<ins>.+?){C} (?:first|first of all|beforehand|before {BEFORE_THAT}|before that step)",
    rf"before {BEFORE_THAT}{C} {MODAL}(?P<ins>.+)",
    r"(?:you forgot to|you need to first|do not forget to|you have to first|you should first|you must first|"
    r"you did not) (?P<ins>.+)",
    r"(?:start|begin) (?:by|with) (?P<ins>[a-z]+ing(?: .+)?)",
    r"(?P<ins>.+?) before (?:[a-z]+ing|you [a-z]+)(?: .+)?",
)
PLAN_SKIP = (  # optional group "t": what is skipped
    r"(?:just )?skip(?: it| that| this| that one| this one| that step| this step| the step| the next step| this part|"
    r" that part| ahead| over it| it for now| that for now)?",
    r"skip (?P<t>.+?)(?: for now)?",
    r"(?:forget|forget about|never mind|ignore|do not bother with|no need for|leave out|you can skip|we can skip|"
    r"we do not need|you do not need|do not do) (?P<t>.+?)(?: for now| alone| out)?",
    r"leave (?P<t>.+?) (?:alone|for now|out|be)",
    r"(?:move on|next step|go to the next step|on to the next (?:one|step)|move on to the next (?:one|step|thing)|"
    r"do not bother|no need|that is not needed|not needed|that is unnecessary|you do not need to do (?:that|this|it))",
)
PLAN_REORDER = (  # groups "a" (goes first) / "b" (goes later)
    r"(?:(?:do|handle|deal with|go for|start with|begin with) )?(?P<a>.+?) (?:before|ahead of|prior to) (?P<b>.+)",
    r"(?:(?:do|handle|deal with|go for) )?(?P<b>.+?) after (?P<a>.+)",
    rf"(?:first|first of all|start with|begin with){C} (?P<a>.+?)(?:{C} (?:then|and then|after that|next) (?P<b>.+))?",
    rf"(?:(?:do|handle|deal with|go for) )?(?P<a>.+?) first(?:{C} (?:then|and then|after that) (?P<b>.+))?",
    r"(?:do|handle|leave|save|deal with) (?P<b>.+?) (?:last|for last|at the end|until the end|later)",
)
PREP = r"(?:in|into|inside|on|onto|on top of|next to|beside|over to|to)"
PUT_IT = r"(?:(?:put|place|drop|set|leave|move|bring|take) (?:it|that|this|them|the [a-z]+) )"
PLAN_REPLACE = (  # groups "t" (new target) / "n" (the wrong one)
    rf"{PUT_IT}?{PREP} (?P<t>.+?) instead(?: of (?:{PREP} )?(?P<n>.+))?",
    rf"{PUT_IT}?{PREP} (?P<t>.+?) (?:instead of|rather than) (?:{PREP} )?(?P<n>.+)",
    rf"instead{C} {PUT_IT}?{PREP} (?P<t>.+)",
    rf"{PUT_IT}?{PREP} (?P<t>.+?){C} not (?:{PREP} )?(?P<n>.+)",
    rf"not {PREP} (?P<n>.+?){C} (?:but )?{PUT_IT}?{PREP} (?P<t>.+)",
    r"(?:in|into|inside|on|onto|on top of|next to|beside) (?P<t>.+)",  # a bare place: "(no,) in the basket"
)

# ---- object -------------------------------------------------------------------
OBJ_NEG_PREFIX = (r"(?:(?:that|this|it) (?:is|was) |you (?:have |have got |got |picked |took |grabbed |are using |"
                  r"used |chose )?)?(?:not the right|not|the wrong|a wrong|wrong)(?: |$)")
OBJ_MEANT_PREFIX = (r"(?:i meant|i mean|i said|i wanted|i want|i asked for|i was talking about|i am talking about|"
                    r"i was pointing at|i was pointing to|it is|it should be|it was|should be|you want|we want|"
                    r"go for|go with|try|use|it has to be|what i meant was|what i want is|i would like) ")
OBJ_VERB_PREFIX = r"(?:grab|take|get|pick up|pick|grasp|give me|get me|bring me|hand me) "  # need "instead" / "no"
DETERMINERS = frozenset({"the", "a", "an", "that", "this", "those", "these", "some", "my", "your"})
NP_TRAILING = frozenset({"instead", "please", "then", "too", "now", "there", "here", "again"})
EMPTY_HEADS = frozenset({"one", "ones", "it", "that", "this", "thing", "them"})
OTHER_WORDS = frozenset({"other", "another"})
NP_MAX_WORDS = 6
NP_FORBIDDEN = frozenset({
    "is", "are", "was", "were", "be", "am", "been", "being", "do", "does", "did", "what", "where", "when",
    "why", "how", "who", "whom", "can", "could", "would", "should", "will", "shall", "may", "might", "must",
    "i", "you", "we", "they", "he", "she", "me", "us", "him", "not", "no", "yes", "and", "or", "but", "if",
    "so", "because", "stop", "wait", "go", "move", "open", "close", "pick", "put", "place", "grab", "grasp",
    "take", "get", "give", "bring", "lift", "raise", "push", "pull", "turn", "rotate", "skip", "forget",
    "want", "need", "like", "prefer", "always", "never", "before", "after", "let", "make", "keep",
    "continue", "hold", "release", "drop", "try", "use", "meant", "mean", "said", "of", ",",
    "there", "here", "than", "rather", "should", "wrong",
})
PREPOSITIONS = frozenset({"in", "into", "on", "onto", "near", "at", "to", "from", "by", "with", "inside",
                          "next", "beside", "under", "over", "behind"})
OBJECT_WORDS = vocab.OBJECT_WORDS  # words that make a bare phrase a description ("red one", "banana")

# ---- preference ---------------------------------------------------------------
PREFERENCE_MARKERS: tuple[tuple[str, ...], ...] = (
    ("always",), ("never",), ("from", "now", "on"), ("from", "here", "on"), ("from", "now"), ("in", "future"),
    ("in", "the", "future"), ("going", "forward"), ("next", "time"), ("every", "time"), ("each", "time"),
    ("whenever",), ("as", "a", "rule"), ("by", "default"), ("in", "general"), ("generally",), ("usually",),
    ("prefer",), ("preferably",), ("preference",), ("would", "rather"), ("had", "rather"), ("do", "not", "ever"),
    ("from", "then", "on"),
)
PREFERENCE_EXCLUDE: tuple[tuple[str, ...], ...] = (("never", "mind"),)
# a correction meant for this episode only: nothing is learned from it ("just this once, use the plate")
ONE_OFF_PHRASES: dict[tuple[str, ...], bool] = {p: True for p in (
    ("just", "this", "once"), ("only", "this", "once"), ("this", "once"), ("just", "this", "time"),
    ("only", "this", "time"), ("this", "time", "only"), ("just", "for", "this", "episode"), ("one", "off"),
    ("as", "an", "exception"), ("for", "once"),
)}
PREFERENCE_LIKE_RE = re.compile(r"\bi (?:would |really |do )?like .+ (?:better|more|best)\b")
PREFERENCE_TARGETS = (  # groups "t" (preferred) / "n" (not preferred), on the cleaned statement
    re.compile(r".*\bprefer (?P<t>.+?)(?: (?:over|to|rather than|instead of) (?P<n>.+))?"),
    re.compile(r".*\b(?:would|had) rather (?:have |use |get |take |pick )?(?P<t>.+?)"
               r"(?: (?:than|over|instead of) (?P<n>.+))?"),
    re.compile(r".*\blike (?P<t>.+?) (?:better|more|best)(?: than (?P<n>.+))?"),
    re.compile(r".*\balways use (?P<t>.+)"),
    re.compile(r".*\b(?:never|do not ever) (?:use|touch|pick|grab|pick up) (?P<n>.+)"),
)

# ---- typo correction ------------------------------------------------------------
# common words that are close to a grammar word but must never be "corrected" into it
PROTECTED_WORDS = OBJECT_WORDS | frozenset({
    "plate", "closet", "clothes", "cloth", "tower", "power", "flower", "lighter", "light", "tight", "night",
    "sight", "grass", "stick", "stock", "clock", "slide", "where", "here", "there", "these", "those", "other",
    "whole", "while", "which", "white", "write", "weather", "water", "what", "when", "then", "than", "them",
    "they", "this", "that", "though", "through", "thought", "think", "thing", "things", "start", "stack",
    "state", "table", "shelf", "sponge", "bottle", "spoon", "knife", "towel", "lower", "shower", "sower",
    "fast", "last", "past", "vast", "cast", "list", "lift", "gift", "soft", "loft", "west", "rest", "test",
    "best", "nest", "tell", "fell", "felt", "help", "held", "hold", "told", "cold", "bold", "gold", "fold",
    "sold", "word", "work", "world", "would", "could", "should", "wood", "good", "food", "mood", "hood",
    "bring", "being", "doing", "going", "thing", "wing", "ring", "sing", "king", "sling", "string", "spring",
    "edge", "edges", "size", "sizes", "order", "apple", "apples", "basket", "baskets", "drawers", "corner",
    "center", "centre", "middle", "front", "behind", "beside", "inside", "outside", "again", "against",
    "about", "above", "below", "under", "between", "pretty", "quite", "rather", "really", "maybe", "sorry",
    "weird", "wrong", "there", "their", "wait", "want", "went", "ways", "days", "says", "plays", "place",
    "plates", "placed", "please", "pleased", "grape", "grapes", "stove", "shove", "glove", "gloves",
})
# words used only inside regex tables are added to the vocabulary automatically (see _vocabulary)
EXTRA_VOCABULARY = frozenset({"gripper", "drawer", "instead", "before", "after", "first", "skip", "forget",
                              "always", "never", "prefer", "rather", "future", "meant", "wrong", "other"})


@dataclass(frozen=True)
class ParserConfig:
    """How the parser reads directions and amounts. Distances in metres, angles in radians."""

    viewpoint: str = "robot"  # "robot": "left" = robot's +y; "facing": the operator faces the robot
    lexicon: Lexicon = EMPTY_LEXICON  # the skills' words (SkillLibrary.lexicon()); skill corrections need it
    small_m: float = 0.02  # "a bit", "a little", "slightly", "a touch", "a tad"
    default_m: float = 0.03  # plain "move left"
    large_m: float = 0.09  # "a lot", "much more", "way more", "far"
    small_angle_rad: float = math.radians(10)
    default_angle_rad: float = math.radians(20)
    large_angle_rad: float = math.radians(45)

    def __post_init__(self) -> None:
        if not isinstance(self.lexicon, Lexicon):
            raise ValueError(f"ParserConfig.lexicon must be a robot.lexicon.Lexicon, got {type(self.lexicon).__name__}")
        if self.viewpoint not in VIEWPOINTS:
            raise ValueError(f"unknown viewpoint {self.viewpoint!r}; expected one of {', '.join(VIEWPOINTS)}")
        for name in ("small_m", "default_m", "large_m", "small_angle_rad", "default_angle_rad", "large_angle_rad"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"ParserConfig.{name} must be a positive number, got {v!r}")

    def distance(self, mag: str | None) -> float:
        return {"#small": self.small_m, "#large": self.large_m}.get(mag or "", self.default_m)

    def angle(self, mag: str | None) -> float:
        return {"#small": self.small_angle_rad, "#large": self.large_angle_rad}.get(mag or "", self.default_angle_rad)


_DEFAULT_CONFIG = ParserConfig()


# =============================================================================
# public entry point
# =============================================================================
def parse(text: str, config: ParserConfig | None = None, lexicon: Lexicon | None = None) -> Correction:
    """Parse one operator utterance into a `Correction`. Never raises; deterministic.

    `lexicon` (or `config.lexicon`) holds the skills' words; `lexicon` wins when both are given.
    """
    raw = _as_text(text)
    cfg = config if isinstance(config, ParserConfig) else _DEFAULT_CONFIG
    if isinstance(lexicon, Lexicon) and lexicon is not cfg.lexicon:
        cfg = dc_replace(cfg, lexicon=lexicon)
    try:
        found = _parse(raw, cfg)
    except Exception:  # the parser must never take the agent down; unknown is always safe
        found = None
    if found is None or found.out_of_range():  # a last guard: no inf/NaN/out-of-range number leaves parse
        return Correction(text=raw, kind="unknown")
    return dc_replace(found, text=raw)


def _as_text(text: Any) -> str:
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", errors="replace")
    try:
        return str(text)
    except Exception:
        return ""


def _parse(raw: str, cfg: ParserConfig) -> Correction | None:
    toks = _tokenize(raw[:MAX_CHARS])[:MAX_TOKENS]
    fixer = _typo_fixer(cfg.lexicon)
    toks = _drop_fillers([fixer(t) for t in toks])
    toks, once = _drop_one_off(toks)
    found = _parse_tokens(toks, cfg)
    return dc_replace(found, once=True) if found is not None and once else found


def _drop_one_off(toks: list[str]) -> tuple[list[str], bool]:
    """Remove "just this once" and the like; report whether there was one."""
    out: list[str] = []
    once, i = False, 0
    while i < len(toks):
        m = _match(ONE_OFF_PHRASES, toks, i)
        if m is not None:
            once, i = True, i + m[0]
            continue
        out.append(toks[i])
        i += 1
    return (out, once) if any(t != "," for t in out) else (toks, False)


def _parse_tokens(toks: list[str], cfg: ParserConfig) -> Correction | None:
    words = [t for t in toks if t != ","]
    if not words:
        return None
    if len(words) >= 2 and all(w in NO_WORDS for w in words):
        return Correction(text="", kind="stop")  # "no no no"
    toks = _collapse_repeats(toks)
    clauses = _split_clauses(toks)
    if _has_strong_stop(clauses):
        return Correction(text="", kind="stop")
    if _has_preference_marker(words):
        return _preference(toks)
    whole = _recognise(_Clause.of(toks), cfg)
    if whole is not None:
        return whole
    parts = [_recognise(_Clause.of(c), cfg) for c in clauses]
    return _combine([p for p in parts if p is not None])


# =============================================================================
# tokens
# =============================================================================
# a minus sign belongs to a number only where a word could start ("-5 cm"; not "5-10", "x-5")
_TOKEN_RE = re.compile(r"(?<![\w.])-(?:\d+(?:\.\d+)?|\.\d+)|\d+(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)*|[\u00b0\"%]|[,;:.!?]")
_CHAR_TRANS = str.maketrans(CHAR_MAP)


def _tokenize(text: str) -> list[str]:
    text = text.translate(_CHAR_TRANS)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    out: list[str] = []
    for t in _TOKEN_RE.findall(text.lower()):
        if t in ",;:.!?":
            if out and out[-1] != ",":
                out.append(",")
        elif t == '"' and not (out and _is_number(out[-1])):
            continue  # a quotation mark, not inches
        else:
            out.extend(_expand(t))
    out = _apply_phrase_aliases(out)
    while out and out[0] == ",":
        out.pop(0)
    return out


def _expand(tok: str) -> list[str]:
    if tok in CONTRACTIONS:
        return CONTRACTIONS[tok].split()
    if "'" in tok:
        for suffix, repl in SUFFIXES:
            if tok.endswith(suffix) and len(tok) > len(suffix):
                return (tok[: -len(suffix)] + repl).split()
        tok = tok.replace("'", "")
    return [WORD_ALIASES.get(tok, tok)]


def _apply_phrase_aliases(toks: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(toks):
        for phrase, repl in PHRASE_ALIASES.items():
            if tuple(toks[i:i + len(phrase)]) == phrase:
                out.extend(repl)
                i += len(phrase)
                break
        else:
            out.append(toks[i])
            i += 1
    return out


def _is_number(tok: str) -> bool:
    t = tok[1:] if tok[:1] == "-" else tok
    return bool(t) and (t[0].isdigit() or (t[0] == "." and len(t) > 1))


def _number(tok: str) -> float:
    """A number token's value, saturated at +-MAX_AMOUNT: 400 nines are a big number, never inf."""
    try:
        v = float(tok)
    except ValueError:  # not reached for tokens of _TOKEN_RE; safe anyway
        return 0.0
    return max(-MAX_AMOUNT, min(MAX_AMOUNT, v)) if math.isfinite(v) else math.copysign(MAX_AMOUNT, v)


def _clip(v: float, limit: float) -> float:
    """`v` within +-limit (NaN-safe: callers only pass finite values; NaN reads as 0)."""
    return max(-limit, min(limit, v)) if v == v else 0.0


def _drop_fillers(toks: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        phrase = next((p for p in FILLER_PHRASES if tuple(toks[i:i + len(p)]) == p), None)
        if phrase:
            i += len(phrase)
            continue
        if t in FILLER_WORDS or (t == "like" and not (out and out[-1] in LIKE_KEEPERS)):
            i += 1
            continue
        out.append(t)
        i += 1
    return out


def _collapse_repeats(toks: list[str]) -> list[str]:
    out: list[str] = []
    for t in toks:
        if not out or out[-1] != t:
            out.append(t)
    return out


def _split_clauses(toks: list[str]) -> list[list[str]]:
    clauses: list[list[str]] = [[]]
    for t in toks:
        if t == ",":
            clauses.append([])
        else:
            clauses[-1].append(t)
    return [c for c in clauses if c]


def _strip_leading(toks: list[str]) -> tuple[list[str], bool]:
    """Drop discourse openers ("ok so", "no", "can you") while something is left; report a leading "no"."""
    toks = list(toks)
    had_no = False
    changed = True
    while changed:
        changed = False
        while toks and toks[0] == ",":
            toks.pop(0)
        for p in LEADING_PHRASES:
            n = len(p)
            if tuple(toks[:n]) == p and any(t != "," for t in toks[n:]):
                had_no = had_no or p[0] in NO_WORDS
                toks = toks[n:]
                changed = True
                break
    return toks, had_no


# ---- typos -------------------------------------------------------------------
def vocabulary(lexicon: Lexicon = EMPTY_LEXICON) -> frozenset[str]:
    """Every word the grammar (and the lexicon's skills) can use: what typos are corrected towards."""
    words: set[str] = set(EXTRA_VOCABULARY) | set(lexicon.verbs)
    tables: list[Iterable[Any]] = [
        CONTRACTIONS.values(), ONES, TENS, UNITS, FILLER_WORDS, MORE_WORDS, ROTATE_VERBS, ACTION_VERBS,
        GERUNDS, MOTION_ALLOWED, ROTATE_ALLOWED, GRIPPER_ALLOWED, SPEED_ALLOWED, STOP_ALLOWED, RESUME_ALLOWED,
        CONFIRM_ALLOWED, STRONG_STOP, WORD_ALIASES.values(),
    ]
    for table in tables:
        for item in table:
            words.update(str(item).split())
    for phrase_table in (NUMBER_PHRASES, MAGNITUDES, DIRECTIONS, ROTATE_SENSE, GRIPPER_PHRASES, SPEED_SENSE,
                         SPEED_EXACT, STOP_PHRASES, RESUME_PHRASES, CONFIRM_PHRASES):
        for phrase in phrase_table:
            words.update(phrase)
    for phrase in (*PREFERENCE_MARKERS, *FILLER_PHRASES, *LEADING_PHRASES, *ONE_OFF_PHRASES):
        words.update(phrase)
    patterns = [p for skill in lexicon for adj in skill.adjustments for p in adj.patterns] + list(SKILL_MACROS.values())
    patterns += [*PLAN_INSERT, *PLAN_SKIP, *PLAN_REORDER, *PLAN_REPLACE, OBJ_NEG_PREFIX,
                 OBJ_MEANT_PREFIX, OBJ_VERB_PREFIX]
    for p in patterns:
        words.update(re.findall(r"[a-z]{3,}", p))
    return frozenset(w for w in words if w.isalpha())


VOCABULARY = vocabulary()  # the grammar's own words, without any skill's


@lru_cache(maxsize=8)
def _typo_fixer(lexicon: Lexicon) -> Callable[[str], str]:
    """A (cached) typo corrector towards the vocabulary of the grammar plus `lexicon`."""
    vocab_words = vocabulary(lexicon)
    by_first: dict[str, tuple[str, ...]] = {}
    for w in sorted(vocab_words):
        if len(w) >= 4:
            by_first[w[0]] = by_first.get(w[0], ()) + (w,)

    @lru_cache(maxsize=8192)
    def fix(word: str) -> str:
        if len(word) < 4 or not word.isalpha() or word in vocab_words or word in PROTECTED_WORDS:
            return word
        if len(word) == 4:  # short words: only a swap of two adjacent letters ("lfet")
            cands = [v for v in by_first.get(word[0], ()) if len(v) == 4 and _is_swap(word, v)]
        else:
            cands = [v for v in by_first.get(word[0], ()) if _within_one(word, v)]
        return cands[0] if len(cands) == 1 else word

    return fix


def _is_swap(a: str, b: str) -> bool:
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def _within_one(a: str, b: str) -> bool:
    """Optimal-string-alignment distance exactly 1 (substitution, insertion, deletion or adjacent swap)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or _is_swap(a, b)
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


# =============================================================================
# lexemes: numbers with units and magnitude phrases become one symbol each
# =============================================================================
@dataclass(frozen=True)
class _Lex:
    sym: str  # a plain word, or "#len" (m), "#ang" (rad), "#pct", "#num", "#small", "#large", "#too"
    value: float = 0.0


def _lex(toks: Sequence[str]) -> list[_Lex]:
    out: list[_Lex] = []
    i = 0
    while i < len(toks):
        q = _read_quantity(toks, i)
        if q is not None:
            kind, value, i = q
            out.append(_Lex("#" + kind, value))
            continue
        n = _read_cardinal(toks, i, standalone=True)
        if n is not None:
            value, i = n
            out.append(_Lex("#num", value))
            continue
        mag = _match(MAGNITUDES, toks, i)
        if mag is not None and not (mag[0] == 1 and toks[i] in ("way", "far", "much")
                                    and i > 0 and toks[i - 1] in MAGNITUDE_BLOCKERS):
            out.append(_Lex(mag[1]))
            i += mag[0]
            continue
        out.append(_Lex(toks[i]))
        i += 1
    return out


def _read_quantity(toks: Sequence[str], i: int) -> tuple[str, float, int] | None:
    """A number followed by a unit: ("len" m | "ang" rad | "pct", value, next index)."""
    num = _read_number(toks, i)
    if num is None:
        return None
    value, j, digits = num
    if j < len(toks) and toks[j] == "of":
        j += 1
    if j >= len(toks) or toks[j] not in UNITS or (toks[j] in DIGIT_ONLY_UNITS and not digits):
        return None
    kind, factor = UNITS[toks[j]]
    limit = {"len": MAX_DISTANCE_M, "ang": MAX_ANGLE_RAD}.get(kind, MAX_AMOUNT)  # saturated, see FLOAT_RANGES
    return kind, _clip(value * factor, limit), j + 1


def _read_number(toks: Sequence[str], i: int) -> tuple[float, int, bool] | None:
    """(value, next index, written with digits) for digits, number words and phrases like "half a"."""
    if _is_number(toks[i]):
        value, j = _number(toks[i]), i + 1
        frac = _match(FRACTION_TAILS, toks, j)
        return (value + math.copysign(frac[1], value), j + frac[0], True) if frac else (value, j, True)
    card = _read_cardinal(toks, i, standalone=False)
    if card is not None:
        return card[0], card[1], False
    phrase = _match(NUMBER_PHRASES, toks, i)
    if phrase is not None:
        return phrase[1], i + phrase[0], False
    return None


def _read_cardinal(toks: Sequence[str], i: int, standalone: bool) -> tuple[float, int] | None:
    """Number words: "five", "twenty five", "two point five", "one and a half". Standalone ones
    (no unit after them) must be at least two: "the red one" keeps its "one"."""
    if _is_number(toks[i]):
        return (_number(toks[i]), i + 1) if standalone else None
    t = toks[i]
    if t in TENS:
        value, j = float(TENS[t]), i + 1
        if j < len(toks) and toks[j] in ONES and 0 < ONES[toks[j]] < 10:
            value, j = value + ONES[toks[j]], j + 1
    elif t in ONES:
        value, j = float(ONES[t]), i + 1
    else:
        return None
    if j + 1 < len(toks) and toks[j] == "point" and toks[j + 1] in ONES and ONES[toks[j + 1]] < 10:
        digits = []
        j += 1
        while j < len(toks) and toks[j] in ONES and ONES[toks[j]] < 10:
            digits.append(str(ONES[toks[j]]))
            j += 1
        value = float(f"{int(value)}.{''.join(digits)}")
    frac = _match(FRACTION_TAILS, toks, j)
    if frac is not None:
        value, j = value + frac[1], j + frac[0]
    if standalone and value < 2 and frac is None:
        return None
    return value, j


def _match(table: dict[tuple[str, ...], Any], toks: Sequence[str], i: int) -> tuple[int, Any] | None:
    """Longest phrase of `table` starting at toks[i]: (length, payload)."""
    for n in range(min(MAX_PHRASE_WORDS, len(toks) - i), 0, -1):
        key = tuple(toks[i:i + n])
        if key in table:
            return n, table[key]
    return None


# =============================================================================
# clauses and recognisers
# =============================================================================
@dataclass(frozen=True)
class _Clause:
    toks: tuple[str, ...]  # words after the opener was stripped, with "," between clauses
    lex: tuple[_Lex, ...]  # lexemes without commas
    had_no: bool  # it started with "no" (which was stripped)
    full: tuple[str, ...]  # all words, opener included, without commas

    @staticmethod
    def of(toks: Sequence[str]) -> "_Clause":
        stripped, had_no = _strip_leading(list(toks))
        lex = _lex([t for t in stripped if t != ","])
        return _Clause(tuple(stripped), tuple(lex), had_no, tuple(t for t in toks if t != ","))

    @property
    def words(self) -> list[str]:
        return [t for t in self.toks if t != ","]

    @property
    def syms(self) -> list[str]:
        return [x.sym for x in self.lex]

    @property
    def text(self) -> str:  # words joined, commas kept as " , "
        return " ".join(self.toks)


Recogniser = Callable[[_Clause, ParserConfig], "Correction | None"]


def _recognise(clause: _Clause, cfg: ParserConfig) -> Correction | None:
    if not clause.lex:
        return None
    for rec in RECOGNISERS:
        found = rec(clause, cfg)
        if found is not None:
            return found
    return None


def _combine(parts: list[Correction]) -> Correction | None:
    actionable = [p for p in parts if p.kind not in ("stop", "resume", "confirm", "unknown")]
    if actionable:
        return actionable[0]
    flow = [p for p in parts if p.kind in ("stop", "resume")]
    if flow:
        return flow[-1]
    return next((p for p in parts if p.kind == "confirm"), None)


def _covered(syms: Sequence[str], table: dict[tuple[str, ...], str], allowed: frozenset[str]) -> int | None:
    """How many phrases of `table` the clause holds, if every other word is in `allowed`; else None."""
    hits = 0
    i = 0
    while i < len(syms):
        m = _match(table, syms, i)
        if m is not None:
            hits += 1
            i += m[0]
        elif syms[i] in allowed:
            i += 1
        else:
            return None
    return hits


# ---- stop / resume / confirm --------------------------------------------------
def _has_strong_stop(clauses: list[list[str]]) -> bool:
    for clause in clauses:
        for k, w in enumerate(clause):
            if w in STRONG_STOP and not any(b in STOP_BLOCKERS for b in clause[:k]):
                return True
    return False


# These three read plain words (not lexemes: "much better" is not a magnitude here), with and
# without the stripped opener ("well done" must keep its "well"; "no good" is not a confirmation).
def _rec_confirm(c: _Clause, cfg: ParserConfig) -> Correction | None:
    hit = _covered(c.full, CONFIRM_PHRASES, CONFIRM_ALLOWED) or (
        not c.had_no and _covered(c.words, CONFIRM_PHRASES, CONFIRM_ALLOWED))
    return Correction(text="", kind="confirm") if hit else None


def _rec_resume(c: _Clause, cfg: ParserConfig) -> Correction | None:
    hit = _covered(c.full, RESUME_PHRASES, RESUME_ALLOWED) or _covered(c.words, RESUME_PHRASES, RESUME_ALLOWED)
    return Correction(text="", kind="resume") if hit else None


def _rec_stop(c: _Clause, cfg: ParserConfig) -> Correction | None:
    hit = _covered(c.full, STOP_PHRASES, STOP_ALLOWED) or _covered(c.words, STOP_PHRASES, STOP_ALLOWED)
    return Correction(text="", kind="stop") if hit else None


# ---- speed ----------------------------------------------------------------------
def _rec_speed(c: _Clause, cfg: ParserConfig) -> Correction | None:
    syms, lex = c.syms, c.lex
    sense, exact, factor, pct, mag, invert = 0, None, None, None, None, False
    i = 0
    while i < len(syms):
        s = syms[i]
        m_exact, m_sense = _match(SPEED_EXACT, syms, i), _match(SPEED_SENSE, syms, i)
        if m_exact:
            exact, i = m_exact[1], i + m_exact[0]
            continue
        if m_sense:
            if sense and sense != m_sense[1]:
                return None
            sense, i = m_sense[1], i + m_sense[0]
            continue
        if s == "#num" and i + 1 < len(syms) and syms[i + 1] == "times" and lex[i].value > 0:
            factor, i = lex[i].value, i + 2
            continue
        if s == "#pct":
            pct = lex[i].value
        elif s == "#too":
            invert = True
        elif s in ("#small", "#large"):
            mag = s
        elif s not in SPEED_ALLOWED and s != "more":
            return None
        i += 1
    if exact is not None:
        return Correction(text="", kind="speed", speed_scale=exact)
    if not sense:
        return None
    if invert:
        sense = -sense  # "too fast" -> slower
    if factor is not None:
        scale = factor if sense > 0 else 1.0 / factor
    elif pct is not None:
        scale = 1.0 + sense * pct / 100.0
        if scale <= 0:
            return None
    else:
        scale = SPEED_SCALES[sense][mag or ""]
    lo, hi = SPEED_SCALE_RANGE  # "1000 times faster" saturates; the agent caps it far lower and says so
    return Correction(text="", kind="speed", speed_scale=round(max(lo, min(hi, scale)), 6))


# ---- skill parameters -----------------------------------------------------------
_SkillRule = tuple[str, Adjustment, list["re.Pattern[str]"]]


@lru_cache(maxsize=8)
def _skill_rules(lexicon: Lexicon) -> list[_SkillRule]:
    """(skill, adjustment, compiled patterns) for every adjustment of every skill, in lexicon order."""
    out: list[_SkillRule] = []
    for skill in lexicon:
        for adj in skill.adjustments:
            compiled = []
            for p in adj.patterns:
                for k, v in SKILL_MACROS.items():
                    p = p.replace(k, v)
                compiled.append(re.compile(p))
            out.append((skill.name, adj, compiled))
    return out


def _rec_skill(c: _Clause, cfg: ParserConfig) -> Correction | None:
    lex = _with_counts(c.lex)
    s = " ".join(x.sym for x in lex)
    for skill, adj, patterns in _skill_rules(cfg.lexicon):
        if any(p.fullmatch(s) for p in patterns):
            amount = _scale_amount(adj, lex)
            slot = {"value": amount} if adj.mode == "value" else {"delta": amount}
            return Correction(text="", kind="skill", skill=skill, param=adj.param, **slot)
    return _offset_by_verb(c, cfg)


def _with_counts(lex: Sequence[_Lex]) -> list[_Lex]:
    """Counts as one #count lexeme: "twice", "3 times", "three times" (for skill patterns only)."""
    out: list[_Lex] = []
    i = 0
    while i < len(lex):
        x = lex[i]
        if x.sym in COUNT_WORDS:
            out.append(_Lex("#count", float(COUNT_WORDS[x.sym])))
        elif x.sym == "#num" and i + 1 < len(lex) and lex[i + 1].sym in ("times", "time"):
            out.append(_Lex("#count", x.value))  # "3 times (more)"
            i += 1
        elif x.sym == "#num" and [y.sym for y in lex[i + 1:i + 3]] in (["more", "times"], ["more", "time"]):
            out.append(_Lex("#count", x.value))  # "3 more times": the "more times" stays
        else:
            out.append(x)
        i += 1
    return out


def _scale_amount(adj: Adjustment, lex: Sequence[_Lex]) -> float | int | Vec:
    """The adjustment's amount, scaled by what was said (see robot.lexicon.SCALES)."""
    amount = adj.amount
    if adj.scale == "fixed":
        return amount  # type: ignore[return-value]
    if adj.scale == "count":
        counts = [x.value for x in lex if x.sym == "#count"]
        if not counts or isinstance(amount, tuple):
            return amount  # type: ignore[return-value]
        n = counts[0] * math.copysign(1.0, amount)  # "-2 times more" is two fewer: the sign said is kept
        return int(n) if isinstance(amount, int) and n.is_integer() else n
    # "magnitude": an explicit distance replaces the amount; "a bit" halves it, "much" doubles it
    size = _norm(amount) if isinstance(amount, tuple) else abs(amount)
    lens = [x.value for x in lex if x.sym == "#len"]
    syms = {x.sym for x in lex}
    new = lens[0] if lens else size * (0.5 if "#small" in syms else 2.0 if "#large" in syms else 1.0)
    if isinstance(amount, tuple):
        return _clean(tuple(a / size * new for a in amount))
    return round(new * math.copysign(1.0, amount), 9)  # "-2 cm higher" is 2 cm lower


def _offset_by_verb(c: _Clause, cfg: ParserConfig) -> Correction | None:
    """"place it a bit more to the left" -> a skill's offset delta (a horizontal shift said with its verbs)."""
    if not c.lex:
        return None
    skill = next((s for s in cfg.lexicon if s.offset_param and c.lex[0].sym in s.offset_verbs), None)
    if skill is None:
        return None
    motion = _motion(list(c.lex[1:]), cfg)
    if motion is None or motion.direction is None or abs(motion.direction[2]) > 1e-9:
        return None
    d = motion.distance_m or 0.0
    delta = _clean(tuple(x * d for x in motion.direction))
    return Correction(text="", kind="skill", skill=skill.name, param=skill.offset_param, delta=delta)


# ---- gripper ----------------------------------------------------------------------
def _rec_gripper(c: _Clause, cfg: ParserConfig) -> Correction | None:
    state = None
    syms = c.syms
    i = 0
    while i < len(syms):
        m = _match(GRIPPER_PHRASES, syms, i)
        if m is not None:
            if state and state != m[1]:
                return None
            state, i = m[1], i + m[0]
        elif syms[i] in GRIPPER_ALLOWED or syms[i] == "#small":
            i += 1
        else:
            return None
    return Correction(text="", kind="gripper", gripper=state) if state else None


# ---- rotation -----------------------------------------------------------------------
def _rec_rotate(c: _Clause, cfg: ParserConfig) -> Correction | None:
    syms, lex = c.syms, c.lex
    verb, sense, angle, mag, more, explicit_angle = False, 0, None, None, False, False
    i = 0
    while i < len(syms):
        s = syms[i]
        if s == "turn" and i + 1 < len(syms) and syms[i + 1] == "around":
            verb, angle, i = True, math.pi, i + 2
            continue
        m_sense, m_dir = _match(ROTATE_SENSE, syms, i), _match(DIRECTIONS, syms, i)
        if m_sense is not None:
            if sense and sense != m_sense[1]:
                return None
            sense, i = m_sense[1], i + m_sense[0]
            continue
        if m_dir is not None and verb:
            vec = _view(*m_dir[1], cfg)
            if abs(vec[0]) > 0 or abs(vec[2]) > 0:
                return None  # "turn up" is not a rotation about the vertical
            new = 1 if vec[1] > 0 else -1  # turning left = counterclockwise seen from above
            if sense and sense != new:
                return None
            sense, i = new, i + m_dir[0]
            continue
        if s in ROTATE_VERBS:
            verb = True
        elif s == "#ang":
            angle, explicit_angle = lex[i].value, True  # signed: "-90 degrees" is clockwise
        elif s == "#num":
            angle = _clip(math.radians(lex[i].value), MAX_ANGLE_RAD)  # a bare number is degrees
        elif s in ("#small", "#large"):
            mag = s
        elif s in MORE_WORDS:
            more = True
        elif s not in ROTATE_ALLOWED:
            return None
        i += 1
    if not (verb or sense or explicit_angle):
        return None
    if angle is None:
        angle = cfg.angle(mag)
    angle_rad = _clip(round((sense or 1) * angle, 12), MAX_ANGLE_RAD)  # clipped after rounding: never past the range
    return Correction(text="", kind="rotate", axis=(0.0, 0.0, 1.0), angle_rad=angle_rad,
                      relative=more and not sense)


# ---- motion ---------------------------------------------------------------------------
def _rec_motion(c: _Clause, cfg: ParserConfig) -> Correction | None:
    return _motion(list(c.lex), cfg)


def _motion(lex: list[_Lex], cfg: ParserConfig) -> Correction | None:
    syms = [x.sym for x in lex]
    dirs: list[Vec] = []
    dists: list[float] = []
    mag: str | None = None
    more = invert = put = to = False
    i = 0
    while i < len(syms):
        s = syms[i]
        m = _match(DIRECTIONS, syms, i)
        if m is not None:
            vec = _view(*m[1], cfg)
            dirs.append(_neg(vec) if invert else vec)
            i += m[0]
            continue
        if s == "#len":
            dists.append(lex[i].value)
        elif s == "#num":
            dists.append(lex[i].value * 0.01)  # a bare number in a motion is centimetres
        elif s in ("#small", "#large"):
            mag = s
        elif s == "#too":
            invert = True
        elif s in MORE_WORDS:
            more = True
        elif s in MOTION_PUT_VERBS:
            put = True
        elif s in MOTION_ALLOWED:
            to = to or s in ("to", "toward")
        else:
            return None
        i += 1
    if not (dirs or more or any(s == "#len" for s in syms)):
        return None  # a bare number alone ("5") is not a motion
    if put and not (mag or dists or more or to):
        return None  # "put it back" / "put it down" are new instructions
    dirs = list(dict.fromkeys(dirs))  # "higher up" counts once
    if not dirs:
        dist = dists[0] if dists else cfg.distance(mag)
        if dist < 0:
            return None  # "another -2 cm": no direction to reverse, so not a motion
        return Correction(text="", kind="motion", distance_m=round(min(dist, MAX_DISTANCE_M), 9), relative=True)
    if len(dirs) >= 2 and len(dists) == len(dirs):
        v = tuple(sum(d[k] * q for d, q in zip(dirs, dists)) for k in range(3))  # signed amounts
        dist = _norm(v)
    else:
        v = tuple(sum(d[k] for d in dirs) for k in range(3))
        dist = dists[0] if dists else cfg.distance(mag)
        if dist < 0:  # "move -5 cm left" is 5 cm right: the sign is honoured
            v, dist = tuple(-x for x in v), -dist
    n = _norm(v)
    if not n >= 1e-9:
        return None  # "left right": the directions cancel
    direction = _clean(tuple(x / n for x in v))
    # amounts are finite (see _number); beyond MAX_DISTANCE_M they saturate (the agent caps far lower)
    return Correction(text="", kind="motion", direction=direction, distance_m=round(min(dist, MAX_DISTANCE_M), 9))


def _view(vec: Vec, anchored: bool, cfg: ParserConfig) -> Vec:
    """Operator words -> robot frame: facing the robot, left/right and forward/back swap."""
    if anchored or cfg.viewpoint == "robot":
        return vec
    return _clean((-vec[0], -vec[1], vec[2]))


def _neg(v: Vec) -> Vec:
    return _clean((-v[0], -v[1], -v[2]))


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def _clean(v: Sequence[float]) -> Vec:
    """Rounded floats without negative zeros, so equal inputs give equal (and readable) outputs."""
    x, y, z = (round(float(a), 12) + 0.0 for a in v)
    return (x, y, z)


# ---- plan --------------------------------------------------------------------------------
_PLAN_INSERT = [re.compile(p) for p in PLAN_INSERT]
_PLAN_SKIP = [re.compile(p) for p in PLAN_SKIP]
_PLAN_REORDER = [re.compile(p) for p in PLAN_REORDER]
_PLAN_REPLACE = [re.compile(p) for p in PLAN_REPLACE]
_THEN_RE = re.compile(r"(?: ,)? (?:and then|then|after that|and after that)(?: ,)? | , ")


def _rec_plan(c: _Clause, cfg: ParserConfig) -> Correction | None:
    text = c.text
    for pat in _PLAN_INSERT:
        m = pat.fullmatch(text)
        if m:
            steps = _verb_phrases(m.group("ins"), ACTION_VERBS | cfg.lexicon.verbs)
            if steps:
                return Correction(text="", kind="plan", plan_op="insert", instructions=steps)
    for pat in _PLAN_SKIP:
        m = pat.fullmatch(text)
        if m:
            target = m.groupdict().get("t")
            if target is None:
                return Correction(text="", kind="plan", plan_op="skip")
            ok, desc, _ = _noun_phrase(target)
            if ok:
                return Correction(text="", kind="plan", plan_op="skip", target=desc)
    for pat in _PLAN_REORDER:
        m = pat.fullmatch(text)
        if m:
            found = _reorder(m.groupdict().get("a"), m.groupdict().get("b"))
            if found is not None:
                return found
    for pat in _PLAN_REPLACE:
        m = pat.fullmatch(text)
        if not m:
            continue
        ok_t, target, other = _noun_phrase(m.group("t"))
        neg = m.groupdict().get("n")
        ok_n, negated, _ = _noun_phrase(neg) if neg else (True, None, False)
        if ok_t and ok_n and target:
            return Correction(text="", kind="plan", plan_op="replace", target=target, negated=negated, other=other)
    return None


def _verb_phrases(text: str, verbs: frozenset[str]) -> list[str]:
    """Split "open the drawer, then pick the apple" into instructions; each must start with one of `verbs`."""
    steps = []
    for part in _THEN_RE.split(f" {text} "):
        words = [w for w in part.split() if w != ","]
        while words and words[-1] in NP_TRAILING:
            words.pop()
        if not words:
            continue
        words[0] = GERUNDS.get(words[0], words[0])
        if words[0] not in verbs:
            return []
        steps.append(" ".join(words))
    return steps


def _reorder(a: str | None, b: str | None) -> Correction | None:
    ok_a, first, _ = _noun_phrase(a) if a else (True, None, False)
    ok_b, later, _ = _noun_phrase(b) if b else (True, None, False)
    if not (ok_a and ok_b) or not (first or later):
        return None
    return Correction(text="", kind="plan", plan_op="reorder", before=first, after=later)


# ---- object -----------------------------------------------------------------------------
_OBJ_NEG = re.compile(OBJ_NEG_PREFIX)
_OBJ_MEANT = re.compile(OBJ_MEANT_PREFIX)
_OBJ_VERB = re.compile(OBJ_VERB_PREFIX)
_INNER_SPLIT = re.compile(r" (?=(?:not|instead of|rather than) )")


def _rec_object(c: _Clause, cfg: ParserConfig) -> Correction | None:
    pos: list[tuple[str, bool]] = []  # (text, needs "instead"/"no" to count)
    neg: list[str] = []
    for seg in (s.strip() for s in c.text.split(" , ")):
        if not seg:
            continue
        if _OBJ_NEG.match(seg):
            _object_segment(seg, pos, neg)
            continue
        first, *rest = _INNER_SPLIT.split(seg)  # "the red one not the blue one"
        for part in [first] + [re.sub(r"^(?:instead of|rather than) ", "not ", r) for r in rest]:
            _object_segment(part, pos, neg)
    if len(pos) > 1 or len(neg) > 1 or not (pos or neg):
        return None
    target, negated, other = None, None, False
    if pos:
        text, needs_cue = pos[0]
        words = text.split()
        if needs_cue and not (c.had_no or "instead" in words):
            return None  # "grab the red block" is a new instruction
        if not needs_cue and not _is_description(words):
            return None  # "asdf qwer", "no good"
        ok, target, other = _noun_phrase(text)
        if not ok:
            return None
    if neg:
        ok, negated, _ = _noun_phrase(neg[0]) if neg[0] else (True, None, False)
        if not ok:
            return None
        if target is None and negated is None:
            other = True  # "wrong one", "not that one": the other candidate
    if pos and target is None and not other and negated is None:
        return None
    return Correction(text="", kind="object", target=target, negated=negated, other=other)


def _object_segment(seg: str, pos: list[tuple[str, bool]], neg: list[str]) -> None:
    """Sort one comma-free piece of an object correction into what was meant / what was wrong."""
    m = _OBJ_NEG.match(seg)
    if m:
        rest = seg[m.end():]
        inner = re.fullmatch(r"(?P<n>.+?) (?P<t>(?:the|a|an) .+)", rest)  # "wrong block the blue one"
        if inner and not pos and _noun_phrase(inner.group("n"))[0]:
            neg.append(inner.group("n"))
            pos.append((inner.group("t"), False))
        else:
            neg.append(rest)
        return
    for prefix, needs_cue in ((_OBJ_MEANT, False), (_OBJ_VERB, True)):
        m = prefix.match(seg)
        if m:
            pos.append((seg[m.end():], needs_cue))
            return
    pos.append((seg, False))


def _is_description(words: list[str]) -> bool:
    """A bare phrase counts as a description if it has an article or an object/colour word."""
    return bool(words) and (words[0] in DETERMINERS or any(w in OBJECT_WORDS for w in words))


def _noun_phrase(text: str | None) -> tuple[bool, str | None, bool]:
    """(valid, cleaned description or None, "other") for a noun phrase like "the other red one"."""
    words = [w for w in (text or "").split() if w != ","]
    if not words or len(words) > NP_MAX_WORDS + 2:
        return False, None, False
    if any(w in NP_FORBIDDEN or w.startswith(("#", "-")) or not (w.isalpha() or _is_number(w)) for w in words):
        return False, None, False
    while words and words[0] in DETERMINERS:
        words.pop(0)
    while words and words[-1] in NP_TRAILING:
        words.pop()
    other = bool(words) and words[0] in OTHER_WORDS
    if other:
        words.pop(0)
    if len(words) > NP_MAX_WORDS:
        return False, None, False
    if not words or all(w in EMPTY_HEADS for w in words):
        return True, None, other
    return True, " ".join(words), other


# ---- preference -----------------------------------------------------------------------
def _has_preference_marker(words: list[str]) -> bool:
    for i in range(len(words)):
        if any(tuple(words[i:i + len(p)]) == p for p in PREFERENCE_EXCLUDE):
            continue
        if any(tuple(words[i:i + len(p)]) == p for p in PREFERENCE_MARKERS):
            return True
    return bool(PREFERENCE_LIKE_RE.search(" ".join(words)))


def _preference(toks: list[str]) -> Correction:
    stripped, _ = _strip_leading(toks)
    statement = " ".join(t for t in stripped if t != ",")
    target = negated = None
    for pat in PREFERENCE_TARGETS:
        m = pat.fullmatch(statement)
        if not m:
            continue
        t, n = m.groupdict().get("t"), m.groupdict().get("n")
        ok_t, desc_t = _plain_np(t)
        ok_n, desc_n = _plain_np(n)
        if ok_t and ok_n and (desc_t or desc_n):
            target, negated = desc_t, desc_n
            break
    return Correction(text="", kind="preference", statement=statement, target=target, negated=negated)


def _plain_np(text: str | None) -> tuple[bool, str | None]:
    """A noun phrase without prepositions ("blue bowl", not "fruit in the basket")."""
    if text is None:
        return True, None
    if any(w in PREPOSITIONS for w in text.split()):
        return False, None
    ok, desc, _ = _noun_phrase(text)
    return ok, desc


RECOGNISERS: tuple[Recogniser, ...] = (
    _rec_confirm, _rec_resume, _rec_stop, _rec_speed, _rec_skill, _rec_gripper, _rec_rotate, _rec_motion,
    _rec_plan, _rec_object,
)
