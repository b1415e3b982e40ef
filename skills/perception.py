"""Where skills find objects: one small interface, privileged sim state for now."""
from __future__ import annotations

from typing import Callable

from robot.errors import RobotError
from robot.robot import Robot, SceneProvider
from robot.types import SceneObject

ObjectSource = Callable[[], list[SceneObject]]


def privileged_objects(robot: Robot) -> ObjectSource:
    """Objects from a body that knows its scene (simulators, or a served simulator)."""
    if not isinstance(robot, SceneProvider):
        raise RobotError(f"{robot.name} cannot list scene objects; it needs a perception module")
    return robot.scene_objects
