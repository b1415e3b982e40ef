"""The contract every corrigo body implements, shared types and safety limits.

Imports numpy only. Bodies live in `sim/` (PyBullet, MuJoCo), `hw_drivers/` (ZMQ
client) and `robot/browser` (the web-agent variant).
"""
from robot.errors import ActionError, CorrigoError, NotConnectedError, RobotError
from robot.robot import Robot, SceneProvider
from robot.safety import SafetyLimits, clip_action
from robot.types import (
    ACTION_NAMES,
    ARM_STATE_NAMES,
    Feature,
    Pose,
    SceneObject,
    action_from_vector,
    action_to_vector,
    ee_pose_from_observation,
    gripper_from_observation,
)

__all__ = [
    "ACTION_NAMES",
    "ARM_STATE_NAMES",
    "ActionError",
    "CorrigoError",
    "Feature",
    "NotConnectedError",
    "Pose",
    "Robot",
    "RobotError",
    "SafetyLimits",
    "SceneObject",
    "SceneProvider",
    "action_from_vector",
    "action_to_vector",
    "clip_action",
    "ee_pose_from_observation",
    "gripper_from_observation",
]
