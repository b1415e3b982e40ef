"""`corrigo collect`, `corrigo train`, `corrigo policy-eval`: the batch-retraining loop.

    corrigo collect --policy rule_based --env corrigo/PickPlace-v0,corrigo/Stack-v0 --episodes 20 --out runs/demos
    corrigo train --data runs/demos --out runs/policy-0 --epochs 30
    corrigo collect --policy learned:runs/policy-0 --env ... --operator none --out runs/rollouts-1
    corrigo train --data runs/demos runs/rollouts-1 --init runs/policy-0 --out runs/policy-1 --correction-share 0.1
    corrigo policy-eval --policy learned:runs/policy-1 --env all --episodes 10 --phrasings heldout

`collect` records every episode (LeRobotDataset v3, one dataset per env: OUT/<Task>/) and
prints the success rate; `policy-eval` only measures. Operators that inject corrections
while collecting plug in through `OPERATORS` (name -> hook(agent, env_id, seed), called
before the episode starts; it may `agent.schedule(t, text)` or keep `agent` to `submit`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from agent.cli import _EXTRA_PARSERS, command
from agent.cli_args import check_out_dir, check_out_file, float_in, int_in, positive_float, positive_int, seed
from robot.errors import CorrigoError

OperatorHook = Callable[[Any, str, int], None]


def _no_operator(agent: Any, env: str, seed: int) -> None:
    """No corrections: the policy acts alone."""


OPERATORS: dict[str, OperatorHook] = {"none": _no_operator}
# With --suite, `--operator sim` is the scenario's simulated operator (see run_suite_episodes).


def register_operator(name: str, hook: OperatorHook) -> None:
    """Make `--operator NAME` available to `corrigo collect` (e.g. a simulated operator)."""
    OPERATORS[name] = hook


# ----- parsers -----
def _episode_options(p: argparse.ArgumentParser, cameras_default: str) -> None:
    p.add_argument("--env", help="comma-separated envs, e.g. corrigo/PickPlace-v0,corrigo/Stack-v0, or 'all'")
    p.add_argument("--suite", help="instead of --env: the scenarios of a learning-benchmark suite (smoke, standard), "
                   "judged with the operator's hidden wishes")
    p.add_argument("--phase", default="train", choices=("train", "heldout", "negative"), help="with --suite: which instances")
    p.add_argument("--episodes", type=positive_int, default=10, help="episodes per env (seeds start-seed .. start-seed+N-1)")
    p.add_argument("--robot", default="sim:pybullet", help="a simulated body: sim:pybullet or sim:mujoco")
    p.add_argument("--cameras", default=cameras_default,
                   help="cameras to render (and record): front,wrist, '' for none, 'auto' = what the policy uses "
                        f"(default: {cameras_default!r})")
    p.add_argument("--image-size", type=int_in(8, 1024), default=96, help="camera image size, pixels (8..1024)")
    p.add_argument("--max-time", type=positive_float, default=90.0, help="episode time limit, s (simulated)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("collect", help="run a policy over many seeds and record every episode (one dataset per env)")
    c.add_argument("--policy", default="rule_based", help="high-level policy: rule_based, learned:PATH")
    _episode_options(c, "front")
    c.add_argument("--start-seed", type=seed, default=0)
    c.add_argument("--out", required=True, help="output folder; each env's episodes go to OUT/<Task>/")
    c.add_argument("--operator", default="none", help="who corrects the robot while collecting (available: "
                   + ", ".join(sorted(OPERATORS)) + ")")
    c.add_argument("--kb", help="knowledge base to retrieve from (a path, sqlite:PATH, new:PATH, default or none)")

    t = sub.add_parser("train", help="train the learned high-level policy from recorded episodes")
    t.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="datasets (or folders of datasets, e.g. collect's OUT)")
    t.add_argument("--out", required=True, help="checkpoint directory (use it as --policy learned:OUT)")
    t.add_argument("--epochs", type=positive_int, default=30)
    t.add_argument("--correction-share", type=float_in(0, 0.99), default=0.1,
                   help="share of every batch drawn from operator-correction samples when there are any (YAY: 0.1)")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    t.add_argument("--init", metavar="CKPT", help="start from this policy's weights (fine-tuning on new data)")
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--batch-size", type=int_in(2, 1_000_000), default=32)
    t.add_argument("--lr", type=float_in(0, 10, lo_open=True), default=2e-3)
    t.add_argument("--val-fraction", type=float_in(0, 0.99), default=0.15, help="share of episodes held out for validation")
    t.add_argument("--images", choices=("auto", "off"), default="auto", help="use camera images when recorded (auto)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars (there are none when stderr is not a terminal)")

    e = sub.add_parser("policy-eval", help="success rate of a high-level policy on benchmark envs (no recording)")
    e.add_argument("--policy", default="rule_based", help="high-level policy: rule_based, learned:PATH")
    _episode_options(e, "auto")
    e.add_argument("--start-seed", type=seed, default=1000, help="first seed (default 1000: away from collect's 0..)")
    e.add_argument("--phrasings", default="default",
                   help="task sentences: 'default' (the env's own), 'heldout' (policies/learned/heldout_phrasings.yaml) "
                        "or a YAML file of that form")
    e.add_argument("--json", help="write per-episode results and aggregates to this file")


    r = sub.add_parser("learn-report", help="table and plot of a learn-iterations run (scripts/learn_iterations.sh)")
    r.add_argument("--out", required=True, help="the run's folder (OUT of learn_iterations.sh)")


_EXTRA_PARSERS.append(add_parsers)


# ----- running episodes -----
def parse_envs(spec: str) -> list[str]:
    from sim.tasks import TASKS, env_id, get_task

    if spec.strip() == "all":
        return [env_id(t) for t in TASKS]
    envs = [s.strip() for s in spec.split(",") if s.strip()]
    if not envs:
        raise CorrigoError("--env is empty; give e.g. corrigo/PickPlace-v0")
    return [env_id(get_task(e).name) for e in envs]


def _cameras(spec: str, policy: Any, image_size: int) -> tuple[tuple[str, ...], int]:
    if spec == "auto":
        key = getattr(policy, "image_key", None)
        if not key:
            return (), image_size
        shape = (getattr(policy, "config", {}) or {}).get("train", {}).get("image_shape")
        return (key.rsplit(".", 1)[-1],), int(shape[0]) if shape else image_size
    return tuple(c.strip() for c in spec.split(",") if c.strip()), image_size


def run_episodes(policy: Any, envs: list[str], start_seed: int, episodes: int, *, robot_spec: str = "sim:pybullet",
                 cameras: str = "auto", image_size: int = 96, max_time: float = 90.0, record_to: str | Path | None = None,
                 operator: str = "none", phrasings: str = "default", knowledge: Any = None, progress: bool = True,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run `policy` (a spec string or a HighLevelPolicy) on each env for seeds start_seed.. and return per-episode rows."""
    from agent.runner import build_policy, build_robot, make_agent
    from sim.tasks import get_task

    if not robot_spec.startswith("sim:"):
        raise CorrigoError(f"collect and policy-eval run simulated bodies only (sim:pybullet, sim:mujoco), not {robot_spec!r}")
    if episodes < 1:
        raise CorrigoError(f"--episodes must be at least 1, got {episodes}")
    if operator not in OPERATORS:
        raise CorrigoError(f"unknown operator {operator!r} (available: {', '.join(sorted(OPERATORS))})")
    heldout = None
    if phrasings != "default":
        from policies.learned.heldout import load_heldout

        heldout = load_heldout(None if phrasings == "heldout" else phrasings)
    pol = build_policy(policy) if isinstance(policy, str) else policy
    cams, size = _cameras(cameras, pol, image_size)
    rows: list[dict[str, Any]] = []
    for env in envs:
        task = get_task(env)
        seeds = range(start_seed, start_seed + episodes)
        robot = build_robot(robot_spec, scene=task.scene, seed=start_seed, cameras=cams, image_size=size)
        robot.connect()
        recorder = None
        try:
            if record_to is not None:
                from agent.recorder import EpisodeRecorder

                recorder = EpisodeRecorder(Path(record_to) / task.name, 1.0 / robot.control_dt, robot.observation_features,
                                           robot.name)
            it: Any = seeds
            bar = None
            if progress:
                from tqdm import tqdm

                bar = it = tqdm(seeds, desc=f"{task.name:12}", unit="ep", leave=True, file=sys.stderr)
            ok = 0
            for n, seed in enumerate(it, 1):
                robot.reset(seed)  # type: ignore[attr-defined]
                inst = task.instantiate(robot.scene_objects(), seed)  # type: ignore[attr-defined]
                objects = robot.scene_objects()  # type: ignore[attr-defined]
                text = heldout.phrase(task.name, inst.goal, objects, seed) if heldout else inst.description
                agent = make_agent(robot, pol, max_episode_s=max_time, recorder=recorder, knowledge=knowledge)
                OPERATORS[operator](agent, env, seed)
                t0 = time.perf_counter()
                result = agent.run(text, lambda: inst.is_success(robot.scene_objects()))  # type: ignore[attr-defined]
                row = {"env": env, "task": task.name, "seed": seed, "text": text, "success": bool(result.success),
                       "outcome": result.outcome.word, "outcome_reason": result.outcome.reason,
                       "corrections": len(result.corrections), "steps": len(result.steps),
                       "instructions": [s.instruction for s in result.steps], "done_reason": result.done_reason,
                       "sim_s": round(result.duration_s, 2), "wall_s": round(time.perf_counter() - t0, 2)}
                rows.append(row)
                ok += row["success"]
                if bar is not None:
                    bar.set_postfix_str(f"success {ok}/{n}")
                if on_episode:
                    on_episode(row)
        finally:
            if recorder is not None:
                recorder.close()
            robot.disconnect()
    return rows


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from agent.eval import outcome_counts

    per: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = per.setdefault(r["task"], {"episodes": 0, "successes": 0})
        d["episodes"] += 1
        d["successes"] += int(r["success"])
    for name, d in per.items():
        d["pc_success"] = 100.0 * d["successes"] / d["episodes"]
        d["outcomes"] = outcome_counts([r for r in rows if r["task"] == name])
    n = len(rows)
    return {"per_task": per, "episodes": n, "successes": sum(r["success"] for r in rows),
            "pc_success": 100.0 * sum(r["success"] for r in rows) / n if n else 0.0, "outcomes": outcome_counts(rows)}


