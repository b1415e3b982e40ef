"""The correction handler is pure: (Correction, EpisodeView, SkillLibrary) -> effects.

No simulator, no loop: each test builds a snapshot of an episode and checks what the
handler decides, so these run in milliseconds. The loop carrying the effects out on a
real arm is tested in test_agent_corrections.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from agent.corrections import HandlerConfig, describe_context, handle
from agent.effects import (
    EditPlan,
    Enqueue,
    Hold,
    Interrupt,
    MarkIntervention,
    RememberDirection,
    Rescale,
    Resume,
    Retarget,
    RunNudge,
    Say,
    SetParam,
    Shift,
)
from agent.episode import EpisodeView
from corrections_kb.parser import ParserConfig, parse
from robot.types import SceneObject
from skills import SkillCall, default_library

LIB = default_library()
LEX = LIB.lexicon()
PICK = LEX.name_for("acquire")
PLACE = LEX.name_for("deliver")


def obj(name: str, category: str, colour: str, x: float, y: float, **attributes: object) -> SceneObject:
    return SceneObject(name, category, colour, np.array([x, y, 0.02]), np.array([0.0, 0.0, 0.0, 1.0]),
                       np.array([0.04, 0.04, 0.04]), attributes=dict(attributes))


SCENE = (
    obj("red_block", "block", "red", 0.5, 0.1, graspable=True),
    obj("green_block", "block", "green", 0.5, -0.1, graspable=True),
    obj("blue_bowl", "bowl", "blue", 0.4, 0.25, container=True),
    obj("red_bowl", "bowl", "red", 0.4, -0.25, container=True),
    obj("brown_basket", "basket", "brown", 0.3, 0.35, container=True),
    obj("red_apple", "apple", "red", 0.6, 0.0, graspable=True, group="fruit"),
)
PICKING = SkillCall(PICK, {"object": "red block"})
PLACING = SkillCall(PLACE, {"target": "blue bowl"})


def view(**kw: object) -> EpisodeView:
    base: dict[str, object] = {"objects": SCENE, "params": None}
    base.update(kw)
    return EpisodeView(**base)  # type: ignore[arg-type]


def effects_of(text: str, v: EpisodeView, viewpoint: str = "robot") -> list[object]:
    c = parse(text, ParserConfig(viewpoint=viewpoint, lexicon=LEX))
    return handle(c, v, LIB)


def reply(effects: list[object]) -> Say:
    says = [e for e in effects if isinstance(e, Say)]
    assert says, effects
    return says[-1]


def of(effects: list[object], kind: type) -> list:
    return [e for e in effects if isinstance(e, kind)]


def test_stop_and_resume() -> None:
    e = effects_of("stop", view(current=PICKING))
    assert of(e, Hold) and reply(e).applied
    e = effects_of("wait!", view(current=PICKING, stopped=True))
    assert not of(e, Hold) and "already stopped" in reply(e).text
    e = effects_of("continue", view(current=PICKING, stopped=True))
    assert of(e, Resume) and reply(e).text == "continuing: pick up the red block"
    e = effects_of("carry on", view(current=PICKING))
    assert not of(e, Resume) and not reply(e).applied


def test_motion_while_running_shifts_the_skill_by_the_parsed_amount() -> None:
    e = effects_of("move 3 cm to the left", view(current=PLACING))
    (shift,) = of(e, Shift)
    assert shift.offset == pytest.approx((0.0, 0.03, 0.0)) and shift.yaw == 0.0
    assert of(e, MarkIntervention) and of(e, RememberDirection)[0].direction == pytest.approx((0, 1, 0))
    assert not of(e, RunNudge) and not of(e, Enqueue)
    assert reply(e).text == "shifting 'put it in the blue bowl' 3 cm left"


def test_motion_words_follow_the_viewpoint() -> None:
    e = effects_of("a bit to the left", view(current=PLACING), viewpoint="facing")
    assert of(e, Shift)[0].offset == pytest.approx((0.0, -0.02, 0.0))


def test_motion_while_stopped_runs_a_nudge_of_the_nudge_skill() -> None:
    e = effects_of("2 cm up", view(current=PICKING, stopped=True))
    (nudge,) = of(e, RunNudge)
    assert LEX.role_of(nudge.call.skill) == "nudge"
    assert nudge.call.args["vector"] == pytest.approx([0.0, 0.0, 0.02])
    assert of(e, Shift)[0].offset == pytest.approx((0.0, 0.0, 0.02)) and "still stopped" in reply(e).text


def test_motion_between_steps_queues_a_nudge() -> None:
    e = effects_of("forward", view())
    (q,) = of(e, Enqueue)
    call, source = q.calls[0]
    assert LEX.role_of(call.skill) == "nudge" and source == "operator"
    assert call.args["vector"] == pytest.approx([0.03, 0.0, 0.0])


def test_a_bit_more_repeats_the_last_direction() -> None:
    e = effects_of("a bit more", view(current=PLACING, last_motion=(0.0, -1.0, 0.0)))
    assert of(e, Shift)[0].offset == pytest.approx((0.0, -0.02, 0.0))
    e = effects_of("a bit more", view(current=PLACING))
    assert not of(e, Shift) and not reply(e).applied and "which way" in reply(e).text


def test_a_single_nudge_is_capped() -> None:
    e = effects_of("move 80 cm left", view(current=PLACING))
    assert np.linalg.norm(of(e, Shift)[0].offset) == pytest.approx(HandlerConfig().max_nudge_m)


def test_rotate_while_running_turns_the_skill() -> None:
    e = effects_of("rotate the gripper 45 degrees clockwise", view(current=PLACING))
    assert of(e, Shift)[0].yaw == pytest.approx(-math.pi / 4) and of(e, MarkIntervention)


def test_gripper_interrupts_and_queues_the_release_skill() -> None:
    e = effects_of("let go", view(current=PLACING))
    assert of(e, Interrupt)
    (q,) = of(e, Enqueue)
    assert [LEX.role_of(c.skill) for c, _ in q.calls] == ["release"]
    e = effects_of("let go", view(current=PLACING, stopped=True))
    assert LEX.role_of(of(e, RunNudge)[0].call.skill) == "release" and not of(e, Interrupt)


def test_speed_is_rescaled_and_clipped() -> None:
    assert of(effects_of("much slower", view(current=PICKING)), Rescale)[0].speed_scale == pytest.approx(0.3)
    assert of(effects_of("faster", view(current=PICKING, speed_scale=2.5)), Rescale)[0].speed_scale == pytest.approx(3.0)


def test_object_correction_regrounds_the_running_step() -> None:
    e = effects_of("no, the red one", view(current=PLACING))
    (rt,) = of(e, Retarget)
    assert (rt.old, rt.new, rt.slot) == ("blue bowl", "red bowl", "target")
    (q,) = of(e, Enqueue)
    assert q.calls[0][0] == SkillCall(PLACE, {"target": "red bowl"}) and of(e, Interrupt)
    assert reply(e).text == "ok, the red bowl: put it in the red bowl"


def test_the_other_one_without_a_running_step_retargets_the_plan() -> None:
    e = effects_of("the other block", view(remaining=(PICKING, PLACING)))
    (rt,) = of(e, Retarget)
    assert (rt.old, rt.new) == ("red block", "green block") and rt.reply and "{n}" in rt.reply
    assert not of(e, Interrupt)


def test_object_correction_naming_nothing_in_the_scene_changes_nothing() -> None:
    e = effects_of("no, the purple one", view(current=PICKING))
    assert not of(e, Retarget) and not reply(e).applied


def test_plan_insert_runs_first_then_the_interrupted_step() -> None:
    e = effects_of("first open the drawer", view(current=PICKING))
    (q,) = of(e, Enqueue)
    assert [LEX.role_of(c.skill) for c, _ in q.calls] == ["open_container", "acquire"]
    assert q.calls[1][0] == PICKING and of(e, Interrupt)


def test_skip_a_pick_also_skips_its_place() -> None:
    e = effects_of("skip that", view(current=PICKING, remaining=(PLACING,)))
    assert of(e, Interrupt) and [x.edit.op for x in of(e, EditPlan)] == ["skip"]


def test_reorder_falls_back_to_acting_now_when_the_plan_is_not_editable() -> None:
    e = effects_of("do the apple first", view(current=PICKING))
    edits = of(e, EditPlan)
    assert [x.edit.op for x in edits] == ["insert", "reorder"]  # the pick under way goes back in the plan
    assert edits[0].edit.calls == [PICKING] and edits[1].say
    fallback = edits[-1].otherwise
    assert fallback is not None and edits[0].otherwise == fallback
    (q,) = [x for x in fallback if isinstance(x, Enqueue)]
    assert q.calls[0][0] == SkillCall(PICK, {"object": "apple"})
    e = effects_of("do the green block first", view(current=PICKING))  # a block is being picked: no insert
    assert [x.edit.op for x in of(e, EditPlan)] == ["reorder"]


def test_replace_while_placing_moves_the_running_place() -> None:
    e = effects_of("put it in the basket instead", view(current=PLACING))
    assert of(e, EditPlan)[0].edit.target == "basket"
    assert of(e, Enqueue)[0].calls[0][0] == SkillCall(PLACE, {"target": "basket"})
    assert reply(e).text == "putting it in the basket instead"


def test_skill_correction_on_the_running_step_is_live() -> None:
    params = {"lift_height": 0.15, "grasp_offset": [0.0, 0.0, 0.0]}
    e = effects_of("lift it higher before moving", view(current=PICKING, params=params))
    (sp,) = of(e, SetParam)
    assert (sp.skill, sp.param, sp.live) == (PICK, "lift_height", True) and sp.value == pytest.approx(0.20)
    assert "0.15 -> 0.2 (now)" in reply(e).text


def test_skill_correction_for_a_later_step_builds_on_episode_params() -> None:
    e = effects_of("grasp it lower", view(current=PLACING, episode_params={PICK: {"grasp_offset": (0.0, 0.0, -0.01)}}))
    (sp,) = of(e, SetParam)
    assert not sp.live and sp.value == pytest.approx((0.0, 0.0, -0.02))


def test_typed_instruction_replaces_the_current_step() -> None:
    e = effects_of("pick up the green block", view(current=PICKING))
    assert of(e, Interrupt) and of(e, Enqueue)[0].calls[0][0] == SkillCall(PICK, {"object": "green block"})
    assert reply(e).text == "ok: pick up the green block"
    e = effects_of("pick up the unicorn", view(current=PICKING))
    assert not of(e, Interrupt) and not reply(e).applied and "unicorn" in reply(e).text


HUGE = "9" * 400  # parses to inf: the NaN that froze a step ([robustness])


@pytest.mark.parametrize("text", ["flibber jabber", "", "\x00\x00", "9" * 500, "always put fruit in the basket", "good",
                                  f"move {HUGE} cm left and 5 cm up", f"rotate {HUGE} degrees", f"{HUGE} times faster"])
def test_every_correction_gets_one_reply_and_nothing_unsafe(text: str) -> None:
    e = effects_of(text, view(current=PICKING))
    assert len(of(e, Say)) >= 1 and "\n" not in reply(e).text
    for s in of(e, Shift):
        assert all(math.isfinite(x) for x in s.offset) and math.isfinite(s.yaw)


def test_the_handler_does_not_touch_its_inputs() -> None:
    v = view(current=PICKING, remaining=(PLACING,), episode_params={PICK: {"lift_height": 0.2}})
    before = repr(v)
    for text in ("no, the green one", "skip that", "grasp it lower", "stop", "left", "first open the drawer"):
        effects_of(text, v)
    assert repr(v) == before


def test_context_names_the_object_and_phase() -> None:
    d = describe_context(view(current=PICKING, phase="descend"), LIB)
    assert d["object"]["name"] == "red_block" and d["phase"] == "descend" and d["step"] == "pick up the red block"
