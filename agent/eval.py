"""The learning-from-corrections benchmark: rounds with a simulated operator and one
knowledge base carried across them, then held-out instances and negative controls,
and the same episodes again with the knowledge base off.

Within a round every episode reads the knowledge base as it stood at the start of the
round; what episodes learn is committed after the round, in episode order. So the
result does not depend on how many workers run the episodes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from robot.errors import CorrigoError


@dataclass(frozen=True)
class EpisodeSpec:
    index: int
    scenario: str
    phase: str  # train | heldout | negative
    seed: int
    round: int  # 1.. for train; 0 for held-out and negative controls
    use_kb: bool


@dataclass
class EvalConfig:
    suite: str = "smoke"
    rounds: int | None = None
    episodes: int | None = None
    robot: str = "sim:pybullet"
    out: str = "eval_out"
    workers: int = 2
    start_seed: int = 0
    noise: float = 0.0
    baseline: bool = True
    max_episode_s: float = 90.0

    def __post_init__(self) -> None:
        from sim.scenarios import SUITES

        if self.suite not in SUITES:
            raise CorrigoError(f"unknown suite {self.suite!r} (known: {', '.join(SUITES)})")
        suite = SUITES[self.suite]
        self.rounds = suite.rounds if self.rounds is None else self.rounds
        self.episodes = suite.episodes if self.episodes is None else self.episodes
        if self.rounds < 1 or self.episodes < 1:
            raise CorrigoError("--rounds and --episodes must be at least 1")
        if not 1 <= self.workers <= 64:
            raise CorrigoError("--workers must be between 1 and 64")
        if not 0.0 <= self.noise <= 1.0:
            raise CorrigoError("--noise must be in [0, 1]")


def run_episode(spec: EpisodeSpec, robot: str, kb_path: str | None, noise: float, max_s: float, *,
                policy: Any = "rule_based", operator: bool = True, recorder: Any = None, cameras: tuple[str, ...] = (),
                image_size: int = 96) -> dict[str, Any]:
    """One scenario episode: returns its record plus what it learned (not yet committed).

    `operator=False` keeps the simulated operator silent (it still watches, to judge
    hidden wishes such as an order); `recorder` records the episode (in-process only)."""
    from agent.knowledge import KnowledgeBridge
    from agent.loop import Agent, AgentConfig
    from agent.operator_link import attach_operator
    from agent.runner import build_robot
    from corrections_kb.store import SqliteKnowledgeStore
    from sim.operator import OperatorConfig, SimulatedOperator
    from sim.scenarios import instance

    from agent.runner import build_policy

    inst = instance(spec.scenario, spec.phase, spec.seed, spec.round)
    arm = build_robot(robot, scene=inst.scene, seed=spec.seed, cameras=cameras, image_size=image_size)
    arm.connect()
    bridge = None
    try:
        if spec.use_kb and kb_path:
            bridge = KnowledgeBridge(SqliteKnowledgeStore(kb_path), operator=inst.operator or "simulated operator",
                                     user=inst.operator, defer=True, learn=spec.phase == "train")
        pol = build_policy(policy) if isinstance(policy, str) else policy
        # with the operator correcting, it may also object when the agent says it is done
        agent = Agent(arm, pol, config=AgentConfig(max_episode_s=max_s, done_grace_s=1.5 if operator else 0.0),
                      knowledge=bridge, recorder=recorder)
        watcher = SimulatedOperator(arm, inst.intents, OperatorConfig(seed=spec.seed, noise=noise, silent=not operator))
        attach_operator(agent, watcher)
        t0 = time.perf_counter()
        result = agent.run(inst.task, success=lambda: inst.is_success(arm.scene_objects()),
                           episode_id=f"{spec.phase}-r{spec.round}-{spec.scenario}-{spec.seed}")
        success = bool(result.success)
        record = {
            "index": spec.index, "seed": spec.seed, "task": inst.task, "scenario": spec.scenario, "phase": spec.phase,
            "round": spec.round, "knowledge_base": spec.use_kb, "success": bool(success),
            "outcome": result.outcome.word, "outcome_reason": result.outcome.reason,
            "corrections": len(result.corrections), "utterances": [c.text for c in result.corrections],
            "knowledge_applied": [k["statement"] for k in result.knowledge_applied],
            "duration_s": round(result.duration_s, 2), "wall_s": round(time.perf_counter() - t0, 2),
            "done_reason": result.done_reason, "steps": [s.instruction for s in result.steps],
        }
        uses = list(bridge.pending_uses) if bridge else []
        items = list(bridge.pending_items) if bridge else []
        record["learned"] = [k.statement for k in items]
        record["false_learned"] = [k.statement for k in items if not inst.acceptable(k)]  # a person would reject these
        return {"record": record, "uses": uses, "items": items}
    finally:
        if bridge is not None:
            bridge.close()
        arm.disconnect()


def _run_all(specs: list[EpisodeSpec], cfg: EvalConfig, kb_path: str | None, pool: Any, bar: Any) -> list[dict[str, Any]]:
    futures = [pool.submit(run_episode, s, cfg.robot, kb_path, cfg.noise, cfg.max_episode_s) for s in specs] if pool else None
    out = []
    for i, s in enumerate(specs):
        res = futures[i].result() if futures else run_episode(s, cfg.robot, kb_path, cfg.noise, cfg.max_episode_s)
        out.append(res)
        r = res["record"]
        bar.set_postfix_str(f"{r['phase']} r{r['round']} {r['scenario']}: {r['outcome']}, {r['corrections']} corr")
        bar.update(1)
    return out


def run_suite(cfg: EvalConfig) -> dict[str, Any]:
    from tqdm import tqdm

    from agent.knowledge import commit
    from corrections_kb.store import SqliteKnowledgeStore
    from sim.scenarios import SUITES

    suite = SUITES[cfg.suite]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    kb_path = out / "kb.sqlite"
    for p in out.glob("kb.sqlite*"):  # every evaluation starts from an empty knowledge base
        p.unlink()
    SqliteKnowledgeStore(kb_path).close()
    assert cfg.rounds is not None and cfg.episodes is not None
    n_eval = len(suite.scenarios) * cfg.episodes
    total = (cfg.rounds * n_eval + 2 * n_eval) * (2 if cfg.baseline else 1)
    records: list[dict[str, Any]] = []
    idx = 0

    def specs(phase: str, rnd: int, use_kb: bool) -> list[EpisodeSpec]:
        nonlocal idx
        base = cfg.start_seed + (1000 * rnd if phase == "train" else {"heldout": 50_000, "negative": 60_000}[phase])
        made = []
        for sc in suite.scenarios:
            for i in range(cfg.episodes or 0):
                made.append(EpisodeSpec(idx, sc, phase, base + i, rnd, use_kb))
                idx += 1
        return made

    ctx = get_context("fork") if os.name == "posix" else get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx) if cfg.workers > 1 else None
    try:
        # a bar that redraws in a terminal, and prints now and then in a CI log
        with tqdm(total=total, desc=f"eval {cfg.suite}", unit="ep", mininterval=0.5 if sys.stderr.isatty() else 10) as bar:
            for use_kb in ((True, False) if cfg.baseline else (True,)):
                for rnd in range(1, cfg.rounds + 1):
                    results = _run_all(specs("train", rnd, use_kb), cfg, str(kb_path) if use_kb else None, pool, bar)
                    records += [r["record"] for r in results]
                    if use_kb:  # commit what the round learned, in episode order
                        with SqliteKnowledgeStore(kb_path) as store:
                            for r in results:
                                commit(store, r["uses"], r["items"])
                for phase in ("heldout", "negative"):
                    results = _run_all(specs(phase, 0, use_kb), cfg, str(kb_path) if use_kb else None, pool, bar)
                    records += [r["record"] for r in results]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    with SqliteKnowledgeStore(kb_path) as store:
        learned = [{"id": k.id, "kind": k.kind, "statement": k.statement, "uses": k.uses, "successes": k.successes,
                    "contradictions": k.contradictions} for k in store.list(kind=None)]
    info = summarize(records, cfg, learned)
    (out / "eval_info.json").write_text(json.dumps(info, indent=2))
    plot(info, out / "eval.png")
    (out / "report.md").write_text(report(info))
    return info


def _agg(rs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rs)
    return {"episodes": n, "success_rate": round(sum(r["success"] for r in rs) / n, 4) if n else None,
            "corrections_per_episode": round(sum(r["corrections"] for r in rs) / n, 3) if n else None,
            "outcomes": outcome_counts(rs)}


def outcome_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many episodes ended each way (rows without an outcome count by their success)."""
    from agent.episode import FAILED, OUTCOMES, SUCCEEDED

    counts = dict.fromkeys(OUTCOMES, 0)
    for r in rows:
        counts[r.get("outcome") or (SUCCEEDED if r["success"] else FAILED)] += 1
    return counts


