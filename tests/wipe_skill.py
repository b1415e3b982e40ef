"""A skill written outside corrigo, as a user would: `wipe(surface)` (tests/test_open_skills.py).

It declares its language beside its code (templates, its primary slot, phases, the words
that adjust its parameters) and nothing else in corrigo is edited to make it work.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robot.describe import resolve
from robot.lexicon import Adjustment
from robot.robot import Robot
from skills import Skill, SkillCall, SkillContext, SkillOutcome
from skills.arm import move_to
from skills.base import ActionGen, param


class Wipe(Skill):
    """Sweep the gripper back and forth over a surface, `passes` times (read live)."""

    name: ClassVar[str] = "wipe"
    templates = ("wipe the {surface}", "scrub the {surface}", "clean the {surface}")
    slots = ("surface",)
    primary_slot = "surface"
    phases = ("approach", "wipe", "retreat")
    contact_phase = "wipe"
    adjustments = (
        Adjustment("passes", (r"(?:wipe|scrub|clean|do) {OBJ}{COUNT}more(?: times?)?",
                              r"{COUNT}more (?:passes|times)"), amount=1, scale="count"),
        Adjustment("height", (r"(?:wipe|scrub) {OBJ}{MAG}(?:harder|lower|closer)",), amount=-0.005, scale="magnitude"),
    )

    @dataclass
    class Params:
        passes: int = 2
        width: float = 0.12  # length of one sweep, m
        height: float = param(0.03, 0.0, 0.2)  # above the surface, m (a value outside is refused)
        speed: float = param(0.2, 0.01, 1.0)  # m/s

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        p = ctx.params
        surface = resolve(call.args.get("surface", ""), ctx.objects())
        top = surface.position + np.array([0.0, 0.0, float(surface.size[2]) + p.height])
        ctx.phase = "approach"
        yield from move_to(ctx, top + [0, 0, 0.1], 0.0, 1.0, p.speed, tol=0.01)
        ctx.phase = "wipe"
        done = 0
        while done < p.passes:  # a correction may add passes while it wipes
            for side in (1, -1):
                yield from move_to(ctx, lambda: top + [0, side * p.width / 2, 0], 0.0, 1.0, p.speed, tol=0.006)
            done += 1
        ctx.phase = "retreat"
        yield from move_to(ctx, top + [0, 0, 0.1], 0.0, 1.0, p.speed, tol=0.02)
        return SkillOutcome(True, f"wiped the {surface.description} {done} times", {"passes": done})
