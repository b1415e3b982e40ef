"""[wire-v2] "no lease trap": a controller that says nothing for longer than the lease after its
hello (loading models, say) keeps control; the keep-alive is pings, which never defeat the
watchdog; `corrigo serve --lease S` sets the lease. Real server, real sockets on loopback."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zmq")

from hw_drivers.client import ZmqRobot  # noqa: E402
from hw_drivers.mock import MockArm  # noqa: E402
from hw_drivers.testing import free_port_pair, serving  # noqa: E402
from robot.geometry import down_quat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _action(pos) -> dict:
    return {"ee.pos": np.asarray(pos, float), "ee.quat_xyzw": down_quat(0.0), "gripper": 0.0}


def test_a_controller_silent_for_longer_than_the_lease_keeps_control() -> None:
    arm = MockArm(control_hz=50.0)
    with serving(arm, lease_s=1.0) as (_, port):
        r = ZmqRobot("127.0.0.1", port, client_name="slow starter")
        r.connect()
        try:
            assert r.role == "control"
            time.sleep(3.0)  # three leases of silence from the caller, as while models load
            pos = np.asarray(r.get_observation()["observation.state"][:3], float)
            sent = r.send_action(_action(pos + [0.0, 0.01, 0.0]))  # was: "not the controller: ... lease expired"
            assert np.asarray(sent["ee.pos"]).shape == (3,) and r.role == "control"
            assert r.reacquired == 0  # the keep-alive held the lease; nothing lapsed
        finally:
            r.disconnect()
        # disconnect stops the pinger: the lease is released at once and no thread is left behind
        assert not any(t.name == "corrigo-zmq-keepalive" and t.is_alive() for t in threading.enumerate())


def test_control_lapsed_while_silent_is_taken_back_when_nobody_else_took_it() -> None:
    """Without the keep-alive (a caller that held the GIL for seconds, say), the lease lapses; the
    next command hellos again and goes through, once."""
    arm = MockArm(control_hz=50.0)
    with serving(arm, lease_s=0.3) as (_, port):
        r = ZmqRobot("127.0.0.1", port)
        r.connect()
        try:
            r._stop_keep_alive()  # as if it could not run
            time.sleep(1.0)
            pos = np.asarray(r.get_observation()["observation.state"][:3], float)
            r.send_action(_action(pos))
            assert r.reacquired == 1 and r.role == "control"
        finally:
            r.disconnect()


def test_control_taken_by_another_client_while_silent_is_said_in_one_line() -> None:
    from hw_drivers.client import NotControllerError

    arm = MockArm(control_hz=50.0)
    with serving(arm, lease_s=0.3) as (_, port):
        r = ZmqRobot("127.0.0.1", port, client_name="first")
        r.connect()
        other = ZmqRobot("127.0.0.1", port, client_name="second")
        try:
            r._stop_keep_alive()
            time.sleep(1.0)
            other.connect()  # the lease lapsed: the second client gets control without a takeover
            assert other.role == "control"
            pos = np.asarray(r.get_observation()["observation.state"][:3], float)
            with pytest.raises(NotControllerError, match="another client took control while this one was silent") as e:
                r.send_action(_action(pos))
            assert "\n" not in str(e.value) and r.reacquired == 0
            other.send_action(_action(pos))  # the new controller is undisturbed
        finally:
            other.disconnect()
            r.disconnect()


def test_the_keep_alive_does_not_defeat_the_watchdog() -> None:
    """Pings renew the lease, never the command: an idle controller's arm is held."""
    arm = MockArm(control_hz=50.0)
    with serving(arm, lease_s=1.0, watchdog_s=0.1) as (_, port):
        r = ZmqRobot("127.0.0.1", port)
        r.connect()
        try:
            pos = np.asarray(r.get_observation()["observation.state"][:3], float)
            r.send_action(_action(pos + [0.0, 0.10, 0.0]))  # far: re-applied each tick until the watchdog
            time.sleep(1.5)
            a = np.asarray(r.get_observation()["observation.state"][:3], float)
            time.sleep(0.5)
            b = np.asarray(r.get_observation()["observation.state"][:3], float)
            assert np.linalg.norm(b - a) < 1e-6  # held, though the client kept talking
            assert r.role == "control"
        finally:
            r.disconnect()


def test_the_default_run_path_over_the_wire_succeeds(tmp_path: Path) -> None:
    """`corrigo run --robot zmq://...` with the default knowledge base (models load between hello and
    the first command, for longer than the lease) against `corrigo serve` with its defaults."""
    port = free_port_pair()
    env = {k: v for k, v in os.environ.items() if k != "CORRIGO_KB"}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "agent.cli", "serve", "--robot", "sim:pybullet", "--bind",
                               f"tcp://127.0.0.1:{port}", "--lease", "0.5"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, env=env)
    try:
        from hw_drivers.testing import wait_for_line

        wait_for_line(server, f"on tcp://127.0.0.1:{port}", 90)
        run = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--task", "put the red block in the blue bowl",
                              "--robot", f"zmq://127.0.0.1:{port}", "--max-time", "60"],
                             cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240, env=env)
        print(run.stdout[-2000:], run.stderr[-2000:])
        assert run.returncode == 0 and "succeeded" in run.stdout, run.stdout + run.stderr
        assert "not the controller" not in run.stdout + run.stderr
        assert (tmp_path / "data" / "corrigo" / "kb.sqlite").exists()  # the default knowledge base was used
    finally:
        server.terminate()
        server.communicate(timeout=30)
