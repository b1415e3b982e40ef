"""The HighLevelPolicy contract on every registered policy, on real PyBullet scene observations.

Each policy in `policies.registry` needs a way to be built here (see `policy`); a policy that is
registered without one fails the suite instead of going untested.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli
from policies.base import Done, HighLevelPolicy, PlanEdit, PolicyError
from policies.registry import known_policies, make_policy
from sim import CameraConfig, make_sim_arm
from sim.tasks import get_task
from skills.base import SkillCall
from skills.library import default_library
from skills.perception import privileged_objects

ENVS = ("corrigo/PickPlace-v0", "corrigo/Stack-v0", "corrigo/OpenDrawer-v0")
LIBRARY = default_library()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learned policy trained for one epoch on one collected episode (a few seconds)."""
    root = tmp_path_factory.mktemp("policy-contract")
    out = cli("collect", "--env", "corrigo/Stack-v0", "--episodes", "1", "--out", str(root / "demos"),
              "--cameras", "front", "--image-size", "48", "--no-progress")
    assert out.returncode == 0, out.stderr
    out = cli("train", "--data", str(root / "demos"), "--out", str(root / "policy"), "--epochs", "1", "--no-progress")
    assert out.returncode == 0, out.stderr + out.stdout
    return root / "policy"


@pytest.fixture(scope="module")
def scenes() -> dict[str, tuple[dict[str, Any], str]]:
    """Per benchmark env: the observation a policy gets (as `Agent.observation_for_policy` builds it) and the task."""
    out = {}
    for env in ENVS:
        task = get_task(env)
        with make_sim_arm("pybullet", scene=task.scene, seed=0, cameras=("front",), camera=CameraConfig(48, 48)) as arm:
            objects = privileged_objects(arm)()
            out[env] = ({**arm.get_observation(), "perception.objects": objects}, task.instantiate(objects, 0).description)
    return out


@pytest.fixture(params=[pytest.param(n, marks=[pytest.mark.kb] if n == "learned" else []) for n in known_policies()])
def policy(request: pytest.FixtureRequest) -> HighLevelPolicy:
    name = request.param
    if name == "rule_based":
        spec = "rule_based"
    elif name == "learned":
        spec = f"learned:{request.getfixturevalue('checkpoint')}"
    else:
        pytest.fail(f"the policy {name!r} is registered but has no contract set-up in {__file__}")
    p = make_policy(spec)
    p.reset()
    return p


def assert_library_call(call: Any) -> None:
    assert isinstance(call, SkillCall), call
    assert call.skill in LIBRARY, call
    text = LIBRARY.render(call)
    assert LIBRARY.parse(text) == call, (text, call)


def test_name_and_version_are_strings(policy: HighLevelPolicy) -> None:
    for value in (policy.name, policy.version):
        assert isinstance(value, str) and value.strip()


@pytest.mark.parametrize("env", ENVS)
def test_next_step_is_a_library_call_or_done(policy: HighLevelPolicy, scenes: dict, env: str) -> None:
    obs, task = scenes[env]
    out = policy.next_step(obs, task, [], [])
    if isinstance(out, Done):
        assert isinstance(out.reason, str) and out.reason and isinstance(out.ok, bool)
    else:
        assert_library_call(out)
    remaining = policy.remaining()
    assert isinstance(remaining, list)
    for call in remaining:
        assert_library_call(call)
    assert isinstance(policy.knowledge_used(), list)
    policy.reset()
    again = policy.next_step(obs, task, [], [])
    assert type(again) is type(out) and (isinstance(out, Done) or LIBRARY.render(again) == LIBRARY.render(out))


@pytest.mark.parametrize("edit", [PlanEdit("skip"), PlanEdit("insert", [SkillCall("go_home", {})]),
                                  PlanEdit("replace", target="green bowl"), PlanEdit("no-such-op")],
                         ids=["skip", "insert", "replace", "unknown-op"])
def test_edit_plan_answers_in_words_or_refuses(policy: HighLevelPolicy, scenes: dict, edit: PlanEdit) -> None:
    obs, task = scenes["corrigo/PickPlace-v0"]
    policy.next_step(obs, task, [], [])
    try:
        said = policy.edit_plan(edit, obs)
    except PolicyError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(said, str) and said
        for call in policy.remaining():
            assert_library_call(call)


def test_retarget_reports_how_many_steps_changed(policy: HighLevelPolicy, scenes: dict) -> None:
    obs, task = scenes["corrigo/PickPlace-v0"]
    policy.next_step(obs, task, [], [])
    before = policy.remaining()
    n = policy.retarget(None, "green bowl", "target")
    assert type(n) is int and 0 <= n <= len(before)
    after = [c.args.get("target") for c in policy.remaining()]
    assert after.count("green bowl") >= n
    assert policy.retarget("no such thing", "red block", None) == 0
