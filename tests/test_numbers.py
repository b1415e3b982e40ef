"""Numbers are finite or refused on the language path (issue 14, "What was seen" 1).

A 400-digit number parsed to inf; "N cm left and 5 cm up" became a (nan, nan, nan) direction,
`min(nan, 0.25)` let NaN through the agent's cap and the running step froze. Now the parser
saturates amounts (corrections_kb.types.FLOAT_RANGES), honours signs, and the agent caps a
correction and says so; the handler, the loop and the arm primitives each refuse inf/NaN.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from agent.corrections import handle
from agent.effects import Enqueue, Rescale, Say, SetParam, Shift
from agent.episode import EpisodeView
from agent.runner import build_robot, env_task, make_agent
from corrections_kb.parser import ParserConfig, parse
from corrections_kb.types import FLOAT_RANGES, MAX_DISTANCE_M, Correction
from policies import RuleBasedPolicy
from robot.errors import CorrigoError
from sim.tasks import get_task
from skills import SkillCall, default_library
from skills.arm import move_to
from skills.base import SkillContext

LIB = default_library()
LEX = LIB.lexicon()
CFG = ParserConfig(lexicon=LEX)
NINES = "9" * 400
PICKING = SkillCall(LEX.name_for("acquire") or "pick", {"object": "red block"})
CAP_REPLY = "that is more than the 25 cm I move on a correction; "


def _finite(x: Any) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, (str, bool)) or x is None:
        return True
    return bool(np.all(np.isfinite(np.asarray(x, float))))


def test_issue_repro_a_400_digit_correction_does_not_freeze_the_step() -> None:
    """`corrigo run --env corrigo/PickPlace-v0 --seed 3 ... --corrections nan.txt`, in process, with every
    command the skills send checked (the robot would hold on a NaN one, tick after tick)."""
    robot = build_robot("sim:pybullet", scene=get_task("corrigo/PickPlace-v0").scene, seed=3)
    robot.connect()
    try:
        setup = env_task(robot, "corrigo/PickPlace-v0", 3)
        commanded: list[dict[str, Any]] = []
        send = robot.send_action

        def recording(action: dict[str, Any]) -> dict[str, Any]:
            commanded.append(action)
            return send(action)

        robot.send_action = recording  # type: ignore[method-assign]
        agent = make_agent(robot, RuleBasedPolicy(), max_episode_s=20.0)
        agent.schedule(1.0, f"move {NINES} cm left and 5 cm up")
        result = agent.run(setup.description, setup.success, goal=setup.goal)
    finally:
        robot.disconnect()
    (rec,) = result.corrections
    assert rec.reply.startswith(CAP_REPLY) and "25 cm left" in rec.reply, rec.reply
    assert rec.applied
    assert all(_finite(v) for v in rec.parsed.values() if not isinstance(v, str)), rec.parsed
    bad = [a for a in commanded if not _finite(a)]
    assert not bad, f"{len(bad)} of {len(commanded)} commanded actions hold inf/NaN: {bad[0]}"
    assert all(_finite(s.offset) for s in result.steps), [s.offset for s in result.steps]
    assert result.success, result.done_reason


@pytest.mark.parametrize("text", [
    f"move {NINES} cm left and 5 cm up", f"move {NINES} cm left", f"move {NINES} left", f"rotate {NINES} degrees",
    f"turn {NINES} turns clockwise", f"{NINES} times faster", f"{NINES} times slower", f"go {NINES} percent faster",
    f"place it {NINES} cm to the left", f"grab it {NINES} cm lower", f"lift it {NINES} cm higher before moving",
    f"place it {NINES} cm left and {NINES} cm forward", f"another {NINES} cm", "move 1e400 cm left", "move nan cm left",
    "move inf cm left", "rotate -1e30 degrees", f"move -{NINES} cm left", "move 99999999999999999999999999 cm left",
])
def test_parse_never_returns_inf_or_nan(text: str) -> None:
    c = parse(text, CFG)
    assert c.out_of_range() == [], (text[:60], c.summary())


def test_huge_amounts_saturate_and_keep_their_direction() -> None:
    c = parse(f"move {NINES} cm left and 5 cm up", CFG)
    assert c.kind == "motion" and c.distance_m == MAX_DISTANCE_M and c.direction is not None
    assert c.direction[1] > 0.99 and c.direction[2] > 0  # mostly left, a little up
    assert parse("move 10 metres left", CFG).distance_m == 10.0  # within range: as said; the agent caps it
    assert parse(f"{NINES} times faster", CFG).speed_scale == FLOAT_RANGES["speed_scale"][1]


@pytest.mark.parametrize("text, direction, distance", [
    ("move -5 cm left", (0.0, -1.0, 0.0), 0.05),
    ("move \u22125 cm left", (0.0, -1.0, 0.0), 0.05),  # a Unicode minus
    ("move left -5", (0.0, -1.0, 0.0), 0.05),
    ("move -2 cm up", (0.0, 0.0, -1.0), 0.02),
    ("move 5 cm left", (0.0, 1.0, 0.0), 0.05),
    ("move 5-10 cm left", (0.0, 1.0, 0.0), 0.05),  # a range's dash is no sign
])
def test_motion_signs_are_honoured(text: str, direction: tuple[float, float, float], distance: float) -> None:
    c = parse(text, CFG)
    assert (c.kind, c.direction, c.distance_m) == ("motion", direction, distance), c.summary()


def test_other_signs_are_honoured_or_refused() -> None:
    assert parse("rotate -90 degrees", CFG).angle_rad == pytest.approx(-math.pi / 2)  # clockwise
    assert parse("rotate -90 degrees clockwise", CFG).angle_rad == pytest.approx(math.pi / 2)
    assert parse("grab it -2 cm lower", CFG).delta == (0.0, 0.0, 0.02)
    assert parse("lift it -2 cm higher before moving", CFG).delta == -0.02
    assert parse("go -50 percent slower", CFG).speed_scale == 1.5
    assert parse("another -2 cm", CFG).kind == "unknown"  # no direction to reverse
    assert parse("-2 times faster", CFG).kind == "unknown"


def view(**kw: Any) -> EpisodeView:
    base: dict[str, Any] = {"objects": (), "params": None}
    base.update(kw)
    return EpisodeView(**base)


def reply(effects: list[Any]) -> Say:
    return [e for e in effects if isinstance(e, Say)][-1]


def test_ten_metres_is_capped_with_a_clear_reply() -> None:
    e = handle(parse("move 10 metres left", CFG), view(), LIB)
    assert reply(e).text == CAP_REPLY + "moving 25 cm left"
    (enq,) = [x for x in e if isinstance(x, Enqueue)]
    assert enq.calls[0][0].args["distance_m"] == 0.25
    e = handle(parse("move 10 metres left", CFG), view(current=PICKING), LIB)
    (shift,) = [x for x in e if isinstance(x, Shift)]
    assert shift.offset == pytest.approx((0.0, 0.25, 0.0)) and reply(e).text.startswith(CAP_REPLY)
    e = handle(parse("move 20 cm left", CFG), view(), LIB)
    assert reply(e).text == "moving 20 cm left"


def test_angle_speed_and_skill_offset_caps_say_so() -> None:
    e = handle(parse("rotate 720 degrees", CFG), view(current=PICKING), LIB)
    assert reply(e).text.startswith("that is more than the 180 degrees I turn on a correction; rotating 180 degrees")
    e = handle(parse("10 times faster", CFG), view(), LIB)
    assert [x.speed_scale for x in e if isinstance(x, Rescale)] == [3.0]
    assert reply(e).text == "that is faster than the 3x I go; speed now 3x"
    e = handle(parse("place it 2 metres to the left", CFG), view(), LIB)
    (sp,) = [x for x in e if isinstance(x, SetParam)]
    assert sp.value == pytest.approx((0.0, 0.25, 0.0)) and reply(e).text.startswith(CAP_REPLY)


@pytest.mark.parametrize("c", [
    Correction("x", kind="motion", direction=(math.nan, math.nan, math.nan), distance_m=math.nan),
    Correction("x", kind="motion", direction=(0.0, 1.0, 0.0), distance_m=math.inf),
    Correction("x", kind="motion", direction=(0.0, math.inf, 0.0), distance_m=0.05),
    Correction("x", kind="rotate", axis=(0.0, 0.0, 1.0), angle_rad=math.nan),
    Correction("x", kind="speed", speed_scale=math.nan),
    Correction("x", kind="skill", skill="place", param="offset", delta=(0.0, math.inf, 0.0)),
    Correction("x", kind="skill", skill="place", param="offset", delta=(math.nan, 0.0, 0.0)),
    Correction("x", kind="skill", skill="pick", param="lift_height", delta=math.inf),
    Correction("x", kind="skill", skill="pick", param="lift_height", value=math.nan),
])
@pytest.mark.parametrize("running", [False, True])
def test_the_handler_refuses_a_non_finite_correction(c: Correction, running: bool) -> None:
    """A correction built by hand (or by a regressed parser) with inf/NaN changes nothing and says so."""
    e = handle(c, view(current=PICKING if running else None), LIB)
    assert [type(x) for x in e] == [Say] and not e[0].applied, e


def test_a_skill_never_commands_a_non_finite_target() -> None:
    """The arm primitive refuses a NaN offset (say, set by a buggy caller) instead of holding forever."""
    robot = build_robot("sim:pybullet", scene="tabletop", seed=0)
    robot.connect()
    try:
        obs = robot.get_observation()
        ctx = SkillContext(objects=lambda: [], dt=robot.control_dt, observation=obs)
        ctx.offset = np.array([math.nan, 0.0, 0.0])
        gen = move_to(ctx, np.array([0.4, 0.0, 0.3]), None, 0.0, 0.2)
        sent = []
        with pytest.raises(StopIteration) as stop:
            while True:
                sent.append(next(gen))
        assert not sent and not stop.value.value.ok and "finite" in stop.value.value.message
    finally:
        robot.disconnect()


@pytest.mark.parametrize("effect", [Shift(offset=(math.nan, 0.0, 0.0)), Shift(yaw=math.inf), Rescale(math.nan),
                                    SetParam("pick", "lift_height", math.inf)])
def test_the_loop_never_holds_a_non_finite_effect(effect: Any) -> None:
    """The last layer before the skills: an inf/NaN effect (whoever built it) is refused, never applied."""
    robot = build_robot("sim:pybullet", scene="tabletop", seed=0)
    robot.connect()
    try:
        agent = make_agent(robot, RuleBasedPolicy())
        ctx = agent.state.ctx
        reply, applied = agent._apply([effect, Say("ok")])
        assert not applied and "not finite" in reply
        assert np.all(ctx.offset == 0) and ctx.yaw_offset == 0 and ctx.speed_scale == 1.0
        assert agent.state.episode_params == {}
    finally:
        robot.disconnect()


def test_a_stored_speed_is_kept_in_the_agents_range(tmp_path) -> None:
    """The knowledge base is a way in too: a stored `speed` effect is finite (effects check it) but may
    be any size; the step runs at most at the agent's top speed, and its own speed is back after it."""
    from agent.knowledge import KnowledgeBridge
    from corrections_kb.knowledge import Knowledge
    from corrections_kb.store import SqliteKnowledgeStore

    vec = np.ones(384, np.float32) / np.sqrt(384)
    store = SqliteKnowledgeStore(tmp_path / "kb.sqlite")
    pick = PICKING.skill
    store.add(Knowledge(kind="skill", statement="pick blocks very fast", effect={"type": "speed", "skill": pick,
                        "scale": 1000.0}, scope={"skill": pick, "object_category": "block"}, text_embedding=vec))
    kb = KnowledgeBridge(store, operator="test", visual=False, learn=False, embed_text=lambda _t: vec)
    with build_robot("sim:pybullet", scene="pick_place", seed=0) as robot:
        agent = make_agent(robot, RuleBasedPolicy(), knowledge=kb, max_episode_s=30)
        speeds: list[float] = []
        send = robot.send_action

        def spy(action: dict[str, Any]) -> dict[str, Any]:
            speeds.append(agent.state.ctx.speed_scale)
            return send(action)

        robot.send_action = spy  # type: ignore[method-assign]
        result = agent.run("pick up the red block")
    kb.close()
    assert [k["statement"] for k in result.knowledge_applied] == ["pick blocks very fast"]
    hi = agent.config.speed_scale_range[1]
    assert speeds and max(speeds) == pytest.approx(hi) and all(math.isfinite(s) and s <= hi for s in speeds)
    assert agent.state.ctx.speed_scale == pytest.approx(1.0)  # the learned speed applied to its step only


@pytest.mark.parametrize("text, param", [("grab it 10 metres lower", "grasp_offset"),
                                         ("lift it 3 metres higher before moving", "lift_height")])
def test_a_skill_parameter_outside_its_range_is_refused_in_words(text: str, param: str) -> None:
    """Each skill parameter declares its range (skills.base.param): 'grab it 10 metres lower' asked
    for a grasp 25 cm below the object's grasp point and would have run it."""
    for running in (False, True):
        e = handle(parse(text, CFG), view(current=PICKING) if running else view(), LIB)
        assert not any(isinstance(x, SetParam) for x in e), e
        r = reply(e)
        assert not r.applied and r.text.startswith("could not apply that: ") and f"parameter {param!r} must be within" in r.text


def test_a_stored_parameter_outside_its_range_is_not_run() -> None:
    pick = LIB.get(PICKING.skill)
    with pytest.raises(CorrigoError, match="'lift_height' must be within 0 to 0.4, got 3"):
        pick.default_params({"lift_height": 3.0})
    assert pick.default_params({"lift_height": 0.2}).lift_height == 0.2
