"""Robots over the network: the ZMQ wire protocol, the robot server, the client body,
a mock body, and vendor adapters.

Registers `zmq://HOST:PORT` (the network client), `mock:arm` (no physics) and
`ur_rtde:HOST` (an UNTESTED Universal Robots adapter) in `robot.registry`.
"""
from __future__ import annotations

from typing import Any

from robot.registry import register_robot
from robot.robot import Robot


# The factories import their modules when called: `import hw_drivers` needs neither zmq nor an SDK.
def _zmq(spec: str, **kwargs: Any) -> Robot:
    from hw_drivers.client import make_zmq_robot

    return make_zmq_robot(spec, **kwargs)


def _mock(spec: str, **kwargs: Any) -> Robot:
    from hw_drivers.mock import make_mock

    return make_mock(spec, **kwargs)


def _ur(spec: str, **kwargs: Any) -> Robot:
    from hw_drivers.adapters.ur_rtde import make_ur_rtde

    return make_ur_rtde(spec, **kwargs)


register_robot("zmq://", _zmq, requires=("zmq", "msgpack"), usage="zmq://HOST:PORT", install="pyzmq msgpack")
register_robot("mock:arm", _mock)
# the ur_rtde SDK is imported on connect, with its own install hint: the adapter itself is always there
register_robot("ur_rtde:", _ur, usage="ur_rtde:HOST")
