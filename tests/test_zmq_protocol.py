"""The wire format on its own: encoding, decoding and request validation (no sockets)."""
from __future__ import annotations

import math
from pathlib import Path

import msgpack
import numpy as np
import pytest

pytest.importorskip("zmq")

from hw_drivers import protocol as P  # noqa: E402
from hw_drivers.protocol import Err, ProtocolError  # noqa: E402
from robot.types import ARM_ACTION_FEATURES  # noqa: E402

GOOD_ACTION = {"ee.pos": [0.5, 0.0, 0.2], "ee.quat_xyzw": [1.0, 0.0, 0.0, 0.0], "gripper": 0.5}


def _req(**fields):
    return msgpack.packb({"v": 1, "id": 7, **fields})


def test_observation_roundtrip_raw_keeps_dtypes_and_shapes():
    rng = np.random.default_rng(0)
    obs = {
        "observation.state": rng.random(15).astype(np.float32),
        "observation.images.front": rng.integers(0, 255, (128, 128, 3), dtype=np.uint8),
        "observation.depth.front": rng.random((128, 128)).astype(np.float32),
        "observation.segmentation.front": rng.integers(0, 9, (128, 128)).astype(np.int32),
        "note": "hello",
    }
    specs, frames = P.encode_observation(obs)
    assert "data" in specs["observation.state"]  # small vectors inline as lists
    assert len(frames) == 3 and len(frames[0]) == 128 * 128 * 3  # images raw, not inflated in msgpack
    header = P.pack({"obs": specs})
    assert len(header) < 2000
    back = P.decode_observation(P.unpack(header)["obs"], frames)
    for k, v in obs.items():
        if k == "note":
            assert back[k] == v
        else:
            assert back[k].dtype == v.dtype and back[k].shape == v.shape
            np.testing.assert_array_equal(back[k], v)
    back["observation.images.front"][0, 0, 0] = 1  # decoded arrays are writable copies


def test_observation_roundtrip_jpeg_is_close():
    y, x = np.mgrid[0:64, 0:64]
    img = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    specs, frames = P.encode_observation({"observation.images.wrist": img}, image_encoding="jpeg")
    assert specs["observation.images.wrist"]["encoding"] == "jpeg" and len(frames[0]) < img.nbytes / 4
    back = P.decode_observation(specs, frames)["observation.images.wrist"]
    assert back.shape == img.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - img).mean() < 4


@pytest.mark.parametrize("spec,frames", [
    ({"a": {"dtype": "float32", "shape": [4], "encoding": "raw", "frame": 0}}, [b"\0" * 15]),
    ({"a": {"dtype": "object", "shape": [1], "data": [1]}}, []),
    ({"a": {"dtype": "uint8", "shape": [2], "encoding": "raw", "frame": 3}}, [b"\0\0"]),
    ({"a": {"dtype": "uint8", "shape": [-1], "data": []}}, []),
    ({"a": {"dtype": "uint8", "shape": [2], "encoding": "zip", "frame": 0}}, [b"\0\0"]),
])
def test_decoder_rejects_inconsistent_specs(spec, frames):
    with pytest.raises(ValueError):
        P.decode_observation(spec, frames)


def test_valid_request_parses():
    r = P.parse_request(P.request(3, "send_action", {"action": GOOD_ACTION}))
    assert (r.id, r.cmd) == (3, "send_action")
    a = P.validate_action(r.args["action"], ARM_ACTION_FEATURES)
    assert a["ee.pos"].shape == (3,) and isinstance(a["gripper"], float)
    assert P.validate_action({**GOOD_ACTION, "gripper": [0.5]}, ARM_ACTION_FEATURES)["gripper"] == 0.5


@pytest.mark.parametrize("data,code", [
    (b"", Err.BAD_REQUEST),
    (b"\xc1", Err.BAD_REQUEST),  # never-used msgpack byte
    (msgpack.packb([1, 2]), Err.BAD_REQUEST),
    (msgpack.packb({"id": 1, "cmd": "ping"}), Err.BAD_REQUEST),  # no version
    (_req(cmd="ping", v=2), Err.UNSUPPORTED_VERSION),
    (_req(cmd="fly"), Err.UNKNOWN_COMMAND),
    (_req(cmd="ping", extra=1), Err.BAD_REQUEST),
    (_req(cmd="ping", args={"x": 1}), Err.BAD_REQUEST),
    (_req(cmd="ping", args=[1]), Err.BAD_REQUEST),
    (_req(cmd="hello", args={"role": "god"}), Err.BAD_REQUEST),
    (_req(cmd="hello", args={"takeover": "yes"}), Err.BAD_REQUEST),
    (_req(cmd="reset", args={"seed": -1}), Err.BAD_REQUEST),
    (_req(cmd="reset", args={"seed": 1.5}), Err.BAD_REQUEST),
    (_req(cmd="send_action"), Err.BAD_REQUEST),
    (_req(cmd="ping", args={"s": "x" * 2000}), Err.BAD_REQUEST),  # strings > 1 KB
    (msgpack.packb({"v": 1, "id": 1, "cmd": "ping", "t": msgpack.Timestamp(1, 0)}), Err.BAD_REQUEST),
    (b"\x91" * 5000, Err.BAD_REQUEST),  # deeply nested
    (_req(cmd="ping")[:-2], Err.BAD_REQUEST),  # truncated
    (b"\x80" * 10, Err.BAD_REQUEST),  # trailing data
])
def test_bad_requests_get_a_code(data, code):
    with pytest.raises(ProtocolError) as e:
        P.parse_request(data)
    assert e.value.code == code


def test_request_id_is_echoed_when_readable():
    with pytest.raises(ProtocolError) as e:
        P.parse_request(_req(cmd="fly"))
    assert e.value.req_id == 7


@pytest.mark.parametrize("action", [
    {**GOOD_ACTION, "ee.pos": [0.5, 0.0]},
    {**GOOD_ACTION, "ee.pos": [0.5, 0.0, 0.2, 0.1]},
    {**GOOD_ACTION, "ee.pos": [0.5, math.nan, 0.2]},
    {**GOOD_ACTION, "ee.pos": [0.5, math.inf, 0.2]},
    {**GOOD_ACTION, "ee.quat_xyzw": [0.0, 0.0, 0.0, 0.0]},
    {**GOOD_ACTION, "ee.quat_xyzw": [1, 0, 0]},
    {**GOOD_ACTION, "gripper": math.nan},
    {**GOOD_ACTION, "gripper": [0.1, 0.2]},
    {**GOOD_ACTION, "gripper": True},
    {**GOOD_ACTION, "gripper": "open"},
    {**GOOD_ACTION, "ee.pos": [[0.5], [0.0], [0.2]]},
    {**GOOD_ACTION, "ee.pos": "0.5,0,0.2"},
    {**GOOD_ACTION, "speed": 1.0},
    {k: v for k, v in GOOD_ACTION.items() if k != "gripper"},
    [0.5, 0.0, 0.2],
])
def test_bad_actions_rejected(action):
    with pytest.raises(ProtocolError) as e:
        P.validate_action(action, ARM_ACTION_FEATURES)
    assert e.value.code == Err.BAD_REQUEST


def test_no_pickle_in_the_network_stack():
    root = Path(P.__file__).parent
    for f in root.rglob("*.py"):
        text = f.read_text()
        assert "import pickle" not in text and "pickle.loads" not in text, f
