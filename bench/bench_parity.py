"""PyBullet vs MuJoCo: the rule-based plan on every task, same seeds, both backends.

    python -m bench.bench_parity [--seeds 20] [--start 0] [--tasks PickPlace,Stack]

Prints success per task per backend, and how far apart the two backends leave the
objects the task moved (same seed, same plan): the mean, over seeds, of the mean
distance between an object's final positions in the two backends, over every
object that moved more than 1 cm in either backend (an opened drawer counts as
its handle).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

BACKENDS = ("pybullet", "mujoco")
MOVED_M = 0.01


@dataclass
class Episode:
    success: bool
    start: dict[str, np.ndarray]
    end: dict[str, np.ndarray]
    wall_s: float


@dataclass
class TaskRow:
    name: str
    ok: dict[str, int] = field(default_factory=lambda: {b: 0 for b in BACKENDS})
    gaps: list[float] = field(default_factory=list)  # per seed, metres
    wall: dict[str, float] = field(default_factory=lambda: {b: 0.0 for b in BACKENDS})


def _positions(robot: object) -> dict[str, np.ndarray]:
    """Object positions, plus the drawer handle (the part a drawer task moves)."""
    out: dict[str, np.ndarray] = {}
    for o in robot.scene_objects():  # type: ignore[attr-defined]
        out[o.name] = np.asarray(o.position, float)
        if "handle" in o.parts:
            out[f"{o.name}.handle"] = np.asarray(o.parts["handle"], float)
    return out


def run_episode(backend: str, task: str, seed: int) -> Episode:
    from agent.runner import build_robot, run_env_episode
    from sim.tasks import env_id, get_task

    robot = build_robot(f"sim:{backend}", scene=get_task(task).scene, seed=seed)
    robot.connect()
    try:
        start = _positions(robot)
        t0 = time.perf_counter()
        result, _ = run_env_episode(f"sim:{backend}", env_id(task), seed, robot=robot)
        wall = time.perf_counter() - t0
        return Episode(bool(result.success), start, _positions(robot), wall)
    finally:
        robot.disconnect()


def final_gap(a: Episode, b: Episode) -> float | None:
    """Mean distance between the two final positions of the objects either run moved."""
    moved = [k for k in a.start if k in b.start and (
        np.linalg.norm(a.end[k] - a.start[k]) > MOVED_M or np.linalg.norm(b.end[k] - b.start[k]) > MOVED_M)]
    if not moved:
        return None
    return float(np.mean([np.linalg.norm(a.end[k] - b.end[k]) for k in moved]))


def main(argv: list[str] | None = None) -> list[TaskRow]:
    from sim.tasks import TASKS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20, help="number of seeds (default 20)")
    ap.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names (default: all)")
    args = ap.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or args.seeds < 1:
        ap.error(f"unknown task(s) {unknown} (known: {', '.join(TASKS)})" if unknown else "--seeds must be at least 1")
    seeds = range(args.start, args.start + args.seeds)
    rows = []
    with tqdm(total=len(tasks) * len(seeds) * len(BACKENDS), unit="episode") as bar:
        for task in tasks:
            row = TaskRow(task)
            for seed in seeds:
                eps = {}
                for backend in BACKENDS:
                    bar.set_description(f"{task} seed {seed} {backend}")
                    eps[backend] = run_episode(backend, task, seed)
                    row.ok[backend] += eps[backend].success
                    row.wall[backend] += eps[backend].wall_s
                    bar.update()
                gap = final_gap(eps["pybullet"], eps["mujoco"])
                if gap is not None:
                    row.gaps.append(gap)
            rows.append(row)
    print_table(rows, seeds)
    return rows


def print_table(rows: list[TaskRow], seeds: range) -> None:
    n = len(seeds)
    print(f"\nrule-based plan, no corrections, seeds {seeds.start}..{seeds.stop - 1}")
    print(f"{'task':13}{'pybullet':>12}{'mujoco':>12}{'final-position gap, moved objects':>36}{'wall s (pb/mj)':>17}")
    print(f"{'':13}{'':>12}{'':>12}{'mean':>12}{'median':>12}{'max':>12}")
    for r in rows:
        g = np.asarray(r.gaps) * 100
        gaps = f"{g.mean():9.1f} cm {np.median(g):8.1f} cm {g.max():8.1f} cm" if len(g) else f"{'(nothing moved)':>36}"
        ok = "".join(f"{r.ok[b]:>7}/{n:<4}" for b in BACKENDS)
        print(f"{r.name:13}{ok} {gaps}{r.wall['pybullet']:>9.1f}/{r.wall['mujoco']:.1f}")


if __name__ == "__main__":
    main()
