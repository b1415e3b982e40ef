"""The robot server and the network client in one process, over real loopback sockets."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest

zmq = pytest.importorskip("zmq")

from hw_drivers import protocol as P  # noqa: E402
from hw_drivers.client import NotControllerError, ServerError, ZmqRobot, parse_spec  # noqa: E402
from hw_drivers.mock import MockArm  # noqa: E402
from hw_drivers.server import RobotServer, ServerConfig  # noqa: E402
from hw_drivers.testing import RecordingRobot, serving  # noqa: E402
from robot.errors import ActionError, CorrigoError, RobotError  # noqa: E402
from robot.registry import make_robot  # noqa: E402
from robot.robot import SceneProvider  # noqa: E402
from robot.safety import SafetyLimits  # noqa: E402

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def act(x=0.45, y=0.0, z=0.3, g=0.0):
    return {"ee.pos": np.array([x, y, z]), "ee.quat_xyzw": DOWN, "gripper": g}


@contextlib.contextmanager
def client(port, **kw):
    kw.setdefault("timeout_s", 2.0)
    r = ZmqRobot("127.0.0.1", port, **kw)
    try:
        r.connect()
        yield r
    finally:
        r.disconnect()


@contextlib.contextmanager
def raw_dealer(port):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    try:
        yield s
    finally:
        s.close(0)
        ctx.term()


def roundtrip(sock, frames, timeout_s=2.0):
    sock.send_multipart(frames if isinstance(frames, list) else [frames])
    assert sock.poll(int(timeout_s * 1000)), "no reply"
    out = sock.recv_multipart()
    return P.unpack(out[0]), out[1:]


def wait_until(pred, timeout_s=2.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def test_lockstep_paces_the_client_at_the_control_rate():
    arm = MockArm(control_hz=20.0)
    with serving(arm) as (_, port), client(port) as r:
        r.get_observation()
        ticks, t0 = [], time.perf_counter()
        for i in range(20):
            r.send_action(act(y=0.002 * i))
            ticks.append(r.last_reply["tick"])
            assert r.last_reply["applied"] is True
        elapsed = time.perf_counter() - t0
        print(f"20 lockstep commands took {elapsed:.3f} s at 20 Hz; ticks {ticks[0]}..{ticks[-1]}")
        assert 0.9 <= elapsed <= 1.4
        assert np.all(np.diff(ticks) >= 1) and ticks[-1] - ticks[0] <= 22  # one tick per command
        # the observation read after a reply already shows that tick's effect
        obs = r.get_observation()
        assert r.state["tick"] >= ticks[-1]
        assert obs["observation.state"][1] > 0.02
        assert r.control_dt == pytest.approx(0.05)


def test_reply_carries_the_action_the_server_clipped():
    # the server's limits are tighter than the body's: the client is not trusted
    arm = RecordingRobot(MockArm(control_hz=100.0, follow=1.0))
    limits = SafetyLimits(workspace_min=(0.3, -0.2, 0.1), workspace_max=(0.6, 0.2, 0.5), max_ee_step_m=0.01)
    with serving(arm, safety=limits) as (_, port), client(port) as r:
        sent = r.send_action(act(x=5.0, y=-3.0, z=-1.0))
        assert "step too large: limited" in r.last_reply["clipped"]
        start = np.array([0.45, 0.0, 0.3])
        assert np.linalg.norm(sent["ee.pos"] - start) <= 0.01 + 1e-9
        for _ in range(40):
            sent = r.send_action(act(x=5.0, y=-3.0, z=-1.0))
        np.testing.assert_allclose(sent["ee.pos"], [0.6, -0.2, 0.1], atol=1e-6)
        assert all(np.all(a["ee.pos"] >= np.array(limits.workspace_min) - 1e-9) for a in arm.sent)


def test_bad_actions_are_refused_and_never_move_the_arm():
    arm = RecordingRobot(MockArm(control_hz=50.0))
    with serving(arm) as (_, port), client(port) as r:
        for bad in ({"ee.pos": [0.5, float("nan"), 0.2], "ee.quat_xyzw": DOWN, "gripper": 0.0},
                    {"ee.pos": [0.5, 0.0], "ee.quat_xyzw": DOWN, "gripper": 0.0},
                    {"ee.pos": [0.5, 0.0, 0.2], "ee.quat_xyzw": DOWN, "gripper": float("inf")}):
            with pytest.raises(ActionError, match="rejected the action"):
                r.send_action(bad)
        assert arm.sent == []
        r.send_action(act())  # the connection is still fine
        assert len(arm.sent) == 1


def test_one_controller_many_observers_takeover_and_release():
    with serving(MockArm(control_hz=50.0)) as (_, port), client(port, client_name="A") as a:
        assert a.role == "control"
        with client(port, role="observe") as obs:
            assert obs.role == "observe"
            obs.get_observation()
            assert obs.observation_features
            assert obs.ping()["tick"] >= 0
            for call in (lambda: obs.send_action(act()), obs.hold):
                with pytest.raises(NotControllerError):
                    call()
        with pytest.raises(RobotError, match="controlled by another client"):
            with client(port, client_name="B"):
                pass
        a.send_action(act())
        with client(port, takeover=True, client_name="C") as c:
            assert c.role == "control"
            c.send_action(act(y=0.01))
            with pytest.raises(NotControllerError, match="no longer holds control"):
                a.send_action(act())
            c.release()
            b = ZmqRobot("127.0.0.1", port)
            b.connect()  # control is free again
            assert b.role == "control"
            b.disconnect()  # disconnect releases too
        with client(port) as d:
            assert d.role == "control"


def test_control_lease_expires_after_silence():
    with serving(MockArm(control_hz=50.0), lease_s=0.3) as (_, port), client(port) as a:
        a.send_action(act())
        a._stop_keep_alive()  # a client that truly went silent (corrigo's own keeps its lease while idle)
        time.sleep(0.5)
        with client(port) as b:
            assert b.role == "control"
            with pytest.raises(NotControllerError, match="another client took control"):
                a.send_action(act())
        a.send_action(act())  # b has let go: control lapsed, nobody holds it, a takes it back
        assert a.reacquired == 1


def test_watchdog_holds_when_commands_stop_and_resumes():
    arm = RecordingRobot(MockArm(control_hz=20.0))
    with serving(arm, watchdog_s=0.25) as (_, port), client(port) as r:
        for _ in range(5):
            r.send_action(act(y=0.05))
        assert r.state["watchdog"] == "ok"
        t_last = time.perf_counter()
        holds_before = arm.holds
        assert wait_until(lambda: r.state["watchdog"] == "holding", 1.0)
        dt = time.perf_counter() - t_last
        print(f"in-process watchdog: holding {dt * 1000:.0f} ms after the last command")
        assert dt <= 0.25 + 0.05 + 0.1
        assert "watchdog" in r.state["hold_reason"]
        assert arm.holds > holds_before
        r.send_action(act(y=0.05))
        assert r.state["watchdog"] == "ok"


def test_server_holds_without_a_controller():
    arm = RecordingRobot(MockArm(control_hz=50.0))
    with serving(arm) as (_, port), client(port, role="observe") as r:
        assert wait_until(lambda: arm.holds > 5)
        assert arm.sent == []
        assert r.state["watchdog"] == "holding" and r.state["hold_reason"] == "no controller"


def test_stop_holds_and_ends_the_server():
    arm = RecordingRobot(MockArm(control_hz=50.0))
    with serving(arm) as (server, port):
        with client(port) as r:
            r.send_action(act(y=0.02))
            holds = arm.holds
            res = r.stop_server()
            assert res["stopped"] is True and res["action"]["ee.pos"]
            assert server.wait(5)
        assert arm.holds > holds and not arm.is_connected


def test_errors_for_protocol_misuse_over_a_raw_socket():
    with serving(MockArm(control_hz=50.0)) as (_, port), raw_dealer(port) as s:
        rep, _ = roundtrip(s, P.pack({"v": 9, "id": 1, "cmd": "ping"}))
        assert (rep["ok"], rep["error"]["code"], rep["id"]) == (False, "UNSUPPORTED_VERSION", 1)
        rep, _ = roundtrip(s, P.request(2, "teleport"))
        assert rep["error"]["code"] == "UNKNOWN_COMMAND"
        rep, _ = roundtrip(s, b"\xc1\xc1")
        assert rep["error"]["code"] == "BAD_REQUEST" and rep["id"] is None
        rep, _ = roundtrip(s, [P.request(3, "ping"), b"extra"])
        assert rep["error"]["code"] == "BAD_REQUEST"
        rep, _ = roundtrip(s, P.request(4, "ping") + b"\0" * (P.MAX_MESSAGE_BYTES + 10))
        assert rep["error"]["code"] == "BAD_REQUEST" and "exceeds" in rep["error"]["message"]
        rep, _ = roundtrip(s, P.request(5, "send_action", {"action": {}}))
        assert rep["error"]["code"] == "NOT_CONTROLLER"
        rep, _ = roundtrip(s, P.request(6, "scene"))
        assert rep["error"]["code"] == "NOT_SUPPORTED"
        rep, frames = roundtrip(s, P.request(7, "get_observation"))
        assert rep["ok"] and "observation.state" in rep["result"]["obs"]
        rep, _ = roundtrip(s, P.request("eight", "ping"))
        assert rep["ok"] and rep["id"] == "eight"


def test_a_plain_req_socket_works_too():
    with serving(MockArm(control_hz=50.0)) as (_, port):
        ctx = zmq.Context()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"tcp://127.0.0.1:{port}")
        s.send(P.request(1, "hello", {"role": "control"}))
        assert s.poll(2000)
        assert P.unpack(s.recv())["result"]["role"] == "control"
        s.send(P.request(2, "send_action", {"action": P.encode_action(act())}))
        assert s.poll(2000)
        rep = P.unpack(s.recv())
        assert rep["ok"] and rep["result"]["applied"]
        s.close(0)
        ctx.term()


def test_client_errors_are_clear():
    r = ZmqRobot("127.0.0.1", 1, timeout_s=0.5)  # nothing listens on port 1
    with pytest.raises(RobotError, match=r"no reply from zmq://127.0.0.1:1 within 0.5 s \(is `corrigo serve` running\?"):
        r.connect()
    with pytest.raises(RobotError, match="no reply"):
        _ = r.observation_features  # features before connect ask the server lazily
    with pytest.raises(RobotError, match="not connected"):
        r.get_observation()
    r.disconnect()


def test_late_replies_are_discarded():
    # stream mode answers at once; a reply for an abandoned request id must not be taken as ours
    with serving(MockArm(control_hz=50.0)) as (_, port), client(port) as r:
        dealer = r._open_dealer()
        dealer.send(P.request(10_000, "ping"))  # an orphan request whose reply nobody waits for
        time.sleep(0.1)
        res = r.ping()
        assert "stats" in res


def test_features_before_connect_and_registry():
    arm = MockArm(control_hz=20.0, cameras=("front",))
    with serving(arm) as (_, port):
        r = make_robot(f"zmq://127.0.0.1:{port}", timeout_s=1.0)
        assert isinstance(r, ZmqRobot)
        feats = r.observation_features  # before connect
        assert feats["observation.images.front"].shape == (128, 128, 3)
        assert set(r.action_features) == {"ee.pos", "ee.quat_xyzw", "gripper"}
        with r:
            obs = r.get_observation()
            assert obs["observation.images.front"].dtype == np.uint8
            with pytest.raises(RobotError, match="cannot list scene objects"):
                r.scene_objects()
            with pytest.raises(RobotError, match="cannot reset"):
                r.reset(1)
    host, port, kw = parse_spec("zmq://10.0.0.2:6000?role=observe&timeout=0.5&takeover=1")
    assert (host, port, kw) == ("10.0.0.2", 6000, {"role": "observe", "timeout_s": 0.5, "takeover": True})
    with pytest.raises(RobotError, match="unknown option"):
        parse_spec("zmq://h:1?colour=red")
    with pytest.raises(RobotError, match="bad value 'soon' for option 'timeout'"):
        parse_spec("zmq://h:1?timeout=soon")


@pytest.mark.parametrize("encoding", ["raw", "jpeg"])
def test_camera_frames_arrive_as_hwc_uint8(encoding):
    arm = MockArm(control_hz=20.0, cameras=("front", "wrist"), image_size=64)
    with serving(arm, image_encoding=encoding) as (_, port), client(port, role="observe") as r:
        r.get_observation()
        time.sleep(0.15)
        obs = r.get_observation()
        for cam in ("front", "wrist"):
            img = obs[f"observation.images.{cam}"]
            assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.flags.writeable
        tick = int(round(r.state["t"] / arm.control_dt))
        expected = np.roll(arm._base, tick, axis=1)  # what the body rendered at that tick
        err = np.abs(obs["observation.images.front"].astype(int) - expected).mean()
        assert err == 0 if encoding == "raw" else err < 8


def test_served_simulator_scene_and_reset():
    from sim import make_sim_arm

    with serving(make_sim_arm("pybullet", scene="tabletop", seed=0)) as (_, port), client(port) as r:
        assert isinstance(r, SceneProvider)
        names = {o.name for o in r.scene_objects()}
        assert {"red_block", "blue_bowl"} <= names
        before = {o.name: o.position for o in r.scene_objects()}
        r.reset(3)
        after = {o.name: o.position for o in r.scene_objects()}
        assert any(not np.allclose(before[k], after[k]) for k in before if k in after)
        assert r.get_observation()["observation.state"].shape == (15,)


def _keys(tmp: Path, *names: str) -> None:
    import zmq.auth

    for n in names:
        zmq.auth.create_certificates(str(tmp), n)


def test_curve_allows_listed_clients_and_refuses_others(tmp_path):
    _keys(tmp_path, "server", "alice", "mallory", "watcher")
    server_key = tmp_path / "server.key"
    cfg = dict(curve_keys=str(tmp_path), allow=(str(tmp_path / "alice.key"),),
               allow_observe=(str(tmp_path / "watcher.key"),))
    with serving(MockArm(control_hz=50.0), **cfg) as (_, port):
        with client(port, curve_server_key=str(server_key), curve_client_keys=str(tmp_path / "alice.key_secret")) as a:
            assert a.role == "control"
            a.send_action(act())
            assert a.get_observation()["observation.state"].shape == (8,)
        mallory = ZmqRobot("127.0.0.1", port, timeout_s=0.6, curve_server_key=str(server_key),
                           curve_client_keys=str(tmp_path / "mallory.key_secret"))
        with pytest.raises(RobotError, match="not authorised or server unreachable"):
            mallory.connect()
        mallory.disconnect()
        plain = ZmqRobot("127.0.0.1", port, timeout_s=0.6)
        with pytest.raises(RobotError, match="no reply"):
            plain.connect()
        plain.disconnect()
        with pytest.raises(ServerError, match="may observe but not control") as e:
            with client(port, curve_server_key=str(server_key), curve_client_keys=str(tmp_path / "watcher.key_secret")):
                pass
        assert e.value.code == "UNAUTHORIZED"
        with client(port, role="observe", curve_server_key=str(server_key),
                    curve_client_keys=str(tmp_path / "watcher.key_secret")) as w:
            assert w.get_observation()


def test_server_config_is_validated(tmp_path):
    with pytest.raises(CorrigoError, match="--allow"):
        ServerConfig(curve_keys=str(tmp_path))
    with pytest.raises(CorrigoError, match="mode"):
        ServerConfig(mode="fast")
    with pytest.raises(CorrigoError, match="cannot bind"):
        RobotServer(MockArm(), ServerConfig(bind="tcp://256.0.0.1:1")).start()


def test_client_recovers_after_a_server_restart():
    """Transport reconnects by itself; control is not silently re-acquired on a new server."""
    from hw_drivers.testing import free_port_pair

    port = free_port_pair()
    bind = f"tcp://127.0.0.1:{port}"
    with serving(MockArm(control_hz=50.0), bind=bind):
        r = ZmqRobot("127.0.0.1", port, timeout_s=1.0)
        r.connect()
        r.send_action(act())
    with pytest.raises(RobotError, match="no reply"):
        r.ping()  # nobody is listening now
    with serving(MockArm(control_hz=50.0), bind=bind):
        assert "stats" in r.ping()  # same client object, new server: requests work again
        assert r.get_observation()["observation.state"].shape == (8,)
        with pytest.raises(NotControllerError):
            r.send_action(act())  # the new server never granted control to this client
        r.disconnect()
        r.connect()  # an explicit reconnect asks for control again
        assert r.role == "control"
        r.send_action(act())
        r.disconnect()
