"""Rule-based grounding of task sentences, and the tasks it solves in simulation."""
from __future__ import annotations

import subprocess
import sys

import pytest

from policies import PolicyError, RuleBasedPolicy
from sim import make_sim_arm
from sim.tasks import task_from_text


@pytest.fixture(scope="module")
def tabletop():
    arm = make_sim_arm("pybullet", scene="tabletop", seed=0)
    arm.connect()
    yield arm
    arm.disconnect()


@pytest.mark.parametrize("task, plan", [
    ("put the red block in the blue bowl", ["pick up the red block", "put it in the blue bowl"]),
    ("Pick up the green block and put it in the red bowl.", ["pick up the green block", "put it in the red bowl"]),
    ("stack the green block on the yellow block", ["pick up the green block", "put it on the yellow block"]),
    ("put all the fruit in the basket", ["pick up the apple", "put it in the basket", "pick up the banana", "put it in the basket"]),
    ("open the drawer", ["open the drawer"]),
    ("put the red block in the drawer", ["open the drawer", "pick up the red block", "put it in the drawer"]),
    ("grab the yellow block", ["pick up the yellow block"]),
])
def test_grounding(tabletop, task: str, plan: list[str]) -> None:
    pol = RuleBasedPolicy()
    calls = pol.ground(task, tabletop.scene_objects())
    rendered = [pol.library.render(c) for c in calls]
    if "all" in task:  # the order of a group is the policy's choice
        pairs = sorted(zip(rendered[::2], rendered[1::2]))
        assert pairs == sorted(zip(plan[::2], plan[1::2]))
    else:
        assert rendered == plan


@pytest.mark.parametrize("task, message", [
    ("put the unicorn in the blue bowl", "no object matches 'unicorn'"),
    ("put the block in the blue bowl", "could mean"),
    ("dance around", "cannot ground"),
])
def test_grounding_errors_are_one_line(tabletop, task: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as e:
        RuleBasedPolicy().ground(task, tabletop.scene_objects())
    assert "\n" not in str(e.value)


def test_task_sentences_give_success_checks(tabletop) -> None:
    objs = tabletop.scene_objects()
    inst = task_from_text("put the red block in the blue bowl", objs)
    assert inst is not None and inst.task == "PickPlace" and not inst.is_success(objs)
    assert task_from_text("open the drawer", objs).task == "OpenDrawer"
    assert task_from_text("put the red block in the drawer", objs).task == "PutInDrawer"
    assert task_from_text("wave hello", objs) is None


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, message", [
    (["run", "--task", "put the unicorn in the bowl"], "no object matches 'unicorn'"),
    (["run", "--env", "corrigo/Juggle-v0"], "unknown task 'corrigo/Juggle-v0'"),
    (["run", "--task", "x", "--scene", "nonexistent_scene"], "not found"),
    (["run", "--task", "x", "--robot", "sim:gazebo"], "unknown"),
    (["run"], "exactly one of --task"),
])
def test_cli_bad_input_is_one_line(args: list[str], message: str) -> None:
    out = _cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_cli_broken_scene_yaml(tmp_path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("objects:\n  - {type: block, colour: red\n")
    out = _cli("run", "--task", "pick up the red block", "--scene", str(p))
    assert out.returncode == 2 and "broken YAML" in out.stderr and "Traceback" not in out.stderr
