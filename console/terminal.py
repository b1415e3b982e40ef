"""Terminal console: prints what the agent does and reads corrections from stdin.

On a terminal (stdin and stdout both TTYs, with the reader started) a prompt_toolkit prompt sits at
the bottom: event lines are printed above it without touching what the operator is typing, and the
agent's status is its bottom toolbar. Anywhere else (pipes, files, `--no-interactive`) the console
writes plain event lines, no status, and reads stdin line by line.
"""
from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import contextvars
import queue
import sys
import threading
from typing import Any, Callable, Optional, TextIO

from agent.episode import EpisodeLog
from agent.events import Event
from agent.knowledge import scope_text
from agent.loop import Agent
from corrections_kb.knowledge import Knowledge

PROMPT = "correction> "
MARKS = {"task": "task:", "step": "->", "step_done": "  ", "reply": "<<", "knowledge": "kb:", "done": "done:",
         "error": "!!"}


class TerminalConsole:
    """Event lines above a prompt whose toolbar is the status; every line typed goes to the agent."""

    def __init__(self, out: TextIO | None = None, inp: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        self.tty = _isatty(self.out) and _isatty(self.inp)  # prompt_toolkit only when both are a terminal
        self.agent: Agent | None = None
        self._lock = threading.Lock()  # one writer at a time; guards _answers/_message
        self._reading = False
        self._eof = False  # the input ended: questions get their default answer
        self._answers: "queue.Queue[str | None] | None" = None  # while reviewing, typed lines are answers
        self._message = PROMPT
        # the prompt (tty only): its thread, event loop, context (holds the app session) and session
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: contextvars.Context | None = None
        self._session: Any = None
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._stdio: tuple[TextIO, TextIO] | None = None

    def attach(self, agent: Agent) -> None:
        self.agent = agent

    def on_event(self, event: Event) -> None:
        self._print(f"[{event.t:6.2f}s] {MARKS.get(event.kind, event.kind)} {event.text}")
        self._invalidate()  # the status may have changed with it

    def status(self) -> str:
        """The agent's state in one line: shown as the prompt's toolbar on a terminal, never on a pipe."""
        if self.agent is None:
            return ""
        s = self.agent.status
        state = "STOPPED" if s.get("stopped") else "running"
        return f" [{state}] step {s.get('step', 0)}: {s.get('instruction', '')} | last reply: {s.get('reply', '') or '-'}"

    # ----- input -----
    def start_reader(self) -> threading.Thread:
        """Read corrections in the background (the agent loop owns the main thread) and submit them."""
        self._reading = True
        if self.tty:
            started = threading.Event()
            self._thread = threading.Thread(target=self._serve_prompt, args=(started,), name="corrigo-prompt",
                                            daemon=True)
            self._thread.start()
            started.wait(10)
            self._patch_stdio()
            return self._thread

        def read() -> None:
            for line in self.inp:
                self._submit(line.strip())
            self._end_of_input()

        t = threading.Thread(target=read, name="corrigo-stdin", daemon=True)
        t.start()
        return t

    def _submit(self, line: str) -> None:
        with self._lock:
            answers, self._answers = self._answers, None
            self._message = PROMPT
        if answers is not None:
            answers.put(line)
        elif line and self.agent is not None:
            self.agent.submit(line)

    def _end_of_input(self) -> None:
        with self._lock:
            self._eof = True
            answers, self._answers = self._answers, None
            self._message = PROMPT
        if answers is not None:
            answers.put(None)

    def close(self) -> None:
        """End the prompt (the episode is over) and give the terminal back as it was; idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._unpatch_stdio()

        def stop() -> None:
            self._closing = True
            if self._closed is not None:
                self._closed.set()
            app = self._session.app if self._session is not None else None
            if app is not None and app.is_running and app.future is not None and not app.future.done():
                app.erase_when_done = True  # nothing of the prompt stays under the last output
                app.exit(exception=EOFError())

        for _ in range(50):  # re-sent in case the prompt was between two lines when asked
            try:
                loop.call_soon_threadsafe(stop, context=self._ctx)
            except RuntimeError:  # the loop has ended
                break
            thread.join(0.1)
            if not thread.is_alive():
                break
        self._thread = self._loop = None

    def _serve_prompt(self, started: threading.Event) -> None:
        from prompt_toolkit.application import create_app_session
        from prompt_toolkit.input import create_input
        from prompt_toolkit.output import create_output

        with create_app_session(input=create_input(self.inp), output=create_output(self.out)):
            asyncio.run(self._prompt_loop(started))  # this thread's own event loop

    async def _prompt_loop(self, started: threading.Event) -> None:
        from prompt_toolkit import PromptSession

        self._loop = asyncio.get_running_loop()
        self._ctx = contextvars.copy_context()  # printing from other threads runs in this app session
        self._closed = asyncio.Event()
        self._session = PromptSession(bottom_toolbar=self.status, refresh_interval=0.5)
        started.set()
        try:
            while not self._closing:
                try:
                    line = await self._session.prompt_async(lambda: self._message)
                except EOFError:  # Ctrl-D, or close()
                    break
                except KeyboardInterrupt:  # Ctrl-C: raw mode turned it into a key; interrupt the run as SIGINT would
                    _thread.interrupt_main()
                    break
                self._submit(line.strip())
        finally:
            self._end_of_input()
        await self._closed.wait()  # stay up for printing until the episode ends

    def _patch_stdio(self) -> None:
        """Stray prints (warnings) to the terminal go above the prompt too, not across it."""
        self._stdio = (sys.stdout, sys.stderr)
        if _isatty(sys.stdout):
            sys.stdout = _LineProxy(self._print_raw, sys.stdout)  # type: ignore[assignment]
        if _isatty(sys.stderr):  # (a stderr redirected to a file stays as it is)
            sys.stderr = _LineProxy(self._print_raw, sys.stderr)  # type: ignore[assignment]

    def _unpatch_stdio(self) -> None:
        if self._stdio is not None:
            for proxy in (sys.stdout, sys.stderr):
                if isinstance(proxy, _LineProxy):
                    proxy.close_line()
            sys.stdout, sys.stderr = self._stdio
            self._stdio = None

    # ----- output -----
    def _print(self, line: str) -> None:
        self._print_raw(line + "\n")

    def _print_raw(self, text: str, stream: TextIO | None = None) -> None:
        """Write above the prompt when there is one (prompt_toolkit's in_terminal), else straight out."""
        def write() -> None:
            s = stream or self.out
            s.write(text)
            s.flush()

        if not self._in_prompt_loop(write):
            with self._lock:
                write()

    def _in_prompt_loop(self, fn: Callable[[], None]) -> bool:
        loop = self._loop
        if loop is None or self._thread is None or not self._thread.is_alive():
            return False
        from prompt_toolkit.application import in_terminal

        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def job() -> None:
            try:
                async with in_terminal():  # hides the prompt, runs fn, draws the prompt again below
                    fn()
                done.set_result(None)
            except BaseException as e:  # handed to the waiting thread
                done.set_exception(e)

        try:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(job()), context=self._ctx)
        except RuntimeError:  # the loop has just ended
            return False
        if threading.current_thread() is not self._thread:
            done.result()  # in order: the next line waits for this one
        return True

    def _invalidate(self) -> None:
        app = self._session.app if self._session is not None else None
        if app is not None and app.is_running:
            app.invalidate()  # thread-safe: the toolbar is redrawn with the new status

    # ----- review of what an episode taught (`corrigo run --learn ask`) -----
    def review(self, items: list[Knowledge], log: EpisodeLog) -> list[Optional[Knowledge]]:
        """Ask, item by item: keep it (Enter or y), drop it (n), or edit its statement (e)."""
        outcome = {True: "succeeded", False: "failed", None: "ended"}[log.success]
        self._print(f"the episode {outcome}; I learned {len(items)} thing{'s' if len(items) != 1 else ''}:")
        out: list[Optional[Knowledge]] = []
        for k in items:
            answer = self._ask(f"  I learned: {k.statement} [{scope_text(k)}]. Keep it? [Y/n/e] ").lower()
            if answer in ("n", "no"):
                out.append(None)
            elif answer in ("e", "edit"):
                text = self._ask("  say it as it should be: ")
                out.append(k.replace(statement=text) if text else k)
            else:  # Enter, y, yes, or the end of input: keep it
                out.append(k)
        return out

    def _ask(self, prompt: str) -> str:
        """One answer: through the running prompt if there is one, else read here."""
        if not self._reading:
            if self.tty:
                from prompt_toolkit import PromptSession

                try:
                    return PromptSession().prompt(prompt).strip()
                except EOFError:
                    return ""
            with self._lock:
                self.out.write(prompt)
                self.out.flush()
            return self.inp.readline().strip()
        answers: "queue.Queue[str | None]" = queue.Queue()
        with self._lock:
            if self._eof:
                return ""
            self._answers, self._message = answers, prompt
        if self.tty:
            self._invalidate()  # the prompt now shows the question
        else:
            self._print_raw(prompt)
        while True:
            try:
                return answers.get(timeout=0.2) or ""
            except queue.Empty:  # polling keeps Ctrl-C (an interrupt of this thread) able to land
                continue


class _LineProxy:
    """A text stream that hands whole lines to `emit`; stands in for sys.stdout/stderr while the prompt runs."""

    def __init__(self, emit: Callable[[str, TextIO], None], original: TextIO) -> None:
        self._emit, self._original, self._buf = emit, original, ""

    def write(self, data: str) -> int:
        self._buf += data
        if "\n" in self._buf:  # a partial line waits for its end: the prompt would draw over it
            lines, self._buf = self._buf.rsplit("\n", 1)
            self._emit(lines + "\n", self._original)
        return len(data)

    def flush(self) -> None:
        pass  # whole lines only (see write); the rest goes out at close

    def close_line(self) -> None:
        if self._buf:
            text, self._buf = self._buf, ""
            self._emit(text + "\n", self._original)

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._original.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
