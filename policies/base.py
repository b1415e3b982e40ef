"""The high-level policy contract: which skill next."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence

from robot.errors import CorrigoError
from skills.base import SkillCall, SkillOutcome


class PolicyError(CorrigoError):
    pass


@dataclass
class Done:
    """The policy considers the task finished (or impossible: `ok=False`)."""

    reason: str = "task complete"
    ok: bool = True


@dataclass
class Step:
    """One executed step of an episode, as the policy sees its history."""

    call: SkillCall
    outcome: SkillOutcome | None = None
    source: str = "policy"  # "policy" or "operator" (an instruction typed as a correction)
    interrupted: bool = False


@dataclass
class PlanEdit:
    """A structured edit of the remaining plan (from a `plan` correction)."""

    op: str  # "insert", "skip", "reorder", "replace"
    calls: list[SkillCall] = field(default_factory=list)
    before: str | None = None  # reorder: this object first...
    after: str | None = None  # ...then this one
    target: str | None = None  # replace: new target of the remaining placing steps


class HighLevelPolicy(abc.ABC):
    """`next_step(observation, task, history, knowledge) -> SkillCall | Done`.

    `observation` is the body's observation plus `perception.objects` (the list of
    `SceneObject`s perception sees); `knowledge` holds retrieved task-level items.
    """

    name: str = "policy"
    version: str = "0"

    def reset(self) -> None:
        """Forget the current task (called at the start of every episode)."""

    @abc.abstractmethod
    def next_step(self, observation: dict[str, Any], task: str, history: Sequence[Step], knowledge: Sequence[Any]) -> SkillCall | Done: ...

    def replan(self, observation: dict[str, Any], task: str, reason: str = "") -> None:
        """Rebuild the remaining plan from the current state (default: nothing to do)."""

    def edit_plan(self, edit: PlanEdit, observation: dict[str, Any]) -> str:
        """Apply a plan edit; returns what was done, for the operator."""
        raise PolicyError(f"the {self.name} policy cannot edit its plan")

    def remaining(self) -> list[SkillCall]:
        return []

    def knowledge_used(self) -> list[Any]:
        """The task-level knowledge items that changed what this policy did (for display and scoring)."""
        return []

    def retarget(self, old: str | None, new: str, slot: str | None = None) -> int:
        """Re-ground the remaining steps after an object correction; returns how many changed (default: none)."""
        return 0
