"""What handling a correction does, as data: the handler returns these, the loop carries them out.

`agent.corrections.handle` is pure: (Correction, EpisodeView, SkillLibrary) -> list[Effect].
`Agent._apply` is the one place that changes episode state, the running skill or the
policy in response. Effects are carried out in order; the reply is the last `Say` (or the
answer of an `EditPlan(say=True)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from agent.goal import Goal
from policies.base import PlanEdit
from skills.base import SkillCall

Queued = tuple[SkillCall, str]  # a call and its source ("operator")


@dataclass(frozen=True)
class Say:
    """The one-line reply to the operator, and whether the correction changed anything."""

    text: str
    applied: bool = True


@dataclass(frozen=True)
class Hold:
    """Stop where you are (and drop a nudge in progress) until `Resume`."""


@dataclass(frozen=True)
class Resume:
    """Carry on after a `Hold` (a nudge in progress is dropped)."""


@dataclass(frozen=True)
class Shift:
    """Move every target of the running skill by `offset` (m, base frame) and turn it by `yaw` (rad)."""

    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0


@dataclass(frozen=True)
class RememberDirection:
    """The direction of this nudge, for a later "a bit more" (unit vector, base frame)."""

    direction: tuple[float, float, float]


@dataclass(frozen=True)
class RunNudge:
    """Run a small skill now, while stopped, and stay stopped (a nudge, the gripper)."""

    call: SkillCall


@dataclass(frozen=True)
class Rescale:
    """Set the speed scale of the running and following skills."""

    speed_scale: float


@dataclass(frozen=True)
class Interrupt:
    """Abandon the running skill (if any) and stop holding."""

    reason: str


@dataclass(frozen=True)
class Enqueue:
    """Run these calls, in order, before asking the policy again (in front of anything queued)."""

    calls: tuple[Queued, ...]


@dataclass(frozen=True)
class Retarget:
    """Re-ground the policy's remaining steps: `old` becomes `new` in `slot` (HighLevelPolicy.retarget).

    `reply`, when given, becomes the reply once formatted with the number of steps changed
    (`{n}`) and its plural ending (`{s}`).
    """

    old: str | None
    new: str
    slot: str | None = None
    reply: str | None = None


@dataclass(frozen=True)
class EditPlan:
    """Edit the policy's remaining plan (HighLevelPolicy.edit_plan).

    `say`: the policy's answer becomes the reply. When the policy refuses (PolicyError):
    with `otherwise`, the rest of the effects are dropped and `otherwise` carried out
    instead; without it, a `say` edit makes the refusal the reply (not applied).
    `goal`: the episode's goal once the policy has accepted the edit.
    """

    edit: PlanEdit
    say: bool = False
    otherwise: tuple["Effect", ...] | None = None
    goal: Goal | None = None


@dataclass(frozen=True)
class ChangeGoal:
    """The correction changed what the task is: success is judged against `goal` from now on."""

    goal: Goal


@dataclass(frozen=True)
class SetParam:
    """A skill parameter for the rest of the episode; `live`: also in the running step now."""

    skill: str
    param: str
    value: Any
    live: bool = False


@dataclass(frozen=True)
class MarkIntervention:
    """The running step is now shaped by the operator (recorded per frame)."""


Effect = Union[Say, Hold, Resume, Shift, RememberDirection, RunNudge, Rescale, Interrupt, Enqueue, Retarget, EditPlan, SetParam,
               MarkIntervention, ChangeGoal]