def print_summary(title: str, agg: dict[str, Any]) -> None:
    from agent.eval import say_outcomes

    print(title)
    for name, d in [*agg["per_task"].items(), ("all", agg)]:
        print(f"  {name:14} {d['successes']:3d}/{d['episodes']:<3d} {d['pc_success']:5.1f}%  ({say_outcomes(d['outcomes'])})",
              flush=True)


def run_suite_episodes(policy: Any, suite: str, phase: str, start_seed: int, episodes: int, *, robot_spec: str,
                       cameras: str, image_size: int, max_time: float, record_to: str | Path | None, operator: bool,
                       progress: bool) -> list[dict[str, Any]]:
    """Episodes over a suite's scenarios (one dataset per scenario), with the simulated operator
    correcting (`operator=True`) or silently judging."""
    from agent.eval import EpisodeSpec, run_episode
    from agent.runner import build_policy
    from sim.scenarios import SUITES, instance

    if suite not in SUITES:
        raise CorrigoError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
    pol = build_policy(policy) if isinstance(policy, str) else policy
    cams, size = _cameras(cameras, pol, image_size)
    rows: list[dict[str, Any]] = []
    for name in SUITES[suite].scenarios:
        recorder = None
        if record_to is not None:
            from agent.recorder import EpisodeRecorder
            from agent.runner import build_robot

            probe = build_robot(robot_spec, scene=instance(name, phase, start_seed).scene, cameras=cams, image_size=size)
            recorder = EpisodeRecorder(Path(record_to) / name, 1.0 / probe.control_dt, probe.observation_features, probe.name)
        seeds: Any = range(start_seed, start_seed + episodes)
        if progress:
            from tqdm import tqdm

            seeds = tqdm(seeds, desc=f"{name:14}", unit="ep", file=sys.stderr)
        try:
            for seed in seeds:
                spec = EpisodeSpec(len(rows), name, phase, seed, 0, False)
                rec = run_episode(spec, robot_spec, None, 0.0, max_time, policy=pol, operator=operator,
                                  recorder=recorder, cameras=cams, image_size=size)["record"]
                rows.append({"env": f"suite:{suite}", "task": name, "seed": seed, "text": rec["task"],
                             "success": rec["success"], "outcome": rec["outcome"], "outcome_reason": rec["outcome_reason"],
                             "corrections": rec["corrections"], "steps": len(rec["steps"]),
                             "instructions": rec["steps"], "done_reason": rec["done_reason"], "sim_s": rec["duration_s"],
                             "wall_s": rec["wall_s"]})
        finally:
            if recorder is not None:
                recorder.close()
    return rows


