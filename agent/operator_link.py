"""Connect a simulated operator to the loop: it watches every tick and speaks via `schedule`."""
from __future__ import annotations

from typing import Any

from agent.loop import Agent


def attach_operator(agent: Agent, operator: Any) -> None:
    """Each tick the operator sees the time, the current instruction and whether the arm is stopped;
    what it says arrives after its reaction time, through the same queue as typed text."""

    def observe(a: Agent) -> None:
        instruction = a.library.render(a.current) if a.current is not None else ""
        operator.finishing = a.finishing  # the agent says it is done: now is the time to object
        for at, text in operator.observe(a.t, instruction, a.stopped):
            a.schedule(at, text)

    agent.observers.append(observe)
