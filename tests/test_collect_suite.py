"""`corrigo collect --suite`: correction episodes with the simulated operator, recorded for retraining."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from policies.dataset import Dataset
from policies.learned.data import load_samples
from skills.library import default_library


def test_collect_on_a_suite_records_operator_instructions(tmp_path: Path) -> None:
    out = tmp_path / "rollouts"
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "collect", "--policy", "rule_based", "--suite", "standard",
                           "--episodes", "1", "--start-seed", "3", "--operator", "sim", "--cameras", "", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(next(out.glob("collect_info-*.json")).read_text())
    assert {r["task"] for r in info["episodes"]} == {"jug_handle", "fruit_basket", "cup_means_mug", "banana_first"}
    assert all(r["success"] for r in info["episodes"]), [r for r in info["episodes"] if not r["success"]]
    # the operator's "no, I meant the mug" re-grounds the pick: recorded as an operator instruction
    ep = Dataset(out / "cup_means_mug").episode(0)
    ops = {i for i, s in zip(ep.instructions(), ep.instruction_sources()) if s == "operator"}
    assert "pick up the mug" in ops
    assert ep.corrections() and ep.corrections()[0]["parsed"]["kind"] == "object"
    # as training data, "pick up the mug" replaces the policy's "pick up the cup" at its decision
    samples, _ = load_samples([out / "cup_means_mug"], default_library())
    first = min((s for s in samples if s.episode == 0), key=lambda s: s.frame)
    assert first.target.text == "pick up the mug" and first.correction and first.history == []
    assert not any(s.target.text == "pick up the cup" for s in samples)


def test_policy_eval_on_a_suite_is_autonomous(tmp_path: Path) -> None:
    js = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "policy-eval", "--policy", "rule_based", "--suite", "smoke",
                           "--episodes", "1", "--cameras", "", "--json", str(js)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(js.read_text())["episodes"]
    assert rows and all(r["corrections"] == 0 for r in rows)
    # without its knowledge or an operator, the rule-based policy cannot know the hidden wishes
    assert not any(r["success"] for r in rows)

    # learn-report turns a learn_iterations run's eval files into a table and a plot
    run = tmp_path / "learn"
    run.mkdir()
    for name in ("eval-0.json", "eval-0-suite.json"):
        (run / name).write_text(js.read_text())
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "learn-report", "--out", str(run)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (run / "learning.md").read_text()
    n = len(rows)
    assert f"| policy-0 | 0% (0/{n}) | - | 0% (0/{n}) |" in table, table
    assert (run / "learning.png").read_bytes()[:4] == b"\x89PNG"
    (run / "eval-0.json").write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "learn-report", "--out", str(run)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not a policy-eval result" in proc.stderr


def test_collect_needs_env_or_suite(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "collect", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "exactly one of --env" in proc.stderr