def _rows(args: argparse.Namespace, record_to: Path | None = None, operator: str = "none", knowledge: Any = None,
          phrasings: str = "default") -> list[dict[str, Any]]:
    if bool(args.env) == bool(args.suite):
        raise CorrigoError("give exactly one of --env (benchmark tasks) or --suite (learning-benchmark scenarios)")
    if args.suite:
        if operator not in ("none", "sim"):
            raise CorrigoError(f"with --suite the operator is 'sim' (corrects) or 'none' (silent), not {operator!r}")
        return run_suite_episodes(args.policy, args.suite, args.phase, args.start_seed, args.episodes,
                                  robot_spec=args.robot, cameras=args.cameras, image_size=args.image_size,
                                  max_time=args.max_time, record_to=record_to, operator=operator == "sim",
                                  progress=_progress(args))
    return run_episodes(args.policy, parse_envs(args.env), args.start_seed, args.episodes, robot_spec=args.robot,
                        cameras=args.cameras, image_size=args.image_size, max_time=args.max_time, record_to=record_to,
                        operator=operator, phrasings=phrasings, knowledge=knowledge, progress=_progress(args))


# ----- commands -----
def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()



@command("collect")
def cmd_collect(args: argparse.Namespace) -> int:
    from agent.cli import _open_kb

    out = check_out_dir(args.out, "--out")
    knowledge = _open_kb(args.kb)
    try:
        rows = _rows(args, record_to=out, operator=args.operator, knowledge=knowledge)
    finally:
        if knowledge is not None and hasattr(knowledge, "close"):
            knowledge.close()
    agg = summarize_rows(rows)
    info = {"policy": args.policy, "operator": args.operator, "robot": args.robot, "start_seed": args.start_seed,
            "episodes": rows, "aggregated": agg}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"collect_info-{int(time.time())}.json").write_text(json.dumps(info, indent=2))
    print_summary(f"collected {len(rows)} episodes with {args.policy} (operator: {args.operator}) into {out}/<Task>/:", agg)
    return 0


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    from policies.learned.train import TrainConfig, train

    check_out_dir(args.out, "--out")
    cfg = TrainConfig(data=list(args.data), out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      correction_share=args.correction_share, val_fraction=args.val_fraction, seed=args.seed,
                      resume=args.resume, init=args.init, images=args.images, progress=_progress(args))
    s = train(cfg)
    val = s.get("val") or {}
    acc = f", validation accuracy {val['acc']:.3f} on {val['n']} steps" if val else ""
    print(f"trained in {s['seconds']:.0f} s{acc}; policy: --policy learned:{args.out}", flush=True)
    return 0


