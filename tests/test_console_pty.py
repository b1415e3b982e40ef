"""`corrigo run` in a real pseudo-terminal: type a correction while the arm moves."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pexpect
import pytest

from policies.dataset import Dataset
from tests.term_screen import Term

TASK = "put the red block in the blue bowl"
SUMMARY = re.escape(f"'{TASK}': ")
ROWS, COLS = 40, 200


def spawn_run(*args: str, timeout: float = 60) -> tuple[pexpect.spawn, Term]:
    """`corrigo run ARGS` on a pty, seen through a screen that answers like a terminal."""
    child = pexpect.spawn(sys.executable, ["-m", "agent.cli", "run", *args], encoding="utf-8", timeout=timeout,
                          dimensions=(ROWS, COLS))
    return child, Term(child, ROWS, COLS)


def release_ee(root: Path) -> np.ndarray:
    """Measured end-effector position, settled, while the gripper opens over the bowl."""
    ep = Dataset(root).episode(0)
    grip = np.stack(ep.column("action"))[:, 7]
    state = np.stack(ep.column("observation.state"))
    closed = np.flatnonzero(grip > 0.5)
    i = int(closed[0] + np.flatnonzero(grip[closed[0]:] < 0.5)[0])
    return state[i + 7, :3]  # the release waits 0.4 s (8 ticks) with the arm still


def test_typed_correction_moves_the_arm_and_the_episode_succeeds(tmp_path: Path) -> None:
    base = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--task", TASK, "--record", str(tmp_path / "base")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert base.returncode == 0, base.stderr

    child, term = spawn_run("--task", TASK, "--record", str(tmp_path / "typed"))
    try:
        term.expect(r"-> put it in the blue bowl")  # the arm is carrying the block now
        child.send("move 3 cm to the left\r")
        term.expect(r"<< shifting 'put it in the blue bowl' 3 cm left")
        term.expect(r"succeeded")  # was "SUCCESS": [learn-right] one outcome vocabulary
        term.wait_eof()
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "STOPPED" not in term.raw

    delta = release_ee(tmp_path / "typed") - release_ee(tmp_path / "base")
    assert delta == pytest.approx([0.0, 0.03, 0.0], abs=0.004)
    ep = Dataset(tmp_path / "typed").episode(0)
    events = ep.corrections()
    assert [e["text"] for e in events] == ["move 3 cm to the left"]
    assert events[0]["parsed"]["direction"] == [0.0, 1.0, 0.0]


def test_stop_and_continue_typed(tmp_path: Path) -> None:
    child, term = spawn_run("--task", TASK)
    try:
        term.expect(r"-> pick up the red block")
        child.send("stop\r")
        term.expect(r"<< stopped; holding still")
        term.expect(r"\[STOPPED\]")  # the status (the bottom toolbar) says so
        child.send("asdfgh\r")
        term.expect(r"<< sorry, I didn't understand 'asdfgh'")
        child.send("continue\r")
        term.expect(r"<< continuing: pick up the red block")
        term.expect(r"succeeded")  # was "SUCCESS": [learn-right] one outcome vocabulary
        term.wait_eof()
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "[STOPPED]" not in term.text()  # the status went with the prompt at the end


@pytest.mark.kb
def test_the_operator_reviews_what_was_learned(tmp_path: Path) -> None:
    """`--learn ask`: at the end the console lists each lesson with its scope; 'n' drops it (recorded)."""
    from corrections_kb.store import SqliteKnowledgeStore

    kb = tmp_path / "kb.sqlite"
    child, term = spawn_run("--task", TASK, "--kb", str(kb), "--learn", "ask", timeout=90)
    try:
        term.expect(r"-> pick up the red block")
        child.send("stop\r")
        term.expect(r"<< stopped; holding still")
        child.send("move 1 cm to the left\r")
        term.expect(r"<< moving 1 cm left \(still stopped\)")
        child.send("continue\r")
        # (the block stands turned: the robot's left is one of its own axes)
        term.expect(r"I learned: grasp the red block 1 cm along [+-][xy] in the block's frame \[red block only, "
                    r"when I pick[^\]]*\]\. Keep it\? \[Y/n/e\]", timeout=90)
        child.send("n\r")
        term.wait_eof(90)
    finally:
        child.close()
    assert child.exitstatus == 0, term.text()
    with SqliteKnowledgeStore(kb) as store:
        (item,) = store.list(active_only=False)
        assert not item.active and item.provenance["review"] == "rejected"


# ----- [robustness] a console that respects the operator -----
def test_typed_text_stays_on_the_input_line_while_events_scroll() -> None:
    """Characters typed but not yet submitted stay visible below new event lines; submitted, they reach the agent."""
    child, term = spawn_run("--task", TASK)
    try:
        term.expect(r"-> pick up the red block")
        child.send("move 3 cm")  # typed, not submitted
        term.expect(r"-> put it in the blue bowl")  # an event line arrives while the text waits
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # let the screen settle
            term.pump()
        screen = term.screen.display()
        row = term.screen.r
        assert "move 3 cm" in screen[row], f"typed text not on the cursor line:\n{term.text()}"
        above = [i for i, ln in enumerate(screen) if "-> put it in the blue bowl" in ln]
        assert above and above[-1] < row, term.text()  # output scrolled above the input line
        assert sum("move 3 cm" in ln for ln in screen) == 1, term.text()  # drawn once, not smeared
        child.send(" to the left\r")
        term.expect(r"<< shifting 'put it in the blue bowl' 3 cm left")
        term.wait_eof()
    finally:
        child.close()
    assert child.exitstatus == 0, term.text()


def test_the_final_summary_is_on_its_own_line() -> None:
    child, term = spawn_run("--task", TASK, "--no-realtime")
    try:
        term.wait_eof()
    finally:
        child.close()
    assert child.exitstatus == 0, term.text()
    lines = term.screen.lines()
    summary = [ln for ln in lines if re.search(SUMMARY + "succeeded", ln)]
    assert summary, term.text()
    assert re.match(SUMMARY + "succeeded", summary[-1]), f"summary glued onto another line: {summary[-1]!r}"
    assert lines[-1] == summary[-1], term.text()  # the last thing shown; no prompt or status left after it


def test_the_terminal_is_sane_after_the_run() -> None:
    """No raw mode left behind: after the run the same pty still echoes and reads lines (stty)."""
    cmd = f"{sys.executable} -m agent.cli run --task '{TASK}' --no-realtime; echo EXIT=$?; stty -a"
    child = pexpect.spawn("/bin/bash", ["-c", cmd], encoding="utf-8", timeout=60, dimensions=(ROWS, COLS))
    term = Term(child, ROWS, COLS)
    try:
        term.wait_eof()
    finally:
        child.close()
    text = term.text()
    assert "EXIT=0" in text, text
    flags = set(text.split("EXIT=0", 1)[1].split())
    assert {"echo", "icanon", "isig", "icrnl", "opost"} <= flags, text
    assert not {"-echo", "-icanon", "-isig"} & flags, text


def test_ctrl_c_interrupts_the_run_and_restores_the_terminal() -> None:
    cmd = f"{sys.executable} -m agent.cli run --task '{TASK}'; echo EXIT=$?; stty -a"
    child = pexpect.spawn("/bin/bash", ["-c", cmd], encoding="utf-8", timeout=60, dimensions=(ROWS, COLS))
    term = Term(child, ROWS, COLS)
    try:
        term.expect(r"-> pick up the red block")
        child.send("\x03")
        term.expect(r"EXIT=130")
        term.wait_eof()
    finally:
        child.close()
    text = term.text()
    assert "corrigo: interrupted" in text and "Traceback" not in text, text
    flags = set(text.split("EXIT=130", 1)[1].split())
    assert {"echo", "icanon", "isig"} <= flags, text
