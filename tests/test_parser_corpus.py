"""The correction parser against a corpus of operator utterances, plus robustness properties.

Each corpus row is (utterance, expected kind, expected slots). The slots listed must be
exactly the slots the parser sets (`Correction.to_dict()` minus text and kind); numbers
are compared with a tolerance. For rotate rows the axis (always vertical) is implied.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrections_kb
from corrections_kb import KINDS, PLAN_OPS, Correction
from corrections_kb.parser import ParserConfig, _parse, vocabulary
from corrections_kb.parser import parse as parse_with
from skills import default_library

# The skills' own words (skill corrections) come from the library's lexicon, as in the agent.
LEXICON = default_library().lexicon()
VOCABULARY = vocabulary(LEXICON)


def parse(text: Any, config: ParserConfig | None = None) -> Correction:
    return parse_with(text, config or ParserConfig(), lexicon=LEXICON)


L, R, U, D, F, B = (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1), (1, 0, 0), (-1, 0, 0)
S2 = 1 / math.sqrt(2)
INCH = 0.0254
DEG = math.pi / 180

CORPUS: list[tuple[str, str, dict[str, Any]]] = [
    # ---- stop ---------------------------------------------------------------------
    ("stop", "stop", {}),
    ("wait!", "stop", {}),
    ("hold on", "stop", {}),
    ("freeze", "stop", {}),
    ("halt", "stop", {}),
    ("stop stop stop", "stop", {}),
    ("STOP!!!", "stop", {}),
    ("no, stop!", "stop", {}),
    ("no no no", "stop", {}),
    ("whoa whoa", "stop", {}),
    ("hang on a second", "stop", {}),
    ("wait a moment", "stop", {}),
    ("stop right there", "stop", {}),
    ("emergency stop", "stop", {}),
    ("pause", "stop", {}),
    ("stop what you're doing", "stop", {}),
    ("can you stop please", "stop", {}),
    ("hey robot, stop", "stop", {}),
    ("stop moving left", "stop", {}),
    ("stop, that's too fast", "stop", {}),
    ("that's enough", "stop", {}),
    ("not yet", "stop", {}),
    ("um wait", "stop", {}),
    # ---- resume -------------------------------------------------------------------
    ("continue", "resume", {}),
    ("go ahead", "resume", {}),
    ("carry on", "resume", {}),
    ("keep going", "resume", {}),
    ("resume", "resume", {}),
    ("ok go on", "resume", {}),
    ("proceed", "resume", {}),
    ("you can continue", "resume", {}),
    ("don't stop", "resume", {}),
    ("no, don't stop", "resume", {}),
    ("alright, carry on", "resume", {}),
    ("yes, go ahead", "resume", {}),
    ("continue with the task", "resume", {}),
    ("let's go", "resume", {}),
    ("resume please", "resume", {}),
    ("as you were", "resume", {}),
    ("good, continue", "resume", {}),
    ("continu", "resume", {}),  # typo
    ("keep moving", "resume", {}),
    # ---- motion -------------------------------------------------------------------
    ("move a bit to the left", "motion", {"direction": L, "distance_m": 0.02}),
    ("a little higher", "motion", {"direction": U, "distance_m": 0.02}),
    ("5 cm forward", "motion", {"direction": F, "distance_m": 0.05}),
    ("go down two inches", "motion", {"direction": D, "distance_m": 2 * INCH}),
    ("more to the right", "motion", {"direction": R, "distance_m": 0.03}),
    ("left", "motion", {"direction": L, "distance_m": 0.03}),
    ("a bit more to the left", "motion", {"direction": L, "distance_m": 0.02}),
    ("uh, no no, a bit more to the left please", "motion", {"direction": L, "distance_m": 0.02}),
    ("move a bit to the rigth", "motion", {"direction": R, "distance_m": 0.02}),
    ("forwrd 5 cm", "motion", {"direction": F, "distance_m": 0.05}),
    ("a little higer", "motion", {"direction": U, "distance_m": 0.02}),
    ("slighly left", "motion", {"direction": L, "distance_m": 0.02}),
    ("lfet", "motion", {"direction": L, "distance_m": 0.03}),
    ("move 5 centimeters left", "motion", {"direction": L, "distance_m": 0.05}),
    ("move it 3 centimetres to the right", "motion", {"direction": R, "distance_m": 0.03}),
    ("up and to the left", "motion", {"direction": (0, S2, S2), "distance_m": 0.03}),
    ("a bit down and to the right", "motion", {"direction": (0, -S2, -S2), "distance_m": 0.02}),
    ("higher up", "motion", {"direction": U, "distance_m": 0.03}),
    ("left 5 cm and up 2 cm", "motion", {"direction": (0, 5 / 29 ** 0.5, 2 / 29 ** 0.5),
                                         "distance_m": 0.01 * 29 ** 0.5}),
    ("too high", "motion", {"direction": D, "distance_m": 0.03}),
    ("it's too low", "motion", {"direction": U, "distance_m": 0.03}),
    ("a bit too far to the left", "motion", {"direction": R, "distance_m": 0.02}),
    ("more", "motion", {"distance_m": 0.03, "relative": True}),
    ("a bit more", "motion", {"distance_m": 0.02, "relative": True}),
    ("much further", "motion", {"distance_m": 0.09, "relative": True}),
    ("further", "motion", {"distance_m": 0.03, "relative": True}),
    ("another 2 cm", "motion", {"distance_m": 0.02, "relative": True}),
    ("further left", "motion", {"direction": L, "distance_m": 0.03}),
    ("further away", "motion", {"direction": F, "distance_m": 0.03}),
    ("put it a bit to the left", "motion", {"direction": L, "distance_m": 0.02}),
    ("move it left 3 inches", "motion", {"direction": L, "distance_m": 3 * INCH}),
    ("move left 5", "motion", {"direction": L, "distance_m": 0.05}),
    ("move half a centimetre to the right", "motion", {"direction": R, "distance_m": 0.005}),
    ("one and a half inches forward", "motion", {"direction": F, "distance_m": 1.5 * INCH}),
    ("a couple of centimeters up", "motion", {"direction": U, "distance_m": 0.02}),
    ("a few centimetres down", "motion", {"direction": D, "distance_m": 0.03}),
    ("twenty five millimetres left", "motion", {"direction": L, "distance_m": 0.025}),
    ("twenty-five mm back", "motion", {"direction": B, "distance_m": 0.025}),
    (".5 cm left", "motion", {"direction": L, "distance_m": 0.005}),
    ("2.5cm back", "motion", {"direction": B, "distance_m": 0.025}),
    ('3" left', "motion", {"direction": L, "distance_m": 3 * INCH}),
    ("3 in left", "motion", {"direction": L, "distance_m": 3 * INCH}),
    ("ten cm higher", "motion", {"direction": U, "distance_m": 0.10}),
    ("0.5 m forward", "motion", {"direction": F, "distance_m": 0.5}),
    ("lower it 1 inch", "motion", {"direction": D, "distance_m": INCH}),
    ("just a hair to the right", "motion", {"direction": R, "distance_m": 0.02}),
    ("a tad lower", "motion", {"direction": D, "distance_m": 0.02}),
    ("a touch more forward", "motion", {"direction": F, "distance_m": 0.02}),
    ("way more to the left", "motion", {"direction": L, "distance_m": 0.09}),
    ("a lot higher", "motion", {"direction": U, "distance_m": 0.09}),
    ("far to the left", "motion", {"direction": L, "distance_m": 0.09}),
    ("toward me", "motion", {"direction": B, "distance_m": 0.03}),
    ("come closer", "motion", {"direction": B, "distance_m": 0.03}),
    ("back up a bit", "motion", {"direction": B, "distance_m": 0.02}),
    ("Move LEFT, please.", "motion", {"direction": L, "distance_m": 0.03}),
    ("perfect, now a bit higher", "motion", {"direction": U, "distance_m": 0.02}),
    ("hold on, a bit higher", "motion", {"direction": U, "distance_m": 0.02}),
    ("could you go a little bit to the left", "motion", {"direction": L, "distance_m": 0.02}),
    ("I think, like, slightly up", "motion", {"direction": U, "distance_m": 0.02}),
    ("keep going left", "motion", {"direction": L, "distance_m": 0.03}),
    ("to your left", "motion", {"direction": L, "distance_m": 0.03}),
    # ---- rotate -------------------------------------------------------------------
    ("rotate the gripper 45 degrees clockwise", "rotate", {"angle_rad": -45 * DEG}),
    ("turn it a bit to the left", "rotate", {"angle_rad": 10 * DEG}),
    ("twist counterclockwise", "rotate", {"angle_rad": 20 * DEG}),
    ("rotate 90 degrees", "rotate", {"angle_rad": 90 * DEG}),
    ("rotate 1.57 radians", "rotate", {"angle_rad": 1.57}),
    ("turn it ninety degrees to the right", "rotate", {"angle_rad": -90 * DEG}),
    ("a quarter turn", "rotate", {"angle_rad": 90 * DEG}),
    ("rotate half a turn", "rotate", {"angle_rad": 180 * DEG}),
    ("turn around", "rotate", {"angle_rad": math.pi}),
    ("spin it 30\u00b0", "rotate", {"angle_rad": 30 * DEG}),
    ("rotate a bit more", "rotate", {"angle_rad": 10 * DEG, "relative": True}),
    ("rotate it clockwise a lot", "rotate", {"angle_rad": -45 * DEG}),
    ("turn the wrist 15 deg counter-clockwise", "rotate", {"angle_rad": 15 * DEG}),
    ("twist it anticlockwise slightly", "rotate", {"angle_rad": 10 * DEG}),
    ("rotate the gripper by forty five degrees", "rotate", {"angle_rad": 45 * DEG}),
    ("turn left", "rotate", {"angle_rad": 20 * DEG}),
    ("45 degrees clockwise", "rotate", {"angle_rad": -45 * DEG}),
    ("rotate clockwize", "rotate", {"angle_rad": -20 * DEG}),  # typo
    ("rotate it 10 degrees", "rotate", {"angle_rad": 10 * DEG}),
    # ---- gripper ------------------------------------------------------------------
    ("open the gripper", "gripper", {"gripper": "open"}),
    ("let go", "gripper", {"gripper": "open"}),
    ("close your hand", "gripper", {"gripper": "close"}),
    ("release", "gripper", {"gripper": "open"}),
    ("drop it", "gripper", {"gripper": "open"}),
    ("grab it", "gripper", {"gripper": "close"}),
    ("squeeze", "gripper", {"gripper": "close"}),
    ("open your hand", "gripper", {"gripper": "open"}),
    ("let it go", "gripper", {"gripper": "open"}),
    ("let go of it", "gripper", {"gripper": "open"}),
    ("close the gripper", "gripper", {"gripper": "close"}),
    ("grip it", "gripper", {"gripper": "close"}),
    ("shut the gripper", "gripper", {"gripper": "close"}),
    ("tighten your grip", "gripper", {"gripper": "close"}),
    ("open it fully", "gripper", {"gripper": "open"}),
    ("please release it now", "gripper", {"gripper": "open"}),
    # ---- speed --------------------------------------------------------------------
    ("slower", "speed", {"speed_scale": 0.5}),
    ("speed up a little", "speed", {"speed_scale": 1.25}),
    ("go faster", "speed", {"speed_scale": 1.5}),
    ("slow down", "speed", {"speed_scale": 0.5}),
    ("too fast", "speed", {"speed_scale": 0.5}),
    ("half speed", "speed", {"speed_scale": 0.5}),
    ("twice as fast", "speed", {"speed_scale": 2.0}),
    ("a little slower", "speed", {"speed_scale": 0.75}),
    ("much slower", "speed", {"speed_scale": 0.3}),
    ("a bit faster", "speed", {"speed_scale": 1.25}),
    ("much faster", "speed", {"speed_scale": 2.0}),
    ("slow down a bit", "speed", {"speed_scale": 0.75}),
    ("you're going too fast", "speed", {"speed_scale": 0.5}),
    ("way too fast", "speed", {"speed_scale": 0.3}),
    ("too slow", "speed", {"speed_scale": 1.5}),
    ("hurry up", "speed", {"speed_scale": 1.5}),
    ("not so fast", "speed", {"speed_scale": 0.5}),
    ("go slowly", "speed", {"speed_scale": 0.5}),
    ("three times faster", "speed", {"speed_scale": 3.0}),
    ("20 percent slower", "speed", {"speed_scale": 0.8}),
    ("slighly slower", "speed", {"speed_scale": 0.75}),  # typo
    # ---- object -------------------------------------------------------------------
    ("no, the red one", "object", {"target": "red one"}),
    ("the other bowl", "object", {"target": "bowl", "other": True}),
    ("I meant the green block", "object", {"target": "green block"}),
    ("that's not the mug", "object", {"negated": "mug"}),
    ("wrong block, the blue one", "object", {"target": "blue one", "negated": "block"}),
    ("not that one, the banana", "object", {"target": "banana"}),
    ("that's the wrong mug", "object", {"negated": "mug"}),
    ("the red one, not the blue one", "object", {"target": "red one", "negated": "blue one"}),
    ("wrong one", "object", {"other": True}),
    ("the other one", "object", {"other": True}),
    ("grab the red one instead", "object", {"target": "red one"}),
    ("no, grab the yellow block", "object", {"target": "yellow block"}),
    ("use the blue bowl instead", "object", {"target": "blue bowl"}),
    ("it's the yellow block", "object", {"target": "yellow block"}),
    ("the banana", "object", {"target": "banana"}),
    ("no, the left one", "object", {"target": "left one"}),
    ("wait, the other bowl", "object", {"target": "bowl", "other": True}),
    ("uh I mean the green cup", "object", {"target": "green cup"}),
    ("no no, the big one", "object", {"target": "big one"}),
    # ---- plan ---------------------------------------------------------------------
    ("first open the drawer", "plan", {"plan_op": "insert", "instructions": ["open the drawer"]}),
    ("skip that", "plan", {"plan_op": "skip"}),
    ("do the banana before the apple", "plan", {"plan_op": "reorder", "before": "banana", "after": "apple"}),
    ("put it in the basket instead", "plan", {"plan_op": "replace", "target": "basket"}),
    ("open the drawer first", "plan", {"plan_op": "insert", "instructions": ["open the drawer"]}),
    ("skip this step", "plan", {"plan_op": "skip"}),
    ("forget the apple", "plan", {"plan_op": "skip", "target": "apple"}),
    ("before that, open the drawer", "plan", {"plan_op": "insert", "instructions": ["open the drawer"]}),
    ("do the apple after the banana", "plan", {"plan_op": "reorder", "before": "banana", "after": "apple"}),
    ("first open the drawer, then pick the apple", "plan",
     {"plan_op": "insert", "instructions": ["open the drawer", "pick the apple"]}),
    ("the banana first", "plan", {"plan_op": "reorder", "before": "banana"}),
    ("first the banana, then the apple", "plan", {"plan_op": "reorder", "before": "banana", "after": "apple"}),
    ("leave the apple for last", "plan", {"plan_op": "reorder", "after": "apple"}),
    ("open the drawer before picking the apple", "plan",
     {"plan_op": "insert", "instructions": ["open the drawer"]}),
    ("you forgot to open the drawer", "plan", {"plan_op": "insert", "instructions": ["open the drawer"]}),
    ("start by opening the drawer", "plan", {"plan_op": "insert", "instructions": ["open the drawer"]}),
    ("no, in the basket", "plan", {"plan_op": "replace", "target": "basket"}),
    ("in the basket instead of the bowl", "plan", {"plan_op": "replace", "target": "basket", "negated": "bowl"}),
    ("put it on the plate, not the bowl", "plan", {"plan_op": "replace", "target": "plate", "negated": "bowl"}),
    ("move on", "plan", {"plan_op": "skip"}),
    ("never mind that", "plan", {"plan_op": "skip"}),
    ("don't bother with the mug", "plan", {"plan_op": "skip", "target": "mug"}),
    ("um, skip it please", "plan", {"plan_op": "skip"}),
    # ---- skill --------------------------------------------------------------------
    ("grasp it from the side", "skill", {"skill": "pick", "param": "grasp_yaw", "delta": math.pi / 2}),
    ("lift it higher before moving", "skill", {"skill": "pick", "param": "lift_height", "delta": 0.05}),
    ("approach from above", "skill", {"skill": "pick", "param": "approach_height", "delta": 0.05}),
    ("come from higher up", "skill", {"skill": "pick", "param": "approach_height", "delta": 0.05}),
    ("grab it lower", "skill", {"skill": "pick", "param": "grasp_offset", "delta": (0, 0, -0.01)}),
    ("grasp it lower", "skill", {"skill": "pick", "param": "grasp_offset", "delta": (0, 0, -0.01)}),
    ("release it higher", "skill", {"skill": "place", "param": "release_height", "delta": 0.03}),
    ("drop it from higher", "skill", {"skill": "place", "param": "release_height", "delta": 0.03}),
    ("place it gently", "skill", {"skill": "place", "param": "release_height", "value": 0.005}),
    ("lower before letting go", "skill", {"skill": "place", "param": "release_height", "value": 0.005}),
    ("pull the drawer further", "skill", {"skill": "open_drawer", "param": "pull_distance", "delta": 0.05}),
    ("open the gripper wider before grasping", "skill",
     {"skill": "open_drawer", "param": "pregrasp_gripper", "delta": -0.25}),
    ("pick it up from the side", "skill", {"skill": "pick", "param": "grasp_yaw", "delta": math.pi / 2}),
    ("grab the mug sideways", "skill", {"skill": "pick", "param": "grasp_yaw", "delta": math.pi / 2}),
    ("lift it 10 cm higher before moving", "skill", {"skill": "pick", "param": "lift_height", "delta": 0.10}),
    ("raise it a bit higher after grasping", "skill", {"skill": "pick", "param": "lift_height", "delta": 0.025}),
    ("grasp it 2 cm lower", "skill", {"skill": "pick", "param": "grasp_offset", "delta": (0, 0, -0.02)}),
    ("grab it higher", "skill", {"skill": "pick", "param": "grasp_offset", "delta": (0, 0, 0.01)}),
    ("set it down softly", "skill", {"skill": "place", "param": "release_height", "value": 0.005}),
    ("pull it a bit more", "skill", {"skill": "open_drawer", "param": "pull_distance", "delta": 0.025}),
    ("pull the drawer less", "skill", {"skill": "open_drawer", "param": "pull_distance", "delta": -0.05}),
    ("place it further to the right", "skill", {"skill": "place", "param": "offset", "delta": (0, -0.03, 0)}),
    ("place it 3 cm forward", "skill", {"skill": "place", "param": "offset", "delta": (0.03, 0, 0)}),
    # ---- preference ---------------------------------------------------------------
    ("always put fruit in the basket", "preference", {"statement": "always put fruit in the basket"}),
    ("never put cups near the edge", "preference", {"statement": "never put cups near the edge"}),
    ("from now on stack blocks by size", "preference", {"statement": "from now on stack blocks by size"}),
    ("I'd rather have the fruit in the basket", "preference",
     {"statement": "i would rather have the fruit in the basket"}),
    ("I prefer the blue bowl", "preference", {"statement": "i prefer the blue bowl", "target": "blue bowl"}),
    ("please always open the drawer first", "preference", {"statement": "always open the drawer first"}),
    ("I like the blue bowl better", "preference",
     {"statement": "i like the blue bowl better", "target": "blue bowl"}),
    ("I prefer the blue bowl over the red bowl", "preference",
     {"statement": "i prefer the blue bowl over the red bowl", "target": "blue bowl", "negated": "red bowl"}),
    ("next time grasp it from the side", "preference", {"statement": "next time grasp it from the side"}),
    ("in future, put the mugs on the plate", "preference", {"statement": "in future put the mugs on the plate"}),
    ("always use the green plate", "preference",
     {"statement": "always use the green plate", "target": "green plate"}),
    ("never use the red bowl", "preference", {"statement": "never use the red bowl", "negated": "red bowl"}),
    ("ok so from now on, always stack the blocks by colour", "preference",
     {"statement": "from now on always stack the blocks by colour"}),
    ("Um, in the future please go slower", "preference", {"statement": "in the future go slower"}),
    ("always stop before the edge", "preference", {"statement": "always stop before the edge"}),
    # ---- confirm ------------------------------------------------------------------
    ("good", "confirm", {}),
    ("yes, that's it", "confirm", {}),
    ("perfect", "confirm", {}),
    ("great job", "confirm", {}),
    ("that's right", "confirm", {}),
    ("nice", "confirm", {}),
    ("ok good", "confirm", {}),
    ("yes", "confirm", {}),
    ("thanks", "confirm", {}),
    ("well done", "confirm", {}),
    ("much better", "confirm", {}),
    ("exactly", "confirm", {}),
    ("there you go", "confirm", {}),
    ("yeah that's right", "confirm", {}),
    ("good job robot", "confirm", {}),
    ("yes, right", "confirm", {}),
    ("Perfect!", "confirm", {}),
    # ---- unknown ------------------------------------------------------------------
    ("asdf qwer", "unknown", {}),
    ("", "unknown", {}),
    ("   ", "unknown", {}),
    ("what is the weather", "unknown", {}),
    ("pick up the red block", "unknown", {}),
    ("put it in the basket", "unknown", {}),
    ("open the drawer", "unknown", {}),
    ("no", "unknown", {}),
    ("never mind", "unknown", {}),
    ("left right", "unknown", {}),
    ("123", "unknown", {}),
    ("put it back", "unknown", {}),
    ("no good", "unknown", {}),
    ("?!,.", "unknown", {}),
    ("grab the red block", "unknown", {}),
]

VECTOR_SLOTS = ("direction", "axis", "delta", "value")


def _ids() -> list[str]:
    return [f"{i:03d}-{kind}-{text[:30]}" for i, (text, kind, _) in enumerate(CORPUS)]


def _assert_slots(c: Correction, kind: str, expected: dict[str, Any]) -> None:
    assert c.kind == kind, c.summary()
    expected = dict(expected)
    if kind == "rotate":
        expected.setdefault("axis", (0, 0, 1))
    got = c.to_dict()
    got.pop("text"), got.pop("kind")
    assert set(got) == set(expected), f"slots {sorted(got)} != {sorted(expected)}: {c.summary()}"
    for key, want in expected.items():
        have = getattr(c, key)
        if isinstance(want, (tuple, list)) and want and isinstance(want[0], (int, float)):
            assert isinstance(have, tuple) and np.allclose(have, want, atol=1e-6), f"{key}: {have} != {want}"
        elif isinstance(want, float) or (isinstance(want, int) and not isinstance(want, bool)):
            assert isinstance(have, float) and have == pytest.approx(want, abs=1e-6), f"{key}: {have} != {want}"
        else:
            assert have == want, f"{key}: {have!r} != {want!r}"


@pytest.mark.parametrize(("text", "kind", "slots"), CORPUS, ids=_ids())
def test_corpus(text: str, kind: str, slots: dict[str, Any]) -> None:
    c = parse(text)
    assert c.text == text
    _assert_slots(c, kind, slots)
    if c.direction is not None:
        assert np.linalg.norm(c.direction) == pytest.approx(1.0)
    if c.plan_op is not None:
        assert c.plan_op in PLAN_OPS


def test_corpus_covers_every_kind() -> None:
    counts = Counter(kind for _, kind, _ in CORPUS)
    assert len(CORPUS) >= 180
    assert set(counts) == set(KINDS)
    assert min(counts.values()) >= 10, counts
    assert len({text for text, _, _ in CORPUS}) == len(CORPUS), "duplicate utterances"


@pytest.mark.parametrize(("text", "kind", "slots"), CORPUS, ids=_ids())
def test_dict_round_trip(text: str, kind: str, slots: dict[str, Any]) -> None:
    c = parse(text)
    d = json.loads(json.dumps(c.to_dict()))
    assert Correction.from_dict(d) == c


def test_package_level_parse_passes_config() -> None:
    facing = ParserConfig(viewpoint="facing")
    assert corrections_kb.parse("left").direction == L
    assert corrections_kb.parse("left", config=facing).direction == R
    assert parse("left", facing).direction == R


# ---- viewpoint and configuration ------------------------------------------------------------
FACING = ParserConfig(viewpoint="facing", lexicon=LEXICON)


@pytest.mark.parametrize(("text", "robot_dir", "facing_dir"), [
    ("left", L, R),
    ("a bit to the right", R, L),
    ("forward", F, B),
    ("back", B, F),
    ("toward me", B, F),
    ("closer", B, F),
    ("up", U, U),
    ("a little lower", D, D),
    ("up and to the left", (0, S2, S2), (0, -S2, S2)),
    ("to your left", L, L),  # the robot's own left does not depend on where the operator stands
    ("away from you", F, F),
])
def test_facing_viewpoint_flips_left_right_and_forward_back(text: str, robot_dir: tuple, facing_dir: tuple) -> None:
    a, b = parse(text), parse(text, FACING)
    assert a.kind == b.kind == "motion"
    assert np.allclose(a.direction, robot_dir) and np.allclose(b.direction, facing_dir)
    assert a.distance_m == b.distance_m


def test_facing_viewpoint_rotation() -> None:
    assert parse("turn left").angle_rad == pytest.approx(20 * DEG)
    assert parse("turn left", FACING).angle_rad == pytest.approx(-20 * DEG)
    assert parse("rotate clockwise", FACING).angle_rad == parse("rotate clockwise").angle_rad < 0
    assert parse("place it a bit to the left", FACING).delta == pytest.approx((0, -0.02, 0))


def test_config_magnitudes_are_used() -> None:
    cfg = ParserConfig(small_m=0.01, default_m=0.05, large_m=0.2, small_angle_rad=0.1,
                       default_angle_rad=0.2, large_angle_rad=0.3)
    assert parse("a bit left", cfg).distance_m == pytest.approx(0.01)
    assert parse("left", cfg).distance_m == pytest.approx(0.05)
    assert parse("way more to the left", cfg).distance_m == pytest.approx(0.2)
    assert parse("5 cm left", cfg).distance_m == pytest.approx(0.05)
    assert parse("rotate a bit", cfg).angle_rad == pytest.approx(0.1)
    assert parse("rotate", cfg).angle_rad == pytest.approx(0.2)
    assert parse("rotate clockwise a lot", cfg).angle_rad == pytest.approx(-0.3)


@pytest.mark.parametrize("bad", ["operator", "", "Robot", "left"])
def test_bad_viewpoint_is_a_one_line_value_error(bad: str) -> None:
    with pytest.raises(ValueError) as e:
        ParserConfig(viewpoint=bad)
    assert "viewpoint" in str(e.value) and "\n" not in str(e.value)


def test_bad_magnitude_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        ParserConfig(small_m=-1.0)


# ---- robustness ---------------------------------------------------------------------------
GRAMMAR_WORDS = sorted(VOCABULARY) + ["5", "2.5", ".5", "cm", "\u00b0", '"', ",", "!", "?", "the", "red", "one"]
settings_fast = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def _check(text: Any) -> Correction:
    c = parse(text)
    assert isinstance(c, Correction) and c.kind in KINDS
    assert parse(text) == c  # deterministic
    return c


@settings_fast
@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    _check(text)


@settings_fast
@given(st.lists(st.sampled_from(GRAMMAR_WORDS), max_size=30).map(" ".join))
def test_never_raises_on_grammar_word_salad(text: str) -> None:
    c = _check(text)
    if c.kind == "motion" and c.direction is not None:
        assert np.linalg.norm(c.direction) == pytest.approx(1.0)


@settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(GRAMMAR_WORDS), max_size=15).map(" ".join), st.sampled_from(["robot", "facing"]))
def test_safety_net_hides_no_bugs(text: str, viewpoint: str) -> None:
    """`parse` turns internal errors into "unknown"; the parser itself must not need that."""
    _parse(text, ParserConfig(viewpoint=viewpoint, lexicon=LEXICON))


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=40), st.integers(min_value=200, max_value=2000))
def test_never_raises_on_huge_input(chunk: str, repeat: int) -> None:
    _check(chunk * repeat)


@settings_fast
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200), st.sampled_from(GRAMMAR_WORDS))
def test_never_raises_on_unicode_and_control_chars(noise: str, word: str) -> None:
    _check(f"{noise}\x00{word}\u200b\x7f{noise}")


@pytest.mark.parametrize("value", [None, b"stop", bytearray(b"\xff\xfe"), 42, 3.5, object(), ["left"], "\x00" * 50])
def test_never_raises_on_non_text(value: Any) -> None:
    c = _check(value)
    assert isinstance(c.text, str)


def test_big_junk_is_unknown() -> None:
    junk = "asdf qwer zxcv " * 700
    assert parse(junk).kind == "unknown"
    assert parse("\u4e2d\u6587 " * 3000).kind == "unknown"


def test_determinism_over_corpus() -> None:
    first = [parse(t) for t, _, _ in CORPUS]
    again = [parse(t) for t, _, _ in reversed(CORPUS)][::-1]
    assert first == again
