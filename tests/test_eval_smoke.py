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