@command("policy-eval")
def cmd_policy_eval(args: argparse.Namespace) -> int:
    if args.json:  # written after every episode ran: check it first
        check_out_file(args.json, "--json")
    rows = _rows(args, phrasings=args.phrasings)
    agg = summarize_rows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"policy": args.policy, "phrasings": args.phrasings, "episodes": rows,
                                               "aggregated": agg}, indent=2))
    where = f"suite {args.suite} ({args.phase})" if args.suite else f"{len(parse_envs(args.env))} env(s)"
    print_summary(f"{args.policy} on {where}, seeds {args.start_seed}..{args.start_seed + args.episodes - 1}, "
                  f"phrasings: {args.phrasings}", agg)
    return 0


# ----- the learning-iterations report -----
def learning_table(out: Path) -> list[dict[str, Any]]:
    """One row per policy-k of a learn_iterations.sh run, from its eval-k*.json files."""
    rows: list[dict[str, Any]] = []
    k = 0
    while (out / f"eval-{k}.json").is_file():
        row: dict[str, Any] = {"policy": f"policy-{k}"}
        for key, name in (("envs", f"eval-{k}.json"), ("heldout", f"eval-{k}-heldout.json"),
                          ("suite", f"eval-{k}-suite.json")):
            path = out / name
            if path.is_file():
                try:
                    row[key] = json.loads(path.read_text())["aggregated"]
                except (ValueError, KeyError) as e:
                    raise CorrigoError(f"{path} is not a policy-eval result ({e})") from None
        rows.append(row)
        k += 1
    if not rows:
        raise CorrigoError(f"{out} has no eval-0.json: is it the OUT folder of scripts/learn_iterations.sh?")
    return rows


