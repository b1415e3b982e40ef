"""The smoke suite of the learning-from-corrections benchmark, as CI runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kb


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eval")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "eval", "--suite", "smoke", "--out", str(out), "--workers", "2"],
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, json.loads((out / "eval_info.json").read_text())


def test_fewer_corrections_in_the_last_round(smoke) -> None:
    _, info = smoke
    rounds = info["rounds"]
    assert len(rounds) == 2
    assert rounds[0]["corrections_per_episode"] > 0, "round 1 must need corrections, or nothing is measured"
    assert rounds[-1]["corrections_per_episode"] < rounds[0]["corrections_per_episode"]
    assert all(r["success_rate"] >= 0.75 for r in rounds)


def test_nothing_learned_applies_to_negative_controls(smoke) -> None:
    _, info = smoke
    neg = [e for e in info["episodes"] if e["phase"] == "negative" and e["knowledge_base"]]
    assert neg and all(e["knowledge_applied"] == [] for e in neg)
    assert info["negative_controls"]["false_apply_rate"] == 0.0


def test_the_baseline_keeps_needing_corrections(smoke) -> None:
    _, info = smoke
    base = info["baseline_no_kb"]["rounds"]
    assert base[-1]["corrections_per_episode"] >= 0.5 * base[0]["corrections_per_episode"] > 0


def test_outputs_and_records(smoke) -> None:
    out, info = smoke
    assert (out / "eval.png").stat().st_size > 10_000 and (out / "report.md").read_text().startswith("# corrigo eval")
    ep = info["episodes"][0]
    for key in ("seed", "task", "round", "success", "corrections", "knowledge_applied"):
        assert key in ep
    assert any(k["kind"] == "skill" for k in info["knowledge_base"]) and any(k["kind"] == "task" for k in info["knowledge_base"])


def test_bad_suite_is_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "eval", "--suite", "nope"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "unknown suite 'nope'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory) -> dict:
    """The adversarial suite, small: two episodes per scenario and round, no baseline."""
    out = tmp_path_factory.mktemp("adversarial")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "eval", "--suite", "adversarial", "--episodes", "2",
                           "--out", str(out), "--workers", "2", "--no-baseline"],
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "eval_info.json").read_text())


def test_the_adversarial_suite_learns_no_wrong_lesson(adversarial) -> None:
    sc = adversarial["scenarios"]
    for tempting in ("late_nudge", "instead_failed", "one_off"):
        assert sc[tempting]["rounds"][0] > 0, f"{tempting}: the operator must have corrected, or nothing is tested"
        assert sc[tempting]["items_learned"] == 0, (tempting, sc[tempting])
    assert adversarial["learning"]["false_learn_rate"] == 0.0 and adversarial["learning"]["items_learned"] > 0
    assert adversarial["negative_controls"]["false_apply_rate"] == 0.0


def test_the_adversarial_suite_still_learns_the_right_lessons(adversarial) -> None:
    sc = adversarial["scenarios"]
    assert sc["revoked"]["rounds"][1] > 0 and sc["revoked"]["rounds"][-1] == 0  # the wish changed, then it was kept
    assert sc["two_operators"]["rounds"][-1] < sc["two_operators"]["rounds"][0]
    assert sc["jug_thrice"]["heldout"]["corrections_per_episode"] < sc["jug_thrice"]["rounds"][0]
    assert sc["block_once"]["negative_false_apply"] == 0 and sc["block_once"]["rounds"][-1] == 0
    assert all(adversarial["criteria"].values()), adversarial["criteria"]
