"""The MuJoCo backend: same arm, scenes, skills and envs as PyBullet."""
from __future__ import annotations

from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("mujoco")

from gymnasium.utils.env_checker import check_env  # noqa: E402

import sim  # noqa: E402
from robot.errors import NotConnectedError  # noqa: E402
from robot.geometry import down_quat, quat_angle  # noqa: E402
from sim import CameraConfig, make_sim_arm  # noqa: E402
from sim.arm import SimArm  # noqa: E402
from skills import SkillCall, SkillContext, SkillOutcome, default_library  # noqa: E402
from skills.perception import privileged_objects  # noqa: E402

pytestmark = pytest.mark.mujoco


def _connected(backend: str, **kw: Any) -> SimArm:
    arm = make_sim_arm(backend, **kw)
    arm.connect()
    return arm


@pytest.fixture(scope="module")
def mj() -> Iterator[SimArm]:
    arm = _connected("mujoco", scene="pick_place", seed=0)
    yield arm
    arm.disconnect()


@pytest.fixture(scope="module")
def pb() -> Iterator[SimArm]:
    arm = _connected("pybullet", scene="pick_place", seed=0)
    yield arm
    arm.disconnect()


def _run_skill(arm: SimArm, skill_name: str, args: dict[str, str]) -> SkillOutcome:
    lib = default_library()
    skill = lib.get(skill_name)
    ctx = SkillContext(objects=privileged_objects(arm), dt=arm.control_dt)
    ctx.reset_for_call(skill.default_params())
    gen = skill.run(arm, SkillCall(skill_name, args), ctx)
    while True:
        ctx.observation = arm.get_observation()
        try:
            arm.send_action(next(gen))
        except StopIteration as stop:
            return stop.value


def _hold_pose(arm: SimArm, pos: Any, yaw: float = 0.0, ticks: int = 30) -> np.ndarray:
    for _ in range(ticks):
        arm.send_action({"ee.pos": np.asarray(pos, float), "ee.quat_xyzw": down_quat(yaw), "gripper": 0.0})
    return arm.get_observation()["observation.state"]


def test_features_before_connect() -> None:
    arm = make_sim_arm("mujoco", scene="drawer", cameras=("front",))
    assert arm.name == "sim:mujoco" and not arm.is_connected
    feats = arm.observation_features
    assert feats["observation.state"].shape == (15,)
    assert feats["observation.images.front"].shape == (128, 128, 3)
    assert "ee.pos" in arm.action_features
    with pytest.raises(NotConnectedError):
        arm.get_observation()


def test_home_ee_matches_pybullet(mj: SimArm, pb: SimArm) -> None:
    mj.reset(0)
    pb.reset(0)
    a, b = mj.get_observation()["observation.state"], pb.get_observation()["observation.state"]
    assert np.linalg.norm(a[:3] - b[:3]) < 0.005, (a[:3], b[:3])
    assert np.linalg.norm(a[:3] - [0.307, 0.0, 0.485]) < 0.005
    assert quat_angle(a[3:7], np.array([1.0, 0.0, 0.0, 0.0])) < 0.01  # pointing down
    assert a[7] < 0.02  # open


@pytest.mark.parametrize("pos,yaw", [((0.5, 0.0, 0.25), 0.0), ((0.42, 0.22, 0.08), 0.6), ((0.62, -0.28, 0.32), -1.0)])
def test_ik_reaches_commanded_poses(mj: SimArm, pos: tuple[float, float, float], yaw: float) -> None:
    mj.reset(0)
    state = _hold_pose(mj, pos, yaw, ticks=40)
    assert np.linalg.norm(state[:3] - np.asarray(pos)) < 0.005, state[:3]
    assert quat_angle(state[3:7], down_quat(yaw)) < 0.02
    assert mj._ik.data is not mj.data  # IK never touches the live physics


def test_pick_lifts_a_block(mj: SimArm) -> None:
    mj.reset(0)
    block = next(o for o in mj.scene_objects() if o.category == "block")
    z0 = float(block.position[2])
    out = _run_skill(mj, "pick", {"object": block.description})
    assert out.ok, out.message
    now = next(o for o in mj.scene_objects() if o.name == block.name)
    assert now.position[2] - z0 > 0.05


@pytest.mark.parametrize("scene,seed", [("pick_place", 3), ("drawer", 2), ("sort_fruit", 7)])
def test_same_seed_same_layout_as_pybullet(scene: str, seed: int) -> None:
    a, b = _connected("mujoco", scene=scene, seed=seed), _connected("pybullet", scene=scene, seed=seed)
    try:
        oa, ob = a.scene_objects(), b.scene_objects()
        assert [o.name for o in oa] == [o.name for o in ob]
        for x, y in zip(oa, ob):
            assert np.linalg.norm(x.position - y.position) < 0.002, (x.name, x.position, y.position)
            assert quat_angle(x.quat_xyzw, y.quat_xyzw) < 0.01, x.name
    finally:
        a.disconnect()
        b.disconnect()


