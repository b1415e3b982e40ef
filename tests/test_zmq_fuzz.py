"""Fuzzing the robot server: malformed, truncated, oversized, wrong-typed and NaN-filled
messages get error replies; the server keeps serving and never sends an unsafe action."""
from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

zmq = pytest.importorskip("zmq")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hw_drivers import protocol as P  # noqa: E402
from hw_drivers.server import RobotServer, ServerConfig  # noqa: E402
from hw_drivers.testing import RecordingRobot  # noqa: E402
from robot.safety import SafetyLimits  # noqa: E402

LIMITS = SafetyLimits()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None, derandomize=True)


@pytest.fixture(scope="module")
def served():
    from sim import make_sim_arm

    arm = RecordingRobot(make_sim_arm("pybullet", scene="tabletop", seed=0, control_hz=60.0))
    server = RobotServer(arm, ServerConfig(bind="tcp://127.0.0.1:*", safety=LIMITS))
    server.start()
    port = int(server.endpoint.rsplit(":", 1)[1])
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    yield server, arm, sock
    sock.close(0)
    ctx.term()
    server.close()
    check_sent_actions(arm)


def check_sent_actions(arm: RecordingRobot) -> None:
    lo, hi = np.array(LIMITS.workspace_min) - 1e-9, np.array(LIMITS.workspace_max) + 1e-9
    for a in arm.sent:
        pos, quat, g = np.asarray(a["ee.pos"]), np.asarray(a["ee.quat_xyzw"]), float(a["gripper"])
        assert np.all(np.isfinite(pos)) and np.all(np.isfinite(quat)) and math.isfinite(g)
        assert np.all(pos >= lo) and np.all(pos <= hi), pos
        assert abs(np.linalg.norm(quat) - 1.0) < 1e-6
        assert 0.0 <= g <= 1.0


_ids = iter(range(1, 10**9))


def call(sock, frames: list[bytes], timeout_s: float = 3.0) -> dict:
    sock.send_multipart(frames)
    assert sock.poll(int(timeout_s * 1000)), "the server did not answer"
    reply = sock.recv_multipart()
    if frames and frames[0] == b"" and reply[0] == b"":  # a leading empty frame is a REQ delimiter; echoed
        reply = reply[1:]
    header = P.unpack(reply[0], max_bytes=64 << 20)
    assert isinstance(header, dict) and header["v"] == P.PROTOCOL_VERSION and isinstance(header["ok"], bool)
    if not header["ok"]:
        assert header["error"]["code"] in P.Err.ALL
    return header


def still_serving(sock) -> None:
    rid = next(_ids)
    rep = call(sock, [P.request(rid, "hello", {"role": "control"})])
    assert rep["ok"] and rep["id"] == rid and rep["result"]["role"] == "control"


def fuzz_send(served, frames: list[bytes]) -> dict:
    server, arm, sock = served
    still_serving(sock)  # be the controller, so actions reach validation and the control thread
    rep = call(sock, frames)
    still_serving(sock)
    assert not server.stopped
    check_sent_actions(arm)
    return rep


# ----- strategies -----
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), floats,
                    st.text(max_size=30), st.binary(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                      max_leaves=20)
vec = lambda n: st.lists(floats, min_size=n, max_size=n)  # noqa: E731
action_values = st.fixed_dictionaries(
    {"ee.pos": st.one_of(vec(3), values), "ee.quat_xyzw": st.one_of(vec(4), values), "gripper": st.one_of(floats, values)},
    optional={"extra": values},
)
commands = st.one_of(st.sampled_from([c for c in P.COMMANDS if c != "stop"]), st.text(max_size=20)).filter(lambda c: c != "stop")
requests = st.fixed_dictionaries(
    {"v": st.one_of(st.just(1), values), "cmd": commands},
    optional={"id": st.one_of(st.integers(-2**63, 2**64 - 1), st.text(max_size=80)),  # what msgpack can carry
              "args": st.one_of(values, st.fixed_dictionaries({"action": action_values}))},
)


def packed(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes(served, data):
    fuzz_send(served, [data])


@FUZZ
@given(req=requests)
def test_wrong_typed_requests(served, req):
    fuzz_send(served, [packed(req)])


@FUZZ
@given(action=action_values)
def test_nan_filled_and_wrong_shaped_actions(served, action):
    rep = fuzz_send(served, [packed({"v": 1, "id": 1, "cmd": "send_action", "args": {"action": action}})])
    if rep["ok"]:  # only finite, well-shaped actions are accepted, and the reply is what was applied
        assert all(math.isfinite(x) for x in action["ee.pos"] + action["ee.quat_xyzw"] + [action["gripper"]])


@FUZZ
@given(pos=st.lists(st.floats(-1e300, 1e300), min_size=3, max_size=3),
       quat=st.lists(st.floats(-10, 10), min_size=4, max_size=4), g=st.floats(-1e9, 1e9))
def test_extreme_but_finite_actions_are_clipped(served, pos, quat, g):
    rep = fuzz_send(served, [packed({"v": 1, "id": 1, "cmd": "send_action",
                                     "args": {"action": {"ee.pos": pos, "ee.quat_xyzw": quat, "gripper": g}}})])
    if rep["ok"]:
        applied = np.asarray(rep["result"]["action"]["ee.pos"])
        assert np.all(applied >= np.array(LIMITS.workspace_min) - 1e-9)
        assert np.all(applied <= np.array(LIMITS.workspace_max) + 1e-9)


@FUZZ
@given(req=requests, cut=st.integers(0, 400))
def test_truncated_requests(served, req, cut):
    data = packed(req)
    fuzz_send(served, [data[: min(cut, max(len(data) - 1, 0))]])


@FUZZ
@given(frames=st.lists(st.binary(max_size=200), min_size=0, max_size=5))
def test_odd_frame_counts(served, frames):
    fuzz_send(served, frames or [b""])


def test_oversized_messages_get_bad_request(served):
    for size in (P.MAX_MESSAGE_BYTES + 1, 3 * P.MAX_MESSAGE_BYTES):
        big = packed({"v": 1, "id": 9, "cmd": "ping", "args": {"blob": b"\0" * size}})
        rep = fuzz_send(served, [big])
        assert rep["error"]["code"] == "BAD_REQUEST" and "exceeds" in rep["error"]["message"]
    rep = fuzz_send(served, [P.request(10, "ping", {"s": "x" * 5000})])
    assert rep["error"]["code"] == "BAD_REQUEST"


def test_the_arm_moved_safely_and_the_server_still_answers(served):
    server, arm, sock = served
    still_serving(sock)
    rep = call(sock, [P.request(11, "send_action", {"action": {"ee.pos": [0.5, 0.1, 0.3], "ee.quat_xyzw": [1, 0, 0, 0],
                                                               "gripper": 0.0}})])
    assert rep["ok"] and rep["result"]["applied"]
    print(f"fuzz: {server.stats['requests']} requests, {server.stats['errors']} error replies, "
          f"{len(arm.sent)} actions applied, all finite and inside the workspace")
    assert len(arm.sent) > 0 and server.stats["errors"] > 100