def say_outcomes(counts: dict[str, int]) -> str:
    """'9 succeeded, 1 failed' (outcomes that did not happen are left out)."""
    return ", ".join(f"{n} {word}" for word, n in counts.items() if n) or "no episodes"


def _learning(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """Lessons distilled (before the store merges repeats) and the share a person would reject."""
    learned = sum(len(r.get("learned", [])) for r in rs)
    false = sum(len(r.get("false_learned", [])) for r in rs)
    return {"items_learned": learned, "items_false": false, "false_learn_rate": round(false / learned, 4) if learned else 0.0}


def _scenario(rs: list[dict[str, Any]], scenario: str) -> dict[str, Any]:
    mine = [r for r in rs if r["scenario"] == scenario]
    rounds = sorted({r["round"] for r in mine if r["phase"] == "train"})
    neg = [r for r in mine if r["phase"] == "negative"]
    return {"rounds": [_agg([r for r in mine if r["phase"] == "train" and r["round"] == n])["corrections_per_episode"]
                       for n in rounds],
            "heldout": _agg([r for r in mine if r["phase"] == "heldout"]),
            "negative_false_apply": sum(bool(r["knowledge_applied"]) for r in neg),
            "false_learned": sorted({s for r in mine for s in r.get("false_learned", [])}), **_learning(mine)}


def summarize(records: list[dict[str, Any]], cfg: EvalConfig, learned: list[dict[str, Any]]) -> dict[str, Any]:
    def part(use_kb: bool) -> dict[str, Any]:
        rs = [r for r in records if r["knowledge_base"] == use_kb]
        rounds = []
        for rnd in sorted({r["round"] for r in rs if r["phase"] == "train"}):
            rounds.append({"round": rnd, **_agg([r for r in rs if r["phase"] == "train" and r["round"] == rnd])})
        neg = [r for r in rs if r["phase"] == "negative"]
        return {
            "rounds": rounds,
            "heldout": _agg([r for r in rs if r["phase"] == "heldout"]),
            "negative_controls": {**_agg(neg), "false_apply_rate":
                                  round(sum(bool(r["knowledge_applied"]) for r in neg) / len(neg), 4) if neg else None},
            "learning": _learning(rs),
            "scenarios": {sc: _scenario(rs, sc) for sc in dict.fromkeys(r["scenario"] for r in rs)},
        }

    with_kb = part(True)
    info: dict[str, Any] = {
        "suite": cfg.suite, "robot": cfg.robot, "rounds_requested": cfg.rounds, "episodes_per_scenario": cfg.episodes,
        "start_seed": cfg.start_seed, "noise": cfg.noise, "episodes": records,
        "rounds": with_kb["rounds"], "heldout": with_kb["heldout"], "negative_controls": with_kb["negative_controls"],
        "learning": with_kb["learning"], "scenarios": with_kb["scenarios"], "knowledge_base": learned,
    }
    if cfg.baseline:
        info["baseline_no_kb"] = part(False)
    info["criteria"] = criteria(info)
    return info


def criteria(info: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, evaluated on this run."""
    if info["suite"] == "adversarial":
        return adversarial_criteria(info)
    rounds = info["rounds"]
    first, last = rounds[0]["corrections_per_episode"], rounds[-1]["corrections_per_episode"]
    c: dict[str, Any] = {
        "success_with_corrections_every_round_ge_95": all(r["success_rate"] >= 0.95 for r in rounds),
        "last_round_corrections_le_20pct_of_first": first > 0 and last <= 0.2 * first,
        "heldout_corrections_le_30pct_of_first": first > 0 and info["heldout"]["corrections_per_episode"] <= 0.3 * first,
        "negative_controls_false_apply_lt_5pct": (info["negative_controls"]["false_apply_rate"] or 0) < 0.05,
        "fewer_corrections_in_last_round": last < first,
        "false_learn_le_2pct": info["learning"]["false_learn_rate"] <= 0.02,
    }
    base = info.get("baseline_no_kb")
    if base:
        b_first, b_last = base["rounds"][0]["corrections_per_episode"], base["rounds"][-1]["corrections_per_episode"]
        c["negative_controls_keep_success"] = info["negative_controls"]["success_rate"] >= base["negative_controls"]["success_rate"]
        c["baseline_shows_no_such_drop"] = b_first > 0 and b_last > 0.5 * b_first
    return c


def adversarial_criteria(info: dict[str, Any]) -> dict[str, Any]:
    """What the adversarial suite must show: no wrong lessons, none applied where they do not belong,
    and the lessons that are right still learned (a revision takes, two operators keep their own,
    three instances generalise, one instance stays with its instance)."""
    sc = info["scenarios"]

    def dropped(name: str, to: float = 0.2) -> bool:
        r = sc[name]["rounds"]
        return r[0] > 0 and r[-1] <= to * r[0]

    return {
        "false_learn_le_2pct": info["learning"]["false_learn_rate"] <= 0.02,
        "negative_controls_false_apply_le_2pct": (info["negative_controls"]["false_apply_rate"] or 0) <= 0.02,
        "nothing_learned_from_late_nudges_failed_episodes_or_one_offs":
            all(sc[n]["items_learned"] == 0 for n in ("late_nudge", "instead_failed", "one_off") if n in sc),
        "a_revoked_preference_is_replaced": "revoked" not in sc or sc["revoked"]["rounds"][-1] == 0,
        "two_operators_keep_their_own": "two_operators" not in sc or dropped("two_operators"),
        "three_instances_generalise": "jug_thrice" not in sc or
            sc["jug_thrice"]["heldout"]["corrections_per_episode"] <= 0.3 * sc["jug_thrice"]["rounds"][0],
        "one_instance_stays_with_it": "block_once" not in sc or
            (dropped("block_once") and sc["block_once"]["negative_false_apply"] == 0),
    }


def plot(info: dict[str, Any], path: Path) -> None:
    """Corrections per episode and success per round, with and without the knowledge base."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    rounds = [r["round"] for r in info["rounds"]]
    held_x = rounds[-1] + 1
    for key, label, style, colour in (("", "with knowledge base", "o-", "tab:blue"),
                                      ("baseline_no_kb", "without (corrections forgotten)", "s--", "tab:red")):
        part = info if not key else info.get(key)
        if not part:
            continue
        xs = [r["round"] for r in part["rounds"]]
        ax1.plot(xs, [r["corrections_per_episode"] for r in part["rounds"]], style, color=colour, label=label)
        ax1.plot([held_x], [part["heldout"]["corrections_per_episode"]], "*" if not key else "x", color=colour, markersize=12)
        ax2.plot(xs, [100 * r["success_rate"] for r in part["rounds"]], style, color=colour, label=label)
        ax2.plot([held_x], [100 * part["heldout"]["success_rate"]], "*" if not key else "x", color=colour, markersize=12)
    ticks = rounds + [held_x]
    for ax in (ax1, ax2):
        ax.set_xticks(ticks, [str(r) for r in rounds] + ["held-out"])
        ax.set_xlabel("round")
        ax.legend(fontsize=8)
    ax1.set(ylabel="operator corrections per episode", title="corrections")
    ax1.set_ylim(bottom=-0.05 * max(1.0, ax1.get_ylim()[1]))
    ax2.set(ylabel="success with corrections (%)", title="success", ylim=(0, 105))
    fig.suptitle(f"corrigo eval --suite {info['suite']} ({info['robot']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(info: dict[str, Any]) -> str:
    lines = [f"# corrigo eval: suite `{info['suite']}` on `{info['robot']}`", "",
             "| | episodes | success | corrections / episode |", "| --- | --- | --- | --- |"]
    for r in info["rounds"]:
        b = next((x for x in info.get("baseline_no_kb", {}).get("rounds", []) if x["round"] == r["round"]), None)
        extra = f" (no KB: {b['corrections_per_episode']:.2f})" if b else ""
        lines.append(f"| round {r['round']} | {r['episodes']} | {100 * r['success_rate']:.0f}% | "
                     f"{r['corrections_per_episode']:.2f}{extra} |")
    h, n = info["heldout"], info["negative_controls"]
    lines.append(f"| held-out | {h['episodes']} | {100 * h['success_rate']:.0f}% | {h['corrections_per_episode']:.2f} |")
    lines.append(f"| negative controls | {n['episodes']} | {100 * n['success_rate']:.0f}% | "
                 f"{n['corrections_per_episode']:.2f} (false apply {100 * n['false_apply_rate']:.0f}%) |")
    lines += ["", "Outcomes, with the knowledge base: " + say_outcomes(outcome_counts(
        [r for r in info["episodes"] if r["knowledge_base"]]))]
    learn = info["learning"]
    lines.append(f"\nLessons distilled: {learn['items_learned']}; a person would reject {learn['items_false']} "
                 f"(false-learn rate {100 * learn['false_learn_rate']:.1f}%).")
    lines += ["", "| scenario | corrections per round | held-out corrections | negative false apply | false lessons |",
              "| --- | --- | --- | --- | --- |"]
    for sc, v in info["scenarios"].items():
        lines.append(f"| {sc} | {' / '.join(f'{c:.2f}' for c in v['rounds'])} | {v['heldout']['corrections_per_episode']:.2f} | "
                     f"{v['negative_false_apply']} | {v['items_false']} of {v['items_learned']} |")
    lines += ["", "## Criteria", ""] + [f"- {'PASS' if v else 'FAIL'}: {k.replace('_', ' ')}" for k, v in info["criteria"].items()]
    lines += ["", "## What the knowledge base learned", ""]
    lines += [f"- [{k['kind']}] {k['statement']} (used {k['uses']}x, {k['successes']} ok, {k['contradictions']} contradicted)"
              for k in info["knowledge_base"]]
    return "\n".join(lines) + "\n"


__all__ = ["EvalConfig", "EpisodeSpec", "run_suite", "summarize"]
