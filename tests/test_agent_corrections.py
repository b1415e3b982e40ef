"""Every correction kind changes the running episode the way it should.

The simulator and the loop are deterministic (scripted corrections fire at episode
times), so each corrected run is compared with the uncorrected run of the same seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from agent.loop import Agent, AgentConfig, EpisodeResult
from agent.runner import text_task
from policies import RuleBasedPolicy
from robot.geometry import quat_angle
from sim import make_sim_arm
from sim.tasks import inside

TASK = "put the red block in the blue bowl"


@dataclass
class Trace:
    """Collects what the loop sends, frame by frame (implements the Recorder protocol)."""

    ee: list[np.ndarray] = field(default_factory=list)
    quat: list[np.ndarray] = field(default_factory=list)
    grip: list[float] = field(default_factory=list)
    instruction: list[str] = field(default_factory=list)
    intervention: list[bool] = field(default_factory=list)

    def start_episode(self, task: str, meta: dict[str, Any]) -> None: ...

    def add_frame(self, observation, action, instruction, intervention, events, source="policy") -> None:
        self.ee.append(np.asarray(observation["observation.state"][:3], float))
        self.quat.append(np.asarray(observation["observation.state"][3:7], float))
        self.grip.append(float(action["gripper"]))
        self.instruction.append(instruction)
        self.intervention.append(intervention)

    def end_episode(self, success, meta) -> None: ...


def run(corrections=(), task=TASK, scene="tabletop", seed=0, max_s=60.0, backend="pybullet") -> tuple[EpisodeResult, Trace, list]:
    with make_sim_arm(backend, scene=scene, seed=seed) as arm:
        setup = text_task(arm, task)
        trace = Trace()
        agent = Agent(arm, RuleBasedPolicy(), config=AgentConfig(max_episode_s=max_s), recorder=trace)
        for t, text in corrections:
            agent.schedule(t, text)
        result = agent.run(setup.description, setup.success)
        return result, trace, arm.scene_objects()


@pytest.fixture(scope="module")
def baseline():
    result, trace, objects = run()
    assert result.success
    return result, trace, objects


def obj(objects, name):
    return next(o for o in objects if o.name == name)


def release_frame(trace: Trace) -> int:
    """The first frame where the gripper is commanded open after holding."""
    closed = False
    for i, g in enumerate(trace.grip):
        closed |= g > 0.5
        if closed and g < 0.5:
            return i
    raise AssertionError("the gripper never released")


def step_times(result: EpisodeResult, skill: str) -> tuple[float, float]:
    s = next(s for s in result.steps if s.call["skill"] == skill and s.ok)
    return s.t_start, s.t_end


def test_stop_holds_until_continue(baseline) -> None:
    result, trace, _ = run([(1.0, "stop"), (3.0, "continue")])
    assert result.success
    held = np.array(trace.ee[22:60])  # 1.1 s .. 3.0 s
    assert np.max(np.linalg.norm(held - held[0], axis=1)) < 0.004, "the arm moved while stopped"
    assert all(trace.intervention[21:60])
    assert result.duration_s == pytest.approx(baseline[0].duration_s + 2.0, abs=0.2)
    kinds = [c.parsed["kind"] for c in result.corrections]
    assert kinds == ["stop", "resume"] and all(c.applied for c in result.corrections)


def test_continue_while_moving_changes_nothing(baseline) -> None:
    result, trace, _ = run([(1.0, "carry on")])
    assert not result.corrections[0].applied and "already moving" in result.corrections[0].reply
    assert np.allclose(trace.ee, baseline[1].ee)


def test_motion_shifts_the_running_skill_by_the_parsed_amount(baseline) -> None:
    place_start, _ = step_times(baseline[0], "place")
    result, trace, objects = run([(place_start + 0.5, "move 3 cm to the left")])
    assert result.success
    i, j = release_frame(trace), release_frame(baseline[1])
    delta = trace.ee[i] - baseline[1].ee[j]
    assert delta == pytest.approx([0.0, 0.03, 0.0], abs=0.004)
    shift = obj(objects, "red_block").position - obj(baseline[2], "red_block").position
    assert shift[1] > 0.015, "the block should land further left in the bowl"  # it drops in from above the rim


def test_motion_words_and_viewpoint() -> None:
    from agent.loop import Agent

    with make_sim_arm("pybullet", scene="tabletop", seed=0) as arm:
        for viewpoint, expected_y in (("robot", 1.0), ("facing", -1.0)):
            agent = Agent(arm, RuleBasedPolicy(), config=AgentConfig(viewpoint=viewpoint, max_episode_s=3.0))
            agent.schedule(0.2, "stop")
            agent.schedule(0.3, "a bit to the left")
            agent.run("go home")
            sign = np.sign(agent.ctx.offset[1])
            assert sign == expected_y, f"{viewpoint}: offset {agent.ctx.offset}"


def test_rotate_turns_the_gripper(baseline) -> None:
    place_start, _ = step_times(baseline[0], "place")
    result, trace, _ = run([(place_start + 0.3, "rotate the gripper 45 degrees counterclockwise")])
    assert result.success
    i, j = release_frame(trace), release_frame(baseline[1])
    assert quat_angle(trace.quat[i], baseline[1].quat[j]) == pytest.approx(math.pi / 4, abs=0.05)


def test_gripper_correction_acts_at_once(baseline) -> None:
    place_start, _ = step_times(baseline[0], "place")
    t = place_start + 0.6
    result, trace, objects = run([(t, "let go")])
    k = int(round(t / 0.05))
    assert trace.grip[k] < 0.5 and trace.grip[k - 1] > 0.5, "the gripper did not open on the next tick"
    assert any(s.interrupted for s in result.steps)
    assert obj(objects, "red_block").position[2] < 0.03, "the block should have dropped"


def test_speed_rescales_the_skill(baseline) -> None:
    result, _, _ = run([(0.1, "much slower")])
    assert result.success
    t0, t1 = step_times(result, "pick")
    b0, b1 = step_times(baseline[0], "pick")
    assert (t1 - t0) > 1.8 * (b1 - b0)


def test_object_correction_regrounds_the_current_step(baseline) -> None:
    place_start, _ = step_times(baseline[0], "place")
    result, _, objects = run([(place_start + 0.4, "no, the red one")])
    assert inside(obj(objects, "red_block"), obj(objects, "red_bowl"))
    assert "red bowl" in result.corrections[0].reply


def test_the_other_bowl(baseline) -> None:
    place_start, _ = step_times(baseline[0], "place")
    _, _, objects = run([(place_start + 0.4, "the other bowl")])
    assert inside(obj(objects, "red_block"), obj(objects, "red_bowl"))


def test_object_correction_during_pick_picks_the_other_block(baseline) -> None:
    result, _, objects = run([(0.5, "I meant the green block")])
    assert inside(obj(objects, "green_block"), obj(objects, "blue_bowl"))
    assert not inside(obj(objects, "red_block"), obj(objects, "blue_bowl"))


def test_plan_insert_runs_first(baseline) -> None:
    result, _, objects = run([(0.5, "first open the drawer")], max_s=90)
    skills = [s.call["skill"] for s in result.steps if not s.interrupted]
    assert skills[:3] == ["open_drawer", "pick", "place"]
    assert obj(objects, "white_cabinet").state["drawer_open"] > 0.1
    assert result.success


def test_plan_skip_and_reorder() -> None:
    task = "put all the fruit in the basket"
    base, _, _ = run(task=task, max_s=90)
    assert base.success
    first = base.steps[0].call["args"]["object"]
    other = "banana" if first == "apple" else "apple"
    result, _, objects = run([(0.5, f"do the {other} before the {first}")], task=task, max_s=90)
    picks = [s.call["args"]["object"] for s in result.steps if s.call["skill"] == "pick" and s.ok]
    assert picks == [other, first] and result.success
    result, _, objects = run([(0.5, "skip that")], task=task, max_s=90)
    picks = [s.call["args"]["object"] for s in result.steps if s.call["skill"] == "pick" and s.ok]
    assert picks == [other]
    basket = obj(objects, "brown_basket")
    assert not inside(next(o for o in objects if o.category == first), basket)


def test_plan_replace_target(baseline) -> None:
    _, _, objects = run([(1.0, "put it in the red bowl instead")])
    assert inside(obj(objects, "red_block"), obj(objects, "red_bowl"))


def test_skill_correction_changes_a_parameter(baseline) -> None:
    result, trace, _ = run([(0.5, "lift it higher before moving")])
    assert result.success
    t0, t1 = step_times(result, "pick")
    b0, b1 = step_times(baseline[0], "pick")
    top = max(e[2] for e in trace.ee[int(t1 / 0.05) - 5: int(t1 / 0.05)])
    btop = max(e[2] for e in baseline[1].ee[int(b1 / 0.05) - 5: int(b1 / 0.05)])
    assert top - btop == pytest.approx(0.05, abs=0.01)
    pick = next(s for s in result.steps if s.call["skill"] == "pick")
    assert pick.params["lift_height"] == pytest.approx(0.20)


@pytest.mark.parametrize("text, kind, reply", [
    ("always put fruit in the basket", "preference", "noted"),
    ("perfect", "confirm", "thanks"),
    ("flibber jabber wooo", "unknown", "didn't understand"),
    ("", "unknown", "didn't understand"),
])
def test_non_motion_corrections_leave_the_trajectory_alone(baseline, text: str, kind: str, reply: str) -> None:
    result, trace, _ = run([(1.0, text)])
    c = result.corrections[0]
    assert c.parsed["kind"] == kind and reply in c.reply
    assert len(trace.ee) == len(baseline[1].ee) and np.allclose(trace.ee, baseline[1].ee)
    assert result.success


def test_a_typed_instruction_overrides_the_current_step(baseline) -> None:
    result, _, objects = run([(0.5, "pick up the green block")])
    assert result.corrections[0].reply.startswith("ok: pick up the green block")
    held = obj(objects, "green_block")
    assert held.position[2] > 0.05 or inside(held, obj(objects, "blue_bowl"))


def test_every_correction_gets_one_line_reply(baseline) -> None:
    texts = ["stop", "move left", "continue", "slower", "no, the red one", "grasp it lower",
             "always put fruit in the basket", "good", "asdf", "skip that"]
    result, _, _ = run([(0.3 + 0.4 * i, t) for i, t in enumerate(texts)])
    assert len(result.corrections) == len(texts)
    assert all(c.reply and "\n" not in c.reply for c in result.corrections)


@pytest.mark.mujoco
def test_live_motion_correction_on_mujoco() -> None:
    """The same loop and correction handling drive the MuJoCo body unchanged."""
    base, btrace, _ = run(backend="mujoco")
    assert base.success
    place_start, _ = step_times(base, "place")
    result, trace, objects = run([(place_start + 0.5, "move 3 cm to the left")], backend="mujoco")
    assert result.success and result.corrections[0].parsed["kind"] == "motion"
    delta = trace.ee[release_frame(trace) + 7] - btrace.ee[release_frame(btrace) + 7]
    assert delta == pytest.approx([0.0, 0.03, 0.0], abs=0.004)


class _BrokenPolicy(RuleBasedPolicy):
    name = "broken"

    def next_step(self, observation, task, history, knowledge):
        if history:
            raise RuntimeError("model weights went missing")
        return super().next_step(observation, task, history, knowledge)


def test_a_crashing_policy_ends_the_episode_not_the_process() -> None:
    with make_sim_arm("pybullet", scene="tabletop", seed=0) as arm:
        events = []
        agent = Agent(arm, _BrokenPolicy(), config=AgentConfig(max_episode_s=30), on_event=events.append)
        result = agent.run(TASK)
        assert result.done_reason.startswith("policy failed: RuntimeError")
        assert any(e.kind == "error" and "model weights went missing" in e.text for e in events)
        before = arm.get_observation()["observation.state"][:3].copy()
        arm.hold()
        assert np.linalg.norm(arm.get_observation()["observation.state"][:3] - before) < 0.005


def test_operator_can_object_when_the_policy_says_done() -> None:
    """With a grace period, an instruction given as the agent finishes is carried out."""
    with make_sim_arm("pybullet", scene="tabletop", seed=0) as arm:
        agent = Agent(arm, RuleBasedPolicy(), config=AgentConfig(max_episode_s=40, done_grace_s=1.0))
        finished = []

        def operator(a: Agent) -> None:  # speaks once, when the agent says it is done
            if a.finishing and not finished:
                finished.append(a.t)
                a.schedule(a.t + 0.3, "pick up the green block")

        agent.observers.append(operator)
        result = agent.run("put the red block in the blue bowl")
        assert finished, "the agent never entered its grace period"
        assert [s.instruction for s in result.steps][-1] == "pick up the green block"
        green = next(o for o in arm.scene_objects() if o.name == "green_block")
        assert green.position[2] > 0.05, "the green block should be in the hand"
    # without a grace period the episode ends at once
    with make_sim_arm("pybullet", scene="tabletop", seed=0) as arm:
        agent = Agent(arm, RuleBasedPolicy(), config=AgentConfig(max_episode_s=40))
        result = agent.run("put the red block in the blue bowl")
        assert len(result.steps) == 2
