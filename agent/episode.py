"""What an episode is doing (`EpisodeState`), what the correction handler sees of it
(`EpisodeView`), how it ended (`Outcome`), and what is kept of it (`StepRecord`,
`CorrectionRecord`, `EpisodeResult`, `EpisodeLog`).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.goal import Goal
from robot.lexicon import Lexicon
from robot.types import SceneObject
from skills.base import SkillCall, SkillContext


@dataclass
class CorrectionRecord:
    """One operator utterance: when, what it meant, what the agent did."""

    t: float
    text: str
    parsed: dict[str, Any]
    reply: str
    step: str | None  # the instruction running when it came
    applied: bool
    source: str = "operator"
    latency_s: float | None = None  # queue entry -> first action sent after applying it
    context: dict[str, Any] = field(default_factory=dict)  # what the agent was doing (for distillation)


@dataclass
class StepRecord:
    instruction: str
    call: dict[str, Any]
    source: str
    ok: bool | None
    message: str
    t_start: float
    t_end: float
    interrupted: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    offset: list[float] = field(default_factory=list)
    yaw_offset: float = 0.0
    object: dict[str, Any] | None = None  # the object in the "object" slot, as seen at the step's start
    target: dict[str, Any] | None = None  # the object in the "target" slot
    knowledge: list[int] = field(default_factory=list)  # ids of knowledge items applied to it
    acted_on: dict[str, Any] | None = None  # the object in the skill's primary slot (what its knowledge is about)
    phase: str | None = None  # the phase the skill was in when it ended


# The one outcome vocabulary (loop, CLI, recorder, eval). "unknown": the episode ran to its
# end but there was nothing to check (free motion) or no scene to check it on.
SUCCEEDED, FAILED, REFUSED, UNKNOWN = "succeeded", "failed", "refused", "unknown"
OUTCOMES = (SUCCEEDED, FAILED, REFUSED, UNKNOWN)
# `corrigo run`: refused (nothing was started) exits like a user mistake
EXIT_CODES: dict[str, int] = {SUCCEEDED: 0, UNKNOWN: 0, FAILED: 1, REFUSED: 2}


@dataclass(frozen=True)
class Outcome:
    """How an episode ended, in the one vocabulary, and why."""

    word: str  # one of OUTCOMES
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.word} ({self.reason})" if self.reason else self.word


@dataclass
class EpisodeResult:
    task: str
    success: bool | None
    done_reason: str
    steps: list[StepRecord]
    corrections: list[CorrectionRecord]
    duration_s: float
    ticks: int
    knowledge_applied: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome = Outcome(UNKNOWN)
    goal: dict[str, Any] | None = None  # the task's own goal (Goal.to_dict), None when it moves nothing
    corrected_goal: dict[str, Any] | None = None  # the goal at the end, after corrections
    goal_changes: list[dict[str, Any]] = field(default_factory=list)  # {t, utterance, goal} per correction that changed it


@dataclass
class EpisodeState:
    """Everything the loop tracks while an episode runs. Only `Agent` changes it."""

    ctx: SkillContext  # the running skill's live context (offset, speed, params, held object)
    t: float = 0.0
    ticks: int = 0
    stopped: bool = False
    finishing: bool = False  # the policy said it is done; the operator may still object
    pending: list[tuple[SkillCall, str]] = field(default_factory=list)  # (call, source) to run before asking the policy
    current: SkillCall | None = None
    current_source: str = "policy"
    interrupt: str | None = None  # set to abandon the running skill, with the reason
    episode_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # skill -> param -> value (live corrections)
    intervening: bool = False  # the current step has been shaped by the operator
    last_motion: np.ndarray | None = None  # direction of the last nudge ("a bit more")
    goal: Goal | None = None  # what the task asks for, as corrected so far


@dataclass(frozen=True)
class EpisodeView:
    """A read-only snapshot of the episode, all the correction handler gets to see."""

    current: SkillCall | None = None
    stopped: bool = False
    pending: tuple[SkillCall, ...] = ()
    remaining: tuple[SkillCall, ...] = ()  # the policy's remaining plan, if it has one
    objects: tuple[SceneObject, ...] = ()
    held: SceneObject | None = None
    params: dict[str, Any] | None = None  # the running skill's parameters
    episode_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    speed_scale: float = 1.0
    last_motion: tuple[float, float, float] | None = None
    phase: str | None = None
    goal: Goal | None = None  # the episode's goal as corrected so far


@dataclass
class EpisodeLog:
    """An ended episode as the knowledge base learns from it (see corrections_kb.distill for the dict form)."""

    episode: str
    task: str
    success: bool | None
    steps: list[StepRecord]
    corrections: list[CorrectionRecord]
    episode_params: dict[str, dict[str, Any]]
    task_knowledge_used: list[int]
    lexicon: Lexicon
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode, "task": self.task, "operator": None, "success": self.success,
            "time": self.time,
            "steps": [vars(s).copy() for s in self.steps],
            "corrections": [{"t": c.t, "text": c.text, "parsed": c.parsed, "reply": c.reply, "applied": c.applied,
                             "context": c.context} for c in self.corrections],
            "episode_params": {k: dict(v) for k, v in self.episode_params.items()},
        }


def new_episode_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
