"""The console when stdin/stdout are pipes or files: plain event lines, no status lines, stdin read line by line."""
from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

from agent.episode import EpisodeLog
from agent.events import Event
from console.terminal import TerminalConsole
from corrections_kb.knowledge import Knowledge
from tests.cli_helpers import cli

TASK = "put the red block in the blue bowl"


def _assert_plain(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("status:") or "type a correction" in ln], stdout
    assert "\x1b" not in stdout and "\r" not in stdout, repr(stdout[-400:])  # no terminal control in a file
    assert lines[-1].startswith(f"'{TASK}': succeeded"), stdout  # the summary, last, on its own line
    return lines


def test_a_piped_run_prints_events_and_no_status_lines(tmp_path: Path) -> None:
    script = tmp_path / "corr.txt"
    script.write_text("0.5 stop\n1.0 continue\n")
    out = cli("run", "--task", TASK, "--no-realtime", "--corrections", str(script))
    assert out.returncode == 0, out.stderr
    lines = _assert_plain(out.stdout)
    assert any("-> pick up the red block" in ln for ln in lines), out.stdout
    assert any("<< stopped; holding still" in ln for ln in lines), out.stdout


def test_corrections_piped_on_stdin_reach_the_agent(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--task", TASK, "--interactive", "--no-realtime"],
                         input="stop\n\ncontinue\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = _assert_plain(out.stdout)
    assert any("<< stopped; holding still" in ln for ln in lines), out.stdout
    # both lines may arrive before the first step starts ("continuing: the plan") or during it
    assert any("<< continuing: " in ln for ln in lines), out.stdout


def _log(success: bool | None = True) -> EpisodeLog:
    return EpisodeLog("ep", TASK, success, [], [], {}, [], None)  # type: ignore[arg-type]


def _items() -> list[Knowledge]:
    return [Knowledge("skill", "grasp the red block 1 cm along +y", scope={"object": "red_block"}),
            Knowledge("skill", "grasp the jug by its handle")]


def test_review_reads_answers_line_by_line_from_a_pipe() -> None:
    out = io.StringIO()
    console = TerminalConsole(out, io.StringIO("n\ne\nby the handle, gently\n"))
    kept = console.review(_items(), _log())
    assert kept[0] is None
    assert kept[1] is not None and kept[1].statement == "by the handle, gently"
    text = out.getvalue()
    assert "I learned 2 things:" in text and "Keep it? [Y/n/e]" in text and "\x1b" not in text


def test_review_after_the_input_ended_keeps_everything_instead_of_waiting() -> None:
    """With the reader thread at end of input, a question gets the default answer (it used to wait forever)."""
    console = TerminalConsole(io.StringIO(), io.StringIO(""))
    console.start_reader().join(5)
    result: list = []
    t = threading.Thread(target=lambda: result.append(console.review(_items(), _log())), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "review waited for input that had ended"
    assert [k.statement for k in result[0]] == [k.statement for k in _items()]


def test_events_on_a_pipe_are_one_plain_line_each() -> None:
    out = io.StringIO()
    console = TerminalConsole(out, io.StringIO(""))
    console.on_event(Event("step", "pick up the red block", 1.25))
    console.on_event(Event("reply", "stopped; holding still", 2.5))
    assert out.getvalue() == "[  1.25s] -> pick up the red block\n[  2.50s] << stopped; holding still\n"
