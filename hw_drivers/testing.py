"""Helpers for tests and benchmarks of the network stack (not used in production paths)."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from typing import Any, Iterator

from robot.robot import Robot
from robot.types import Feature, SceneObject


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P such that P and P + 1 (the state channel) are both free right now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


@contextlib.contextmanager
def serving(robot: Robot, **config: Any) -> Iterator[tuple[Any, int]]:
    """A `RobotServer` for `robot` on a free loopback port: yields (server, port), closes it after."""
    from hw_drivers.server import RobotServer, ServerConfig

    config.setdefault("bind", "tcp://127.0.0.1:*")
    server = RobotServer(robot, ServerConfig(**config))
    server.start()
    try:
        yield server, int(server.endpoint.rsplit(":", 1)[1])
    finally:
        server.close()


class RecordingRobot(Robot):
    """Forwards everything to `inner`; records every action the server sent to the body."""

    def __init__(self, inner: Robot) -> None:
        self.inner = inner
        self.name = inner.name
        self.control_dt = inner.control_dt
        self.sent: list[dict[str, Any]] = []
        self.holds = 0
        self._lock = threading.Lock()

    @property
    def observation_features(self) -> dict[str, Feature]:
        return self.inner.observation_features

    @property
    def action_features(self) -> dict[str, Feature]:
        return self.inner.action_features

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    @property
    def time_s(self) -> float:
        return self.inner.time_s

    def connect(self) -> None:
        self.inner.connect()
        self.control_dt = self.inner.control_dt

    def disconnect(self) -> None:
        self.inner.disconnect()

    def get_observation(self) -> dict[str, Any]:
        return self.inner.get_observation()

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.sent.append({k: (v.copy() if hasattr(v, "copy") else v) for k, v in action.items()})
        return self.inner.send_action(action)

    def hold(self) -> dict[str, Any]:
        with self._lock:
            self.holds += 1
        return self.inner.hold()

    def scene_objects(self) -> list[SceneObject]:
        return self.inner.scene_objects()  # type: ignore[attr-defined]

    def reset(self, seed: int | None = None) -> None:
        self.inner.reset(seed)  # type: ignore[attr-defined]


def wait_for_line(proc: subprocess.Popen, needle: str, timeout_s: float) -> str:
    """Read `proc.stdout` (text mode) until a line containing `needle`; returns everything read."""
    out: list[str] = []
    end = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            time.sleep(0.01)
            continue
        out.append(line)
        if needle in line:
            return "".join(out)
    raise TimeoutError(f"no line with {needle!r} within {timeout_s} s; got:\n{''.join(out)}")
