"""What the loop tells the operator and the recorder: small typed events."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Event:
    kind: str  # "task", "step", "step_done", "reply", "knowledge", "done", "error"
    text: str
    t: float = 0.0  # episode time, s
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def print_events(event: Event) -> None:
    marks = {"task": "task", "step": " -> ", "step_done": "    ", "reply": " << ", "knowledge": " kb", "done": "done", "error": " !!"}
    print(f"[{event.t:6.2f}s] {marks.get(event.kind, event.kind)} {event.text}", flush=True)
