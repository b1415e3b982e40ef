"""`corrigo run` in a real pseudo-terminal: type a correction while the arm moves."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pexpect
import pytest

from policies.dataset import Dataset

TASK = "put the red block in the blue bowl"


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

    child = pexpect.spawn(sys.executable, ["-m", "agent.cli", "run", "--task", TASK, "--record", str(tmp_path / "typed")],
                          encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        child.expect(r"-> put it in the blue bowl")  # the arm is carrying the block now
        child.sendline("move 3 cm to the left")
        child.expect(r"<< shifting 'put it in the blue bowl' 3 cm left")
        child.expect(r"succeeded")  # was "SUCCESS": [learn-right] one outcome vocabulary
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "STOPPED" not in child.before

    delta = release_ee(tmp_path / "typed") - release_ee(tmp_path / "base")
    assert delta == pytest.approx([0.0, 0.03, 0.0], abs=0.004)
    ep = Dataset(tmp_path / "typed").episode(0)
    events = ep.corrections()
    assert [e["text"] for e in events] == ["move 3 cm to the left"]
    assert events[0]["parsed"]["direction"] == [0.0, 1.0, 0.0]


def test_stop_and_continue_typed(tmp_path: Path) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "agent.cli", "run", "--task", TASK], encoding="utf-8", timeout=60,
                          dimensions=(40, 200))
    try:
        child.expect(r"-> pick up the red block")
        child.sendline("stop")
        child.expect(r"<< stopped; holding still")
        child.expect(r"\[STOPPED\]")  # the status line says so
        child.sendline("asdfgh")
        child.expect(r"<< sorry, I didn't understand 'asdfgh'")
        child.sendline("continue")
        child.expect(r"<< continuing: pick up the red block")
        child.expect(r"succeeded")  # was "SUCCESS": [learn-right] one outcome vocabulary
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


@pytest.mark.kb
def test_the_operator_reviews_what_was_learned(tmp_path: Path) -> None:
    """`--learn ask`: at the end the console lists each lesson with its scope; 'n' drops it (recorded)."""
    from corrections_kb.store import SqliteKnowledgeStore

    kb = tmp_path / "kb.sqlite"
    child = pexpect.spawn(sys.executable, ["-m", "agent.cli", "run", "--task", TASK, "--kb", str(kb), "--learn", "ask"],
                          encoding="utf-8", timeout=90, dimensions=(40, 200))
    try:
        child.expect(r"-> pick up the red block")
        child.sendline("stop")
        child.expect(r"<< stopped; holding still")
        child.sendline("move 1 cm to the left")
        child.expect(r"<< moving 1 cm left \(still stopped\)")
        child.sendline("continue")
        # (the block stands turned: the robot's left is one of its own axes)
        child.expect(r"I learned: grasp the red block 1 cm along [+-][xy] in the block's frame \[red block only, "
                     r"when I pick[^\]]*\]\. Keep it\? \[Y/n/e\]")
        child.sendline("n")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    with SqliteKnowledgeStore(kb) as store:
        (item,) = store.list(active_only=False)
        assert not item.active and item.provenance["review"] == "rejected"
