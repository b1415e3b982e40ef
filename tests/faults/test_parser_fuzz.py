"""Property test: no utterance gets a non-finite or out-of-range number past the parser or the handler.

Utterances are built from digits (long ones, signed ones, "1e400"), units, directions, magnitude and
number words, the parser's whole vocabulary and garbage. For every one: each float of `parse`'s
output (and of the recognisers' raw output, before parse's last guard) is finite and within its
documented range (corrections_kb.types.FLOAT_RANGES), and no effect `handle` returns (idle, running,
stopped) holds inf/NaN. The counts are the tally's; a regression shows a nonzero count.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.corrections import finite_effect, handle
from agent.episode import EpisodeView
from corrections_kb import parser as P
from corrections_kb.types import FLOAT_RANGES, Correction
from robot import vocab
from robot.types import SceneObject
from skills import SkillCall, default_library
from tests.faults.conftest import Tally, rounds

LIB = default_library()
LEX = LIB.lexicon()
CFG = P.ParserConfig(lexicon=LEX)
FACING = P.ParserConfig(lexicon=LEX, viewpoint="facing")


def _obj(name: str, category: str, colour: str, x: float, y: float, **attributes: object) -> SceneObject:
    return SceneObject(name, category, colour, np.array([x, y, 0.02]), np.array([0.0, 0.0, 0.0, 1.0]),
                       np.array([0.04, 0.04, 0.04]), attributes=dict(attributes))


SCENE = (_obj("red_block", "block", "red", 0.5, 0.1, graspable=True),
         _obj("blue_bowl", "bowl", "blue", 0.4, 0.25, container=True))
PICKING = SkillCall(LEX.name_for("acquire") or "pick", {"object": "red block"})
VIEWS = (EpisodeView(objects=SCENE, params=None),
         EpisodeView(objects=SCENE, current=PICKING, params={"grasp_offset": (0.0, 0.0, 0.0), "lift_height": 0.1}),
         EpisodeView(objects=SCENE, current=PICKING, stopped=True, params=None, last_motion=(0.0, 1.0, 0.0)))

# ---- the words utterances are built from ---------------------------------------------------------
DIGITS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda f: f"{f:f}"[:420]),
    st.integers(1, 500).map(lambda n: "9" * n),
    st.sampled_from(["1e400", "-1e400", "1e-400", "nan", "inf", "-inf", "infinity", "NaN", "-0", "0", ".5", "-.5",
                     "\u22125", "+5", "5-10", "--5", "- 5", "1,000", "1.5.5", "0.0000001", "9" * 400]),
)
UNITS = sorted(vocab.UNITS) + ["degrees", "deg", "turns", "percent", "%", "times", "\u00b0", '"']
DIRECTIONS = sorted({" ".join(p) for p in vocab.DIRECTION_PHRASES})
WORDS = sorted(P.vocabulary(LEX))
GLUE = ["and", "then", ",", "more", "another", "a bit", "much", "too", "move", "rotate", "turn", "go", "faster",
        "slower", "clockwise", "place it", "grab it", "lift it", "before moving", "wipe it", "instead", "the", "by"]
TOKEN = st.one_of(DIGITS, st.sampled_from(UNITS), st.sampled_from(DIRECTIONS), st.sampled_from(WORDS),
                  st.sampled_from(GLUE), st.text(max_size=12))
FREE = st.lists(TOKEN, min_size=1, max_size=14).map(" ".join)
# shaped like amounts, so motion / rotate / speed / skill recognisers fire often
AMOUNT = st.tuples(DIGITS, st.sampled_from(UNITS + [""])).map(lambda t: " ".join(x for x in t if x))
SHAPED = st.one_of(
    st.tuples(st.sampled_from(["move", "go", "", "shift it", "another"]), AMOUNT, st.sampled_from(DIRECTIONS),
              st.sampled_from(["", " and "]), AMOUNT, st.sampled_from(DIRECTIONS))
    .map(lambda t: f"{t[0]} {t[1]} {t[2]}" + (f"{t[3]}{t[4]} {t[5]}" if t[3] else "")),
    st.tuples(st.sampled_from(["rotate", "turn", "rotate it", "turn it"]), AMOUNT,
              st.sampled_from(["", "clockwise", "counterclockwise", "left", "right"])).map(" ".join),
    st.tuples(st.sampled_from(["go", "move", ""]), DIGITS, st.sampled_from(["times", "percent", "%"]),
              st.sampled_from(["faster", "slower"])).map(" ".join),
    st.tuples(st.sampled_from(["place it", "grab it", "lift it", "set it", "pull it", "wipe it"]), AMOUNT,
              st.sampled_from(DIRECTIONS + ["lower", "higher", "more", "higher before moving", "times more"])).map(" ".join),
)
UTTERANCES = st.one_of(SHAPED, FREE)


def _bad(c: Correction | None) -> tuple[int, int]:
    """(non-finite floats, finite floats outside FLOAT_RANGES) in a correction."""
    nonfinite = out = 0
    if c is None:
        return 0, 0
    for name, (lo, hi) in FLOAT_RANGES.items():
        v = getattr(c, name)
        for x in (v if isinstance(v, (tuple, list)) else () if v is None else (v,)):
            if not np.isfinite(float(x)):
                nonfinite += 1
            elif not lo <= float(x) <= hi:
                out += 1
    return nonfinite, out


def test_parse_and_handle_keep_every_number_finite_and_in_range(tally: Tally) -> None:
    seen: Counter[str] = Counter()
    examples: list[str] = []

    @settings(max_examples=rounds(2000, 50000), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(text=UTTERANCES, facing=st.booleans())
    def check(text: str, facing: bool) -> None:
        cfg = FACING if facing else CFG
        seen["utterances"] += 1
        try:
            raw = P._parse(text, cfg)  # the recognisers, before parse's last guard
            c = P.parse(text, cfg)
            effects = [e for v in VIEWS for e in handle(c, v, LIB)]
        except Exception:
            seen["tracebacks"] += 1
            examples.append(text)
            raise
        n_raw, out_raw = _bad(raw)
        n_pub, out_pub = _bad(c)
        seen["nonfinite"] += n_raw + n_pub
        seen["out_of_range"] += out_raw + out_pub
        seen["nonfinite_effects"] += sum(not finite_effect(e) for e in effects)
        seen[f"kind {c.kind}"] += 1
        if n_raw + n_pub + out_raw + out_pub:
            examples.append(text)
        assert (n_raw, out_raw, n_pub, out_pub) == (0, 0, 0, 0), (text[:80], raw and raw.summary(), c.summary())
        assert all(finite_effect(e) for e in effects), (text[:80], effects)

    try:
        check()
    finally:
        tally.add("parser fuzz", utterances=seen["utterances"], nonfinite=seen["nonfinite"],
                  out_of_range=seen["out_of_range"], tracebacks=seen["tracebacks"],
                  nonfinite_effects=seen["nonfinite_effects"])
    # the generator must reach the numeric recognisers, or the property says little
    for kind in ("motion", "rotate", "speed", "skill"):
        assert seen[f"kind {kind}"] >= seen["utterances"] // 200, dict(seen)
