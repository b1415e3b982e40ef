"""The Robot contract (LeRobot's names) on every body: PyBullet, MuJoCo, the `mock:arm` fake, and a
`zmq://` client against a real robot server on loopback.

tests/test_robot_contract.py goes deeper into the PyBullet arm; this file holds every body to
the same promises.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator

import numpy as np
import pytest

from hw_drivers.mock import MockArm
from hw_drivers.testing import serving
from robot import ActionError, CorrigoError, NotConnectedError, Robot, SafetyLimits
from robot.geometry import down_quat
from robot.registry import make_robot
from sim import CameraConfig, make_sim_arm

ACTION_KEYS = {"ee.pos": (3,), "ee.quat_xyzw": (4,), "gripper": (1,)}
OUTSIDE = [2.0, -3.0, -1.0]  # far outside every workspace box
# the server enforces tighter limits than the body it serves: the client gets the server's
SERVER_LIMITS = SafetyLimits(workspace_min=(0.3, -0.2, 0.1), workspace_max=(0.6, 0.2, 0.5))


@dataclass
class Body:
    robot: Robot
    limits: SafetyLimits
    settle_m: float  # how far the arm may drift while holding (physics settles, a fake does not move)
    refuses_nan: bool = False  # the wire protocol refuses non-finite numbers instead of holding
    # The ZMQ server re-applies the last command on each of its ticks until the next one comes
    # (whether it should is [wire-v2]'s question): between reading the pose and the next command
    # the arm may have taken that many more steps. 0: the body moves only when commanded.
    reapply_hz: float = 0.0


@contextlib.contextmanager
def _sim(backend: str) -> Iterator[Body]:
    arm = make_sim_arm(backend, scene="pick_place", seed=0, cameras=("front",), camera=CameraConfig(32, 32))
    yield Body(arm, arm.config.safety, settle_m=0.005)


@contextlib.contextmanager
def _mock() -> Iterator[Body]:
    arm = make_robot("mock:arm?hz=100&cameras=front&size=32")
    assert isinstance(arm, MockArm)
    yield Body(arm, arm.safety, settle_m=1e-9)


@contextlib.contextmanager
def _zmq() -> Iterator[Body]:
    with serving(MockArm(control_hz=100.0, cameras=("front",), image_size=32), safety=SERVER_LIMITS) as (_, port):
        yield Body(make_robot(f"zmq://127.0.0.1:{port}?timeout=2"), SERVER_LIMITS, settle_m=1e-9, refuses_nan=True,
                   reapply_hz=100.0)


BODIES: dict[str, Callable[[], ContextManager[Body]]] = {
    "pybullet": lambda: _sim("pybullet"), "mujoco": lambda: _sim("mujoco"), "mock": _mock, "zmq": _zmq}


@pytest.fixture(params=[pytest.param("pybullet"), pytest.param("mujoco", marks=pytest.mark.mujoco), "mock", "zmq"])
def body(request: pytest.FixtureRequest) -> Iterator[Body]:
    with BODIES[request.param]() as b:
        try:
            yield b
        finally:
            if b.robot.is_connected:
                b.robot.disconnect()


@pytest.fixture
def arm(body: Body) -> Body:
    body.robot.connect()
    return body


def act(pos: Any, g: float = 0.0) -> dict[str, Any]:
    return {"ee.pos": np.asarray(pos, float), "ee.quat_xyzw": down_quat(0.0), "gripper": g}


def ee(robot: Robot) -> np.ndarray:
    return np.asarray(robot.get_observation()["observation.state"][:3], float)


def assert_is_action(sent: dict[str, Any]) -> None:
    assert set(sent) == set(ACTION_KEYS)
    for key, shape in ACTION_KEYS.items():
        value = np.asarray(sent[key], float)
        assert value.size == shape[0] and np.all(np.isfinite(value)), (key, sent[key])


def assert_in_box(pos: np.ndarray, limits: SafetyLimits, tol: float) -> None:
    assert np.all(pos >= np.asarray(limits.workspace_min) - tol), pos
    assert np.all(pos <= np.asarray(limits.workspace_max) + tol), pos


# ----- the contract -----
def test_features_are_valid_before_connect(body: Body) -> None:
    r = body.robot
    assert not r.is_connected
    obs_f, act_f = r.observation_features, r.action_features
    assert obs_f["observation.state"].shape[0] >= 8
    assert obs_f["observation.state"].names[:3] == ("ee.x", "ee.y", "ee.z")
    assert obs_f["observation.images.front"].shape == (32, 32, 3) and obs_f["observation.images.front"].dtype == "uint8"
    for key, f in obs_f.items():
        assert key.startswith("observation.") and all(int(n) > 0 for n in f.shape), (key, f)
        np.dtype(f.dtype)  # a real numpy dtype name
    assert {k: f.shape for k, f in act_f.items()} == ACTION_KEYS


def test_calls_before_connect_raise_not_connected(body: Body) -> None:
    r = body.robot
    for call in (r.get_observation, r.hold, lambda: r.send_action(act([0.45, 0.0, 0.3]))):
        with pytest.raises(NotConnectedError):
            call()


def test_connect_disconnect_and_context_manager(body: Body) -> None:
    r = body.robot
    r.connect()
    assert r.is_connected and r.get_observation()
    r.disconnect()
    assert not r.is_connected
    with pytest.raises(NotConnectedError):
        r.get_observation()
    with r as entered:
        assert entered is r and r.is_connected
        assert r.get_observation()["observation.state"].shape == r.observation_features["observation.state"].shape
    assert not r.is_connected


def test_observation_has_every_feature_with_its_shape_and_dtype(arm: Body) -> None:
    obs = arm.robot.get_observation()
    for key, f in arm.robot.observation_features.items():
        assert key in obs, key
        value = np.asarray(obs[key])
        assert value.shape == tuple(f.shape) and value.dtype == np.dtype(f.dtype), (key, value.shape, value.dtype, f)


def test_out_of_workspace_action_is_clipped_and_the_sent_action_returned(arm: Body) -> None:
    r, lim = arm.robot, arm.limits
    t_prev = time.monotonic()
    start = prev = ee(r)
    for _ in range(40):
        sent = r.send_action(act(OUTSIDE))
        assert_is_action(sent)
        p = np.asarray(sent["ee.pos"], float)
        assert_in_box(p, lim, 1e-6)
        extra_ticks = math.ceil((time.monotonic() - t_prev) * arm.reapply_hz)  # steps taken unseen
        # from where the arm is, limited per tick
        assert np.linalg.norm(p - prev) <= lim.max_ee_step_m * (1 + extra_ticks) + 0.01
        t_prev = time.monotonic()
        prev = ee(r)
    assert_in_box(ee(r), lim, 0.01)
    corner = np.clip(OUTSIDE, lim.workspace_min, lim.workspace_max)
    assert np.all((ee(r) - start) * np.sign(corner - start) > 0.01)  # it did move, towards the allowed corner


def test_a_nan_component_holds(arm: Body) -> None:
    r = arm.robot
    r.hold()
    before = ee(r)
    bad = {"ee.pos": [math.nan, 0.4, 0.3], "ee.quat_xyzw": down_quat(0.0), "gripper": 0.0}
    if arm.refuses_nan:  # over the network: refused (protocol BAD_REQUEST), never applied
        with pytest.raises(ActionError):
            r.send_action(bad)
    else:
        sent = r.send_action(bad)
        assert_is_action(sent)
        assert np.allclose(sent["ee.pos"], before, atol=1e-6)
    r.hold()
    assert np.linalg.norm(ee(r) - before) <= arm.settle_m


def test_hold_returns_an_action_and_the_arm_stays_put(arm: Body) -> None:
    r = arm.robot
    for _ in range(10):
        r.send_action(act([0.45, 0.1, 0.25]))
    first = r.hold()
    assert_is_action(first)
    for _ in range(20):
        again = r.hold()
        assert_is_action(again)
        assert np.allclose(again["ee.pos"], first["ee.pos"], atol=1e-6)
    assert np.linalg.norm(ee(r) - np.asarray(first["ee.pos"], float)) <= max(arm.settle_m, 0.003)


@pytest.mark.parametrize("malformed", [{"ee.pos": [0.4, 0.0, 0.3]},
                                       {"ee.pos": [0.4, 0.0], "ee.quat_xyzw": [0, 0, 0, 1], "gripper": 0.0}],
                         ids=["missing-keys", "wrong-shape"])
def test_a_malformed_action_is_an_action_error_and_does_not_move_the_arm(arm: Body, malformed: dict[str, Any]) -> None:
    r = arm.robot
    r.hold()
    before = ee(r)
    with pytest.raises(ActionError) as e:
        r.send_action(malformed)
    assert isinstance(e.value, CorrigoError) and "\n" not in str(e.value)
    r.hold()
    assert np.linalg.norm(ee(r) - before) <= arm.settle_m
