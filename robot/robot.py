"""The `Robot` contract (LeRobot's names, on purpose)."""
from __future__ import annotations

import abc
from typing import Any, Protocol, runtime_checkable

from robot.types import Feature, SceneObject


class Robot(abc.ABC):
    """A body the agent can observe and command.

    `observation_features` and `action_features` are valid before `connect()`.
    `send_action` applies the body's safety limits and returns the action that was
    really sent. `hold()` stops where the body is (used on "stop" and while
    replanning). Usable as a context manager: connect on enter, disconnect on exit.
    """

    name: str = "robot"
    #: control period the body expects commands at (seconds)
    control_dt: float = 0.05

    @property
    @abc.abstractmethod
    def observation_features(self) -> dict[str, Feature]: ...

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, Feature]: ...

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    @abc.abstractmethod
    def get_observation(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def send_action(self, action: dict[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    def hold(self) -> dict[str, Any]:
        """Command the body to stay where it is; returns the action sent."""

    @property
    def time_s(self) -> float:
        """Body clock in seconds (simulated time for simulators)."""
        return 0.0

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


@runtime_checkable
class SceneProvider(Protocol):
    """Optional capability: a body that can list the objects in its scene.

    Simulators answer from privileged state; a real arm would answer from
    perception. Skills find objects only through this interface.
    """

    def scene_objects(self) -> list[SceneObject]: ...
