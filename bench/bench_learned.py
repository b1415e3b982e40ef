"""The learned high-level policy on held-out phrasings, next to the rule-based grounding.

    python -m bench.bench_learned [--ckpt DIR] [--train-episodes 12] [--eval-episodes 10] [--epochs 25]

Without --ckpt it first records demonstrations of the rule-based policy (task sentences
from the templates in sim/tasks.py, seeds 0..), trains the learned policy on them, then
runs both policies on the same held-out task sentences (policies/learned/heldout_phrasings.yaml:
new templates, colour words such as crimson/navy/golden that robot/describe.py does not
know; seeds 5000..) and prints autonomous success per task, and the learned policy's
latency per decision on CPU (MiniLM for unseen strings, EfficientNet-lite0 when it uses
the camera, the scorer).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent.cli_train import parse_envs, run_episodes, summarize_rows
    from policies.learned.policy import LearnedPolicy
    from policies.learned.train import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", help="a trained policy directory (skip collecting and training)")
    ap.add_argument("--envs", default="all")
    ap.add_argument("--train-episodes", type=int, default=12, help="demonstrations per task")
    ap.add_argument("--eval-episodes", type=int, default=10, help="held-out episodes per task")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--cameras", default="front", help="camera recorded for training ('' for none)")
    ap.add_argument("--eval-seed", type=int, default=5000)
    ap.add_argument("--in-distribution", action="store_true", help="also run the learned policy on the training phrasings")
    ap.add_argument("--work", help="keep data and checkpoint here (default: a temporary directory)")
    ap.add_argument("--robot", default="sim:pybullet")
    args = ap.parse_args(argv)
    envs = parse_envs(args.envs)
    tmp = None
    if args.work:
        work = Path(args.work)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="corrigo-bench-learned-")
        work = Path(tmp.name)
    t_collect = t_train = 0.0
    train_info: dict[str, Any] = {}
    if args.ckpt:
        ckpt = Path(args.ckpt)
    else:
        print(f"collecting {args.train_episodes} rule-based demonstrations per task (seeds 0..), "
              f"camera: {args.cameras or 'none'} ...", flush=True)
        t0 = time.perf_counter()
        demo_rows = run_episodes("rule_based", envs, 0, args.train_episodes, robot_spec=args.robot, cameras=args.cameras,
                                 image_size=96, record_to=work / "demos", progress=False)
        t_collect = time.perf_counter() - t0
        agg = summarize_rows(demo_rows)
        print(f"  {agg['successes']}/{agg['episodes']} demonstrations succeeded ({t_collect:.0f} s)", flush=True)
        ckpt = work / "policy"
        t0 = time.perf_counter()
        summary = train(TrainConfig(data=[str(work / "demos")], out=str(ckpt), epochs=args.epochs, progress=False),
                        log=lambda m: print("  " + m, flush=True) if m.startswith(("data:", "split")) else None)
        t_train = time.perf_counter() - t0
        train_info = {"samples": summary["samples"], "val": summary["val"], "seconds": t_train}
        print(f"  trained {args.epochs} epochs on {summary['samples']} samples in {t_train:.0f} s "
              f"(validation step accuracy {summary['val'].get('acc', float('nan')):.3f})", flush=True)

    rule_rows = run_episodes("rule_based", envs, args.eval_seed, args.eval_episodes, robot_spec=args.robot, cameras="",
                             phrasings="heldout", progress=False)
    pol = LearnedPolicy(ckpt)
    t0 = time.perf_counter()
    learned_rows = run_episodes(pol, envs, args.eval_seed, args.eval_episodes, robot_spec=args.robot, cameras="auto",
                                phrasings="heldout", progress=False)
    t_eval = time.perf_counter() - t0
    lat = np.asarray(pol.latencies) * 1000.0
    in_dist = None
    if args.in_distribution:
        in_dist = summarize_rows(run_episodes(pol, envs, args.eval_seed, args.eval_episodes, robot_spec=args.robot,
                                              cameras="auto", progress=False))

    ra, la = summarize_rows(rule_rows), summarize_rows(learned_rows)
    seeds = f"seeds {args.eval_seed}..{args.eval_seed + args.eval_episodes - 1}"
    print(f"\nheld-out phrasings (policies/learned/heldout_phrasings.yaml), {seeds}, {args.robot}, no corrections")
    head = f"{'task':14}{'rule-based':>16}{'learned':>16}"
    if in_dist:
        head += f"{'learned, training phrasings':>30}"
    print(head)
    for name in la["per_task"]:
        r, lr = ra["per_task"][name], la["per_task"][name]
        line = (f"{name:14}{r['successes']:>7}/{r['episodes']:<3}{r['pc_success']:5.0f}%"
                f"{lr['successes']:>7}/{lr['episodes']:<3}{lr['pc_success']:5.0f}%")
        if in_dist:
            d = in_dist["per_task"][name]
            line += f"{d['successes']:>21}/{d['episodes']:<3}{d['pc_success']:5.0f}%"
        print(line)
    line = (f"{'all':14}{ra['successes']:>7}/{ra['episodes']:<3}{ra['pc_success']:5.0f}%"
            f"{la['successes']:>7}/{la['episodes']:<3}{la['pc_success']:5.0f}%")
    if in_dist:
        line += f"{in_dist['successes']:>21}/{in_dist['episodes']:<3}{in_dist['pc_success']:5.0f}%"
    print(line)
    print("\nexamples (learned):")
    shown: set[str] = set()
    for r in learned_rows:
        if r["task"] in shown:
            continue
        shown.add(r["task"])
        print(f"  {r['text']!r}: {' -> '.join(r['instructions']) or '(nothing)'} "
              f"[{'success' if r['success'] else 'failed: ' + r['done_reason']}]")
    fails = [r for r in learned_rows if not r["success"]]
    if fails:
        print("learned failures:")
        for r in fails[:8]:
            print(f"  seed {r['seed']} {r['text']!r}: {' -> '.join(r['instructions']) or '(nothing)'}; {r['done_reason']}")
    img = "with" if pol.image_key else "without"
    if len(lat):
        print(f"\nlearned policy latency per decision on CPU ({img} EfficientNet image features, {len(lat)} decisions): "
              f"p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms")
    if t_collect or t_train:
        print(f"time: collect {t_collect:.0f} s, train {t_train:.0f} s, held-out eval (learned) {t_eval:.0f} s")
    if tmp is not None:
        tmp.cleanup()
    return {"rule_based": ra, "learned": la, "in_distribution": in_dist, "latency_ms": lat.tolist(), "train": train_info}


if __name__ == "__main__":
    main()
