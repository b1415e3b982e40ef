"""A correction is needed once per instance until the evidence says it holds for the kind:
the distilled item is retrieved for the same object moved and turned; a second instance
that needs the same correction widens it to every object of that category; it is never
applied to another category."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agent.knowledge import KnowledgeBridge
from agent.loop import Agent, AgentConfig
from agent.operator_link import attach_operator
from corrections_kb.store import SqliteKnowledgeStore
from policies import RuleBasedPolicy
from sim import make_sim_arm
from sim.operator import GraspPoint, OperatorConfig, SimulatedOperator
from sim.scene import scene_from_dict
from sim.tasks import inside

pytestmark = pytest.mark.kb


def scene(kind: str, x: float, y: float, yaw: float, colour: str) -> object:
    return scene_from_dict({"objects": [
        {"type": kind, "colour": colour, "pose": {"x": x, "y": y, "yaw": yaw}},
        {"type": "basket", "pose": {"x": 0.38, "y": 0.36, "yaw": 1.5708}},
    ]})


def episode(kb: KnowledgeBridge, spec: object, task: str, with_operator: bool, cameras: tuple[str, ...] = ()):
    with make_sim_arm("pybullet", scene=spec, cameras=cameras) as arm:
        agent = Agent(arm, RuleBasedPolicy(), config=AgentConfig(max_episode_s=60), knowledge=kb)
        if with_operator:
            attach_operator(agent, SimulatedOperator(arm, [GraspPoint(category="jug")], OperatorConfig(seed=1)))
        result = agent.run(task)
        objs = arm.scene_objects()
        ok = inside(objs[0], objs[1])
    return result, ok


def test_a_grasp_correction_is_needed_once(tmp_path: Path) -> None:
    store = SqliteKnowledgeStore(tmp_path / "kb.sqlite")
    kb = KnowledgeBridge(store, operator="test")

    # 1. the default grasp (the jug's centre) would miss: the operator stops the arm and nudges it to the handle
    r1, ok1 = episode(kb, scene("jug", 0.5, -0.05, 0.3, "blue"), "put the jug in the basket", with_operator=True)
    assert ok1, r1.done_reason
    kinds = [c.parsed["kind"] for c in r1.corrections]
    assert "stop" in kinds and "motion" in kinds and "resume" in kinds
    items = store.list(kind="skill")
    assert len(items) == 1
    item = items[0]
    assert item.effect["param"] == "grasp_offset" and item.scope["object_category"] == "jug"
    # stored in the jug's frame: along its +x, where the handle is
    assert item.effect["value"][0] == pytest.approx(0.076, abs=0.012) and abs(item.effect["value"][1]) < 0.012
    assert item.provenance["utterances"] and item.text_embedding is not None

    assert item.scope["object"] == "blue_jug" and item.statement.startswith("grasp the blue jug")  # one instance: narrow

    # 2. the same jug moved and turned, no operator: the item is retrieved and the grasp succeeds
    r2, ok2 = episode(kb, scene("jug", 0.55, 0.05, -1.2, "blue"), "put the jug in the basket", with_operator=False)
    assert ok2 and r2.corrections == []
    assert [k["id"] for k in r2.knowledge_applied] == [item.id]
    assert store.get(item.id).successes >= 1

    # 2b. another jug (green): one blue jug is no evidence about it; the operator corrects it the same way,
    # and the two instances agreeing widen the item to every jug (one item, not two)
    r2b, ok2b = episode(kb, scene("jug", 0.52, 0.0, 1.0, "green"), "put the jug in the basket", with_operator=True)
    assert ok2b and r2b.knowledge_applied == [] and any(c.parsed["kind"] == "motion" for c in r2b.corrections)
    items = store.list(kind="skill")
    assert [k.id for k in items] == [item.id]
    wide = items[0]
    assert wide.scope["object"] is None and wide.scope["object_category"] == "jug" and wide.statement.startswith("grasp jugs")
    assert "widened" in store.history(item.id)[-1].reason

    # 2c. a jug never seen (red), no operator: the widened item applies
    r2c, ok2c = episode(kb, scene("jug", 0.55, 0.05, -1.2, "red"), "put the jug in the basket", with_operator=False)
    assert ok2c and r2c.corrections == [] and [k["id"] for k in r2c.knowledge_applied] == [item.id]

    # 3. another category (a mug): the jug's handle offset does not apply, and the mug goes in as usual
    r3, ok3 = episode(kb, scene("mug", 0.5, -0.05, 0.7, "red"), "put the mug in the basket", with_operator=False)
    assert ok3 and r3.knowledge_applied == []
    store.close()


def test_without_knowledge_the_default_grasp_misses(tmp_path: Path) -> None:
    """The control for the test above: the moved jug is not graspable by its centre."""
    with make_sim_arm("pybullet", scene=scene("jug", 0.55, 0.05, -1.2, "green")) as arm:
        result = Agent(arm, RuleBasedPolicy(), config=AgentConfig(max_episode_s=40)).run("put the jug in the basket")
        objs = arm.scene_objects()
        assert not inside(objs[0], objs[1])
        assert any(s.message.startswith("missed") for s in result.steps)


def test_retrieval_uses_the_object_crop_when_cameras_are_on(tmp_path: Path) -> None:
    """With a front camera, items carry the crop's visual embedding and retrieval scores text and image."""
    store = SqliteKnowledgeStore(tmp_path / "kb.sqlite")
    kb = KnowledgeBridge(store, operator="test")
    r1, ok1 = episode(kb, scene("jug", 0.5, -0.05, 0.3, "blue"), "put the jug in the basket", True, ("front",))
    assert ok1
    item = store.list(kind="skill")[0]
    assert item.visual_embedding is not None and item.visual_embedding.shape == (1280,)
    # the same jug, elsewhere and turned; the hit is found by text and image together
    with make_sim_arm("pybullet", scene=scene("jug", 0.55, 0.05, -1.2, "blue"), cameras=("front",)) as arm:
        objs = arm.scene_objects()
        from skills.base import SkillCall

        applied = kb.for_step("put the jug in the basket", SkillCall("pick", {"object": "jug"}), objs, arm.get_observation())
        assert [a.id for a in applied] == [item.id]
        hits = store.search(kb.text_vec("pick blue jug"), kb.image_vec(kb._crop(objs[0], arm.get_observation())),
                            filters={"kind": "skill"})
        assert hits[0].visual_sim is not None and hits[0].visual_sim > 0.3
    store.close()
