"""Success rate of every task with the rule-based plan and no corrections.

    python -m bench.bench_tasks [--seeds 20] [--robot sim:pybullet] [--tasks PickPlace,Stack]
"""
from __future__ import annotations

import argparse
import time

from tqdm import tqdm


def main(argv: list[str] | None = None) -> dict[str, float]:
    from agent.runner import run_env_episode
    from sim.tasks import TASKS, env_id

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--robot", default="sim:pybullet")
    ap.add_argument("--tasks", default=",".join(TASKS))
    args = ap.parse_args(argv)
    rates: dict[str, float] = {}
    rows = []
    for name in args.tasks.split(","):
        t0 = time.perf_counter()
        ok = 0
        sim_s = 0.0
        for seed in tqdm(range(args.seeds), desc=f"{name:12}", leave=False):
            result, robot = run_env_episode(args.robot, env_id(name), seed)
            robot.disconnect()
            ok += bool(result.success)
            sim_s += result.duration_s
        rates[name] = ok / args.seeds
        rows.append((name, ok, args.seeds, sim_s / args.seeds, time.perf_counter() - t0))
    print(f"\nrule-based plan, no corrections, {args.robot}, seeds 0..{args.seeds - 1}")
    print(f"{'task':14}{'success':>12}{'mean episode (sim s)':>24}{'wall s':>10}")
    for name, ok, n, mean_s, wall in rows:
        print(f"{name:14}{ok:>5}/{n:<3} {100 * ok / n:5.1f}%{mean_s:>17.1f}{wall:>12.1f}")
    return rates


if __name__ == "__main__":
    main()