def learning_markdown(rows: list[dict[str, Any]]) -> str:
    tasks = list(rows[0].get("suite", {}).get("per_task", {}))
    head = ["policy", "benchmark envs", "held-out phrasings"] + (["suite, autonomous"] + tasks if tasks else [])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    frac = lambda a: f"{a['pc_success']:.0f}% ({a['successes']}/{a['episodes']})"  # noqa: E731
    for r in rows:
        cells = [r["policy"], frac(r["envs"]) if "envs" in r else "-", frac(r["heldout"]) if "heldout" in r else "-"]
        if tasks:
            s = r.get("suite")
            cells += [frac(s) if s else "-"] + [
                f"{s['per_task'][t]['successes']}/{s['per_task'][t]['episodes']}" if s and t in s["per_task"] else "-"
                for t in tasks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_learning(rows: list[dict[str, Any]], path: Path) -> None:
    """Autonomous success per retraining round: the suite (per scenario and overall) and the envs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(9, 4))
    if all("suite" in r for r in rows):
        for t in rows[0]["suite"]["per_task"]:
            ax.plot(xs, [r["suite"]["per_task"].get(t, {}).get("pc_success", float("nan")) for r in rows], "o--",
                    alpha=0.6, label=f"suite: {t}")
        ax.plot(xs, [r["suite"]["pc_success"] for r in rows], "o-", color="black", linewidth=2.5, label="suite: all")
    for key, label, style in (("envs", "benchmark envs", "s-"), ("heldout", "held-out phrasings", "^-")):
        if all(key in r for r in rows):
            ax.plot(xs, [r[key]["pc_success"] for r in rows], style, label=label)
    ax.set_xticks(xs, [f"policy-{k}" + (" (demos)" if k == 0 else "") for k in xs])
    ax.set(ylabel="autonomous success (%)", ylim=(-5, 105), title="learned policy: success after each retraining round")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@command("learn-report")
def cmd_learn_report(args: argparse.Namespace) -> int:
    out = Path(args.out)
    rows = learning_table(out)
    md = learning_markdown(rows)
    (out / "learning.md").write_text(md)
    plot_learning(rows, out / "learning.png")
    print(md + f"\nwrote {out / 'learning.md'} and {out / 'learning.png'}", flush=True)
    return 0
