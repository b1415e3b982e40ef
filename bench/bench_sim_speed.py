"""Simulation speed of both backends: simulated seconds per wall-clock second.

    python -m bench.bench_sim_speed [--seconds 10] [--backends pybullet,mujoco]

The arm traces a sinusoidal end-effector path over the table (gripper opening and
closing) at 20 Hz control and 240 Hz physics, on the pick-and-place scene, once
without cameras and once with both cameras at 128x128 rendered at 10 Hz. An
observation is read every control tick, as an agent does.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from robot.geometry import down_quat

SETUPS = {"no cameras": (), "2 cams 128px @10 Hz": ("front", "wrist")}


def sine_action(t: float) -> dict[str, object]:
    """A smooth loop over the table: 8 cm in x, 16 cm in y, 6 cm in z, with a wrist twist."""
    pos = np.array([0.48 + 0.08 * math.sin(0.9 * t), 0.16 * math.sin(0.6 * t), 0.16 + 0.06 * math.sin(1.3 * t)])
    return {"ee.pos": pos, "ee.quat_xyzw": down_quat(0.5 * math.sin(0.5 * t)), "gripper": 0.5 + 0.5 * math.sin(0.8 * t)}


def measure(backend: str, cameras: tuple[str, ...], seconds: float) -> tuple[float, float]:
    """(simulated s per wall s, wall s to connect) for one backend and camera setup."""
    from sim import CameraConfig, make_sim_arm

    arm = make_sim_arm(backend, scene="pick_place", seed=0, control_hz=20.0, physics_hz=240.0,
                       cameras=cameras, camera=CameraConfig(128, 128), camera_hz=10.0)
    t0 = time.perf_counter()
    arm.connect()
    connect_s = time.perf_counter() - t0
    try:
        arm.get_observation()  # first render builds GPU resources; not part of the steady state
        ticks = int(round(seconds * arm.config.control_hz))
        sim0, t0 = arm.time_s, time.perf_counter()
        for _ in range(ticks):
            arm.send_action(sine_action(arm.time_s))
            arm.get_observation()
        wall = time.perf_counter() - t0
        return (arm.time_s - sim0) / wall, connect_s
    finally:
        arm.disconnect()


def main(argv: list[str] | None = None) -> dict[tuple[str, str], float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="simulated seconds per measurement (default 10)")
    ap.add_argument("--backends", default="pybullet,mujoco")
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results: dict[tuple[str, str], float] = {}
    connects: dict[str, float] = {}
    for label, cams in SETUPS.items():
        for b in backends:
            print(f"measuring {b}, {label} ...", flush=True)
            results[(b, label)], connects[b] = measure(b, cams, args.seconds)
    print(f"\nsimulated s per wall s ({args.seconds:g} s simulated, 20 Hz control, 240 Hz physics, arm moving)")
    print(f"{'':22}" + "".join(f"{b:>12}" for b in backends))
    for label in SETUPS:
        print(f"{label:22}" + "".join(f"{results[(b, label)]:>12.1f}" for b in backends))
    print(f"{'connect + reset (s)':22}" + "".join(f"{connects[b]:>12.2f}" for b in backends))
    return results


if __name__ == "__main__":
    main()
