"""String-keyed registry of bodies: `sim:pybullet`, `sim:mujoco`, `zmq://host:port`.

Layers below `agent/` register factories; `make_robot` finds one by prefix. The
registry stores module names to import lazily, so `robot/` never imports them.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from robot.errors import CorrigoError
from robot.robot import Robot

RobotFactory = Callable[..., Robot]
_FACTORIES: dict[str, RobotFactory] = {}
# prefix -> module that registers it on import
_LAZY: dict[str, str] = {"sim:": "sim", "zmq://": "hw_drivers", "mock:": "hw_drivers", "ur_rtde:": "hw_drivers"}


def register_robot(prefix: str, factory: RobotFactory) -> None:
    _FACTORIES[prefix] = factory


def make_robot(spec: str, **kwargs: Any) -> Robot:
    for prefix, module in _LAZY.items():
        if spec.startswith(prefix) and not any(spec.startswith(p) for p in _FACTORIES):
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise CorrigoError(f"robot {spec!r} needs module {module!r}, which failed to import: {e}") from None
    matches = sorted((p for p in _FACTORIES if spec == p or spec.startswith(p)), key=len, reverse=True)
    if not matches:
        known = ", ".join(sorted(_FACTORIES)) or "none registered"
        raise CorrigoError(f"unknown robot {spec!r} (known: {known}, zmq://HOST:PORT)")
    return _FACTORIES[matches[0]](spec, **kwargs)


def known_robots() -> list[str]:
    for module in set(_LAZY.values()):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    return sorted(_FACTORIES)
