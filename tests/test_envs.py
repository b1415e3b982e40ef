"""Gymnasium envs: registration in one place, check_env, seeding, success info."""
from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.tasks import TASKS, env_id


def test_ids_are_generated_for_every_task() -> None:
    assert sim.ENV_IDS == [env_id(t) for t in TASKS]
    assert all(e in gym.registry for e in sim.ENV_IDS)


@pytest.mark.parametrize("eid", sim.ENV_IDS)
def test_check_env_passes(eid: str) -> None:
    env = gym.make(eid)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        _, info = env.reset(seed=0)
        assert info["is_success"] is False
        assert isinstance(env.unwrapped.task_description, str) and env.unwrapped.task_description
    finally:
        env.close()


def test_check_env_with_cameras_and_render() -> None:
    env = gym.make("corrigo/Stack-v0", cameras=("front", "wrist"), image_size=64, render_mode="rgb_array")
    try:
        check_env(env.unwrapped)
        obs, _ = env.reset(seed=1)
        assert obs["observation.images.wrist"].shape == (64, 64, 3)
        assert env.render().shape == (64, 64, 3)
        seg = obs["observation.segmentation.front"]
        assert {2, 3, 4} & set(np.unique(seg).tolist()), "objects should be visible in the front camera"
    finally:
        env.close()


def test_same_seed_same_observation() -> None:
    env = gym.make("corrigo/PickPlace-v0")
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    assert np.array_equal(a["observation.environment_state"], b["observation.environment_state"])
    assert not np.array_equal(a["observation.environment_state"], c["observation.environment_state"])
    env.close()


def test_env_actions_move_the_arm() -> None:
    env = gym.make("corrigo/Stack-v0")
    obs, _ = env.reset(seed=0)
    start = obs["observation.state"][:3].copy()
    for _ in range(10):
        obs, *_ = env.step(np.array([0, 1, 0, 0, -1], np.float32))
    assert obs["observation.state"][1] - start[1] > 0.1  # +y is the robot's left
    env.close()


def test_corrigo_envs_lists_the_ids() -> None:
    out = subprocess.run([sys.executable, "-m", "agent.cli", "envs"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for eid in sim.ENV_IDS:
        assert eid in out.stdout
