"""Correction latency and the loop's own overhead per tick.

    python -m bench.bench_latency [--episodes 3] [--robot sim:pybullet]

Latency: from an utterance entering the agent's queue to the moment the first
action that reflects it is handed to the body. Measured (a) with the loop paced in real time (20 Hz) and an
operator thread typing at random moments, the case of a person at a terminal,
and (b) with the simulator running as fast as it can.
Overhead: wall time per tick minus the time spent inside the body's calls
(physics, IK, rendering), i.e. policy + skill + correction handling + bookkeeping.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
from typing import Any

import numpy as np

from robot.robot import Robot

NUDGES = ("a bit to the left", "a bit to the right", "a little higher", "a little lower")


class TimedRobot(Robot):
    """Forwards to a body and adds up the wall time spent inside it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.control_dt = inner.control_dt
        self.inside_s = 0.0

    def _timed(self, fn: Any, *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            self.inside_s += time.perf_counter() - t

    observation_features = property(lambda self: self.inner.observation_features)
    action_features = property(lambda self: self.inner.action_features)
    is_connected = property(lambda self: self.inner.is_connected)

    def connect(self) -> None:
        self.inner.connect()

    def disconnect(self) -> None:
        self.inner.disconnect()

    def get_observation(self) -> dict[str, Any]:
        return self._timed(self.inner.get_observation)

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        return self._timed(self.inner.send_action, action)

    def hold(self) -> dict[str, Any]:
        return self._timed(self.inner.hold)

    def scene_objects(self) -> list[Any]:
        return self._timed(self.inner.scene_objects)


def episode(robot_spec: str, seed: int, realtime: bool, rng: random.Random) -> tuple[list[float], float, int, float]:
    from agent.loop import Agent, AgentConfig
    from agent.runner import build_robot, text_task
    from policies import RuleBasedPolicy

    inner = build_robot(robot_spec, scene="tabletop", seed=seed)
    inner.connect()
    robot = TimedRobot(inner)
    setup = text_task(inner, "put the red block in the blue bowl")
    agent = Agent(robot, RuleBasedPolicy(), config=AgentConfig(max_episode_s=60, realtime=realtime))
    done = threading.Event()
    scripted: list[tuple[float, str]] = []
    if realtime:
        def operator() -> None:  # a person typing at random moments
            while not done.wait(rng.uniform(0.25, 0.6)):
                agent.submit(rng.choice(NUDGES))

        th = threading.Thread(target=operator, daemon=True)
        th.start()
    else:
        t = 0.3
        while t < 8.0:
            scripted.append((t, rng.choice(NUDGES)))
            t += rng.uniform(0.25, 0.6)
        for t, text in scripted:
            agent.schedule(t, text)
    t0 = time.perf_counter()
    result = agent.run(setup.description, setup.success)
    wall = time.perf_counter() - t0
    done.set()
    inner.disconnect()
    lat = [c.latency_s for c in result.corrections if c.latency_s is not None]
    overhead = (wall - robot.inside_s) / max(result.ticks, 1)  # meaningful for the unpaced runs only
    return lat, overhead, result.ticks, wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--robot", default="sim:pybullet")
    args = ap.parse_args(argv)
    rng = random.Random(0)
    rows = []
    for realtime in (True, False):
        lats: list[float] = []
        overheads: list[float] = []
        ticks = 0
        for seed in range(args.episodes):
            lat, ov, n, _ = episode(args.robot, seed, realtime, rng)
            lats += lat
            ticks += n
            if not realtime:
                overheads.append(ov)
            print(f"  {'real time' if realtime else 'as fast as possible'}: episode {seed}: {len(lat)} corrections", flush=True)
        ms = np.asarray(lats) * 1000
        rows.append((realtime, len(ms), np.percentile(ms, 50), np.percentile(ms, 95), np.max(ms), overheads))
    print(f"\ncorrection latency, queue -> first action reflecting it ({args.robot}, 20 Hz control)")
    print(f"{'loop':24}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for realtime, n, p50, p95, mx, _ in rows:
        print(f"{'paced in real time' if realtime else 'as fast as possible':24}{n:>6}{p50:>10.1f}{p95:>10.1f}{mx:>10.1f}")
    ov = np.asarray(rows[1][5]) * 1e6
    print(f"\nloop overhead per tick excluding the body (physics, IK): mean {ov.mean():.0f} us over {args.episodes} episodes")


if __name__ == "__main__":
    main()
