"""Terminal console: prints what the agent does and reads corrections from stdin."""
from __future__ import annotations

import queue
import sys
import threading
from typing import Optional, TextIO

from agent.episode import EpisodeLog
from agent.events import Event
from agent.knowledge import scope_text
from agent.loop import Agent
from corrections_kb.knowledge import Knowledge


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
        self._reading = False
        self._answers: "queue.Queue[str | None] | None" = None  # while reviewing, typed lines are answers

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
                answers = self._answers
                if answers is not None:
                    answers.put(line.strip())
                elif line.strip() and self.agent is not None:
                    self.agent.submit(line.strip())
            if self._answers is not None:
                self._answers.put(None)  # end of input

        self._reading = True
        t = threading.Thread(target=read, name="corrigo-stdin", daemon=True)
        t.start()
        return t

    # ----- review of what an episode taught (`corrigo run --learn ask`) -----
    def review(self, items: list[Knowledge], log: EpisodeLog) -> list[Optional[Knowledge]]:
        """Ask, item by item: keep it (Enter or y), drop it (n), or edit its statement (e)."""
        outcome = {True: "succeeded", False: "failed", None: "ended"}[log.success]
        self._say(f"the episode {outcome}; I learned {len(items)} thing{'s' if len(items) != 1 else ''}:")
        out: list[Optional[Knowledge]] = []
        for k in items:
            answer = self._ask(f"  I learned: {k.statement} [{scope_text(k)}]. Keep it? [Y/n/e] ")
            if answer in ("n", "no"):
                out.append(None)
            elif answer in ("e", "edit"):
                text = self._ask("  say it as it should be: ")
                out.append(k.replace(statement=text) if text else k)
            else:  # Enter, y, yes, or the end of input: keep it
                out.append(k)
        return out

    def _say(self, text: str) -> None:
        with self._lock:
            if self.tty:
                self.out.write("\r\033[K")
            self.out.write(text + "\n")
            self.out.flush()

    def _ask(self, prompt: str) -> str:
        with self._lock:
            if self.tty:
                self.out.write("\r\033[K")
            self.out.write(prompt)
            self.out.flush()
        if not self._reading:  # no reader thread: read the answer here
            line = self.inp.readline()
            return line.strip().lower()
        self._answers = queue.Queue()
        try:
            answer = self._answers.get()
        finally:
            self._answers = None
        return (answer or "").lower()
