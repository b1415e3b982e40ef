"""`python -m bench` (`make bench`): every benchmark, one after another, each printing its figures.

    python -m bench [--only tasks,latency,...] [--quick]
"""
from __future__ import annotations

import argparse
import importlib
import time

# name -> (module, arguments for the full run, arguments for --quick)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "tasks": ("bench.bench_tasks", [], ["--seeds", "5"]),
    "sim_speed": ("bench.bench_sim_speed", [], []),
    "parity": ("bench.bench_parity", [], ["--seeds", "5"]),
    "latency": ("bench.bench_latency", [], ["--episodes", "1"]),
    "zmq": ("bench.bench_zmq", [], []),
    "kb": ("bench.bench_kb", [], ["--sizes", "1000,100000"]),
    "learned": ("bench.bench_learned", [], []),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHES))
    ap.add_argument("--quick", action="store_true", help="fewer seeds and sizes")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    for name in names:
        if name not in BENCHES:
            raise SystemExit(f"bench: unknown benchmark {name!r} (known: {', '.join(BENCHES)})")
        module, full, quick = BENCHES[name]
        print(f"\n===== {name} ({module}) =====", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(module).main(quick if args.quick else full)
        print(f"[{name}: {time.perf_counter() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
