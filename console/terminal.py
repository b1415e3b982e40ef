"""Terminal console: prints what the agent does and reads corrections from stdin."""
from __future__ import annotations

import sys
import threading
from typing import TextIO

from agent.events import Event
from agent.loop import Agent


class TerminalConsole:
    """Event lines above a status line; every line typed on stdin goes to the agent.

    On a TTY the status line is redrawn in place; otherwise it is printed as a line
    whenever the instruction or the last reply changes.
    """

    def __init__(self, out: TextIO | None = None, inp: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        self.tty = self.out.isatty()
        self.agent: Agent | None = None
        self._lock = threading.Lock()
        self._last_status = ""

    def attach(self, agent: Agent) -> None:
        self.agent = agent

    def on_event(self, event: Event) -> None:
        marks = {"task": "task:", "step": "->", "step_done": "  ", "reply": "<<", "knowledge": "kb:", "done": "done:", "error": "!!"}
        with self._lock:
            if self.tty:
                self.out.write("\r\033[K")
            self.out.write(f"[{event.t:6.2f}s] {marks.get(event.kind, event.kind)} {event.text}\n")
            self._status()
            self.out.flush()

    def _status(self) -> None:
        if self.agent is None:
            return
        s = self.agent.status
        state = "STOPPED" if s.get("stopped") else "running"
        line = f"[{state}] step {s.get('step', 0)}: {s.get('instruction', '')} | last reply: {s.get('reply', '') or '-'} | type a correction"
        if self.tty:
            self.out.write(line[: 160])
        elif line != self._last_status:
            self.out.write(f"status: {line}\n")
        self._last_status = line

    def start_reader(self) -> threading.Thread:
        """Read lines from stdin in the background and submit them as corrections."""

        def read() -> None:
            for line in self.inp:
                text = line.strip()
                if text and self.agent is not None:
                    self.agent.submit(text)

        t = threading.Thread(target=read, name="corrigo-stdin", daemon=True)
        t.start()
        return t
