"""Robots over the network: the ZMQ wire protocol, the robot server, the client body,
a mock body, and vendor adapters.

Registers `zmq://HOST:PORT` (the network client), `mock:arm` (no physics) and
`ur_rtde:HOST` (an UNTESTED Universal Robots adapter) in `robot.registry`.
"""
from __future__ import annotations

from typing import Any

from robot.registry import register_robot
from robot.robot import Robot


def _zmq(spec: str, **kwargs: Any) -> Robot:
    from hw_drivers.client import make_zmq_robot

    return make_zmq_robot(spec, **kwargs)


def _mock(spec: str, **kwargs: Any) -> Robot:
    from hw_drivers.mock import make_mock

    return make_mock(spec, **kwargs)


def _ur(spec: str, **kwargs: Any) -> Robot:
    from hw_drivers.adapters.ur_rtde import make_ur_rtde

    return make_ur_rtde(spec, **kwargs)


register_robot("zmq://", _zmq)
register_robot("mock:arm", _mock)
register_robot("ur_rtde:", _ur)