def test_open_drawer_skill_opens_it() -> None:
    arm = _connected("mujoco", scene="drawer", seed=0)
    try:
        cab = next(o for o in arm.scene_objects() if o.category == "cabinet")
        assert cab.state["drawer_open"] < 0.01
        out = _run_skill(arm, "open_drawer", {"object": "drawer"})
        assert out.ok, out.message
        cab = next(o for o in arm.scene_objects() if o.category == "cabinet")
        assert cab.state["drawer_open"] >= 0.10
        assert np.isclose(arm.get_observation()["observation.environment_state"][-1], cab.state["drawer_open"], atol=1e-4)
    finally:
        arm.disconnect()


def test_cameras_shapes_dtypes_and_segmentation() -> None:
    arm = _connected("mujoco", scene="pick_place", seed=1, cameras=("front", "wrist"), camera=CameraConfig(96, 64))
    try:
        obs = arm.get_observation()
        for cam in ("front", "wrist"):
            rgb, depth, seg = (obs[f"observation.{k}.{cam}"] for k in ("images", "depth", "segmentation"))
            assert rgb.shape == (64, 96, 3) and rgb.dtype == np.uint8
            assert depth.shape == (64, 96) and depth.dtype == np.float32
            assert seg.shape == (64, 96) and seg.dtype == np.int32
            assert 0.0 < depth.min() and depth.max() <= arm.config.camera.far
        front = obs["observation.segmentation.front"]
        ids = set(np.unique(front).tolist())
        assert 1 in ids  # the robot
        assert {k + 2 for k in range(len(arm.scene_objects()))} <= ids  # every object is in view
        assert ids <= {0, 1} | {k + 2 for k in range(len(arm.scene_objects()))}
        # The table is nearer than the background at the top of the image, and objects are not background.
        assert obs["observation.depth.front"][-1].mean() < obs["observation.depth.front"][0].mean()
        assert obs["observation.images.front"][front >= 2].std() > 10  # coloured objects, not a blank image
    finally:
        arm.disconnect()


@pytest.mark.parametrize("eid", sim.ENV_IDS)
def test_check_env_passes_on_mujoco(eid: str) -> None:
    env = gym.make(eid, backend="mujoco")
    try:
        assert env.unwrapped.robot.backend == "mujoco"
        check_env(env.unwrapped, skip_render_check=True)
        _, info = env.reset(seed=0)
        assert info["is_success"] is False
    finally:
        env.close()


def test_check_env_with_cameras_and_render_on_mujoco() -> None:
    env = gym.make("corrigo/Stack-v0", backend="mujoco", cameras=("front", "wrist"), image_size=64, render_mode="rgb_array")
    try:
        check_env(env.unwrapped)
        obs, _ = env.reset(seed=1)
        assert obs["observation.images.wrist"].shape == (64, 64, 3)
        assert env.render().shape == (64, 64, 3)
    finally:
        env.close()


def test_send_action_clips_out_of_workspace(mj: SimArm) -> None:
    mj.reset(0)
    lim = mj.config.safety
    lo, hi = np.asarray(lim.workspace_min), np.asarray(lim.workspace_max)
    for _ in range(40):
        sent = mj.send_action({"ee.pos": np.array([2.0, -2.0, -1.0]), "ee.quat_xyzw": down_quat(0.0), "gripper": 0.0})
        assert np.all(sent["ee.pos"] >= lo - 1e-9) and np.all(sent["ee.pos"] <= hi + 1e-9)
    assert any("workspace" in r for r in mj.last_clip_reasons)
    pos = mj.get_observation()["observation.state"][:3]
    assert np.all(pos >= lo - 0.01) and np.all(pos <= hi + 0.01)


def test_nan_action_holds(mj: SimArm) -> None:
    mj.reset(0)
    before = mj.get_observation()["observation.state"][:3].copy()
    for _ in range(10):
        sent = mj.send_action({"ee.pos": np.array([np.nan, 0.3, 0.2]), "ee.quat_xyzw": down_quat(0.0), "gripper": 0.0})
        assert np.all(np.isfinite(sent["ee.pos"]))
    assert any("non-finite" in r for r in mj.last_clip_reasons)
    after = mj.get_observation()["observation.state"][:3]
    assert np.linalg.norm(after - before) < 0.003


def test_reset_is_deterministic(mj: SimArm) -> None:
    def episode() -> np.ndarray:
        mj.reset(4)
        for k in range(15):
            mj.send_action({"ee.pos": np.array([0.4 + 0.01 * k, 0.05, 0.2]), "ee.quat_xyzw": down_quat(0.3), "gripper": 1.0})
        return mj.get_observation()["observation.environment_state"].copy()

    assert np.array_equal(episode(), episode())
