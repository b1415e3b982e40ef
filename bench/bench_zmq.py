"""corrigo's ZMQ robot protocol against a pickle-over-REQ/REP server (GELLO style), on loopback.

    python -m bench.bench_zmq [--cmd-seconds 10] [--obs-seconds 5]

Both servers run in their own process around the same body (`MockArm`: no physics,
two synthetic 128x128 RGB cameras when asked), so the figures measure transport and
encoding, not simulation. Measured:

1. round trip: `ping` and a state-only `get_observation`, closed loop (p50/p99);
2. sustained command rate: one client sends actions closed-loop (next one as soon as
   the reply arrives) for --cmd-seconds; "drops" = commands sent minus commands the
   server counted, plus requests left without a reply. corrigo's server runs in
   `stream` mode here (send_action is validated, safety-clipped and answered at once;
   the control thread applies the newest command at its own tick), because in the
   default lockstep mode the rate is the control rate by design: a lockstep line at
   500 Hz shows that;
3. observation throughput with two 128x128 cameras for --obs-seconds: corrigo
   publishes a state + two raw (or JPEG) frames every tick of a 2 kHz control loop and a
   subscriber decodes every message it gets (latest-only: slow readers skip states,
   they never queue); also corrigo's get_observation request, and the pickle server
   answering `get_observations` requests (pickled dict of numpy arrays).
"""
from __future__ import annotations

import argparse
import pickle  # the baseline being measured; corrigo itself never uses pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
ACTION = {"ee.pos": np.array([0.45, 0.02, 0.3]), "ee.quat_xyzw": np.array([1.0, 0.0, 0.0, 0.0]), "gripper": 0.0}


# ----- servers (run in child processes) -----
def serve_corrigo(port: int, hz: float, cameras: int, encoding: str, mode: str) -> None:
    from hw_drivers.mock import MockArm
    from hw_drivers.server import RobotServer, ServerConfig

    arm = MockArm(control_hz=hz, cameras=("front", "wrist")[:cameras])
    server = RobotServer(arm, ServerConfig(bind=f"tcp://127.0.0.1:{port}", mode=mode, image_encoding=encoding,
                                           watchdog_s=5.0, lease_s=30.0))
    server.start()
    print("ready", flush=True)
    sys.stdin.readline()  # the parent closes stdin to stop us
    server.close()


def serve_pickle(port: int, cameras: int) -> None:
    """What many robot projects do: REP socket, pickled dicts with numpy arrays, no timeouts."""
    from hw_drivers.mock import MockArm

    arm = MockArm(control_hz=20.0, cameras=("front", "wrist")[:cameras])
    arm.connect()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(f"tcp://127.0.0.1:{port}")
    commands = 0
    print("ready", flush=True)
    while True:
        req = pickle.loads(sock.recv())  # noqa: S301  (the point of the comparison)
        method = req["method"]
        if method == "get_observations":
            out: Any = arm.get_observation()
        elif method == "command":
            commands += 1
            out = arm.send_action(req["args"]["action"])
        elif method == "stats":
            out = {"commands": commands}
        elif method == "quit":
            sock.send(pickle.dumps({}))
            break
        else:
            out = {}
        sock.send(pickle.dumps(out))
    sock.close(0)
    ctx.term()


# ----- helpers -----
def _spawn(*args: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "bench.bench_zmq", *args], cwd=ROOT, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if "ready" not in line:
        p.kill()
        raise RuntimeError(f"bench server failed to start: {line!r}")
    return p


def _stop(p: subprocess.Popen) -> None:
    try:
        assert p.stdin is not None
        p.stdin.close()
        p.wait(10)
    except (subprocess.TimeoutExpired, BrokenPipeError):
        p.kill()


def _free_port() -> int:
    from hw_drivers.testing import free_port_pair

    return free_port_pair()


class PickleClient:
    def __init__(self, port: int) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.connect(f"tcp://127.0.0.1:{port}")

    def call(self, method: str, **args: Any) -> Any:
        self.sock.send(pickle.dumps({"method": method, "args": args}))
        return pickle.loads(self.sock.recv())  # noqa: S301

    def close(self) -> None:
        self.call("quit")
        self.sock.close(0)
        self.ctx.term()


def _latencies(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    for _ in range(50):
        fn()
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        t[i] = time.perf_counter() - t0
    return float(np.percentile(t, 50) * 1e6), float(np.percentile(t, 99) * 1e6)


def _rate(fn: Callable[[], Any], seconds: float) -> tuple[int, float]:
    n, t0 = 0, time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        fn()
        n += 1
    return n, time.perf_counter() - t0


def _zmq_client(port: int, **kw: Any) -> Any:
    from hw_drivers.client import ZmqRobot

    r = ZmqRobot("127.0.0.1", port, timeout_s=5.0, **kw)
    r.connect()
    return r


# ----- the measurements -----
def bench_rtt(n: int, rows: list[tuple[str, str]]) -> None:
    port = _free_port()
    srv = _spawn("--serve", "corrigo", "--port", str(port), "--hz", "20", "--cameras", "0")
    r = _zmq_client(port, role="observe", subscribe=False)
    p50, p99 = _latencies(lambda: r._call("ping"), n)
    rows.append(("round trip: ping", f"corrigo {p50:6.0f} / {p99:6.0f} us"))
    c50, c99 = _latencies(lambda: r._call("get_observation"), n)
    r.disconnect()
    _stop(srv)
    port = _free_port()
    srv = _spawn("--serve", "pickle", "--port", str(port), "--cameras", "0")
    pc = PickleClient(port)
    q50, q99 = _latencies(lambda: pc.call("ping"), n)
    o50, o99 = _latencies(lambda: pc.call("get_observations"), n)
    pc.close()
    _stop(srv)
    rows[-1] = ("round trip p50 / p99: ping", f"corrigo {p50:5.0f} / {p99:5.0f} us   pickle {q50:5.0f} / {q99:5.0f} us")
    rows.append(("round trip p50 / p99: get_observation (state)",
                 f"corrigo {c50:5.0f} / {c99:5.0f} us   pickle {o50:5.0f} / {o99:5.0f} us"))


def bench_commands(seconds: float, rows: list[tuple[str, str]]) -> None:
    port = _free_port()
    srv = _spawn("--serve", "corrigo", "--port", str(port), "--hz", "100", "--cameras", "0", "--mode", "stream")
    r = _zmq_client(port)
    before = r.ping()["stats"]["commands"]
    n, el = _rate(lambda: r.send_action(ACTION), seconds)
    got = r.ping()["stats"]["commands"] - before
    r.disconnect()
    _stop(srv)
    zmq_line = f"corrigo {n / el:7.0f} cmd/s (sent {n}, server counted {got}, drops {n - got})"

    port = _free_port()
    srv = _spawn("--serve", "corrigo", "--port", str(port), "--hz", "500", "--cameras", "0")
    r = _zmq_client(port)
    r.send_action(ACTION)
    first = r.last_reply["tick"]
    ln, lel = _rate(lambda: r.send_action(ACTION), min(3.0, seconds))
    span = r.last_reply["tick"] - first
    r.disconnect()
    _stop(srv)

    port = _free_port()
    srv = _spawn("--serve", "pickle", "--port", str(port), "--cameras", "0")
    pc = PickleClient(port)
    before = pc.call("stats")["commands"]
    pn, pel = _rate(lambda: pc.call("command", action=ACTION), seconds)
    pgot = pc.call("stats")["commands"] - before
    pc.close()
    _stop(srv)
    rows.append((f"sustained commands, closed loop, {seconds:.0f} s", f"{zmq_line}   pickle {pn / pel:7.0f} cmd/s "
                 f"(sent {pn}, server counted {pgot}, drops {pn - pgot})"))
    rows.append(("lockstep at a 500 Hz control rate (3 s)", f"corrigo {ln / lel:7.1f} cmd/s, replies after the tick "
                 f"that applied them ({ln} commands over {span} ticks; a command that misses its tick waits for the next)"))


def bench_observations(seconds: float, rows: list[tuple[str, str]]) -> None:
    from hw_drivers import protocol as P

    for encoding in ("raw", "jpeg"):
        port = _free_port()
        srv = _spawn("--serve", "corrigo", "--port", str(port), "--hz", "2000", "--cameras", "2", "--encoding", encoding)
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 2)
        sub.setsockopt(zmq.SUBSCRIBE, P.STATE_TOPIC)
        sub.connect(f"tcp://127.0.0.1:{port + 1}")
        sub.poll(5000)
        msgs, nbytes, t0 = 0, 0, time.perf_counter()
        end, ticks = t0 + seconds, []
        while time.perf_counter() < end:
            if not sub.poll(100):
                continue
            frames = sub.recv_multipart()
            header = P.unpack(frames[1])
            obs = P.decode_observation(header["obs"], frames[2:])
            assert obs["observation.images.wrist"].shape == (128, 128, 3)
            ticks.append(header["tick"])
            msgs += 1
            nbytes += sum(len(f) for f in frames)
        el = time.perf_counter() - t0
        sub.close(0)
        ctx.term()
        published = (ticks[-1] - ticks[0] + 1) if ticks else 0
        rows.append((f"observations, 2 cams 128x128, PUB/SUB {encoding}",
                     f"corrigo {2 * msgs / el:7.0f} frames/s {nbytes / el / 1e6:6.1f} MB/s "
                     f"({msgs / el:.0f} states/s received of {published / el:.0f} published)"))
        _stop(srv)
    # request/reply: a server ticking at 20 Hz answers with its latest state (cached, already encoded)
    port = _free_port()
    srv = _spawn("--serve", "corrigo", "--port", str(port), "--hz", "20", "--cameras", "2")
    r = _zmq_client(port, role="observe", subscribe=False)

    def get() -> int:
        res, frames = r._call("get_observation")
        P.decode_observation(res["obs"], frames)
        return sum(len(f) for f in frames)

    size = get()
    n, el = _rate(get, seconds)
    r.disconnect()
    _stop(srv)
    req_line = f"corrigo {2 * n / el:7.0f} frames/s {n * size / el / 1e6:6.1f} MB/s"
    port = _free_port()
    srv = _spawn("--serve", "pickle", "--port", str(port), "--cameras", "2")
    pc = PickleClient(port)
    size = len(pickle.dumps(pc.call("get_observations")))
    n, el = _rate(lambda: pc.call("get_observations"), seconds)
    pc.close()
    _stop(srv)
    rows.append(("observations, 2 cams 128x128, request/reply", f"{req_line}   pickle {2 * n / el:7.0f} frames/s "
                 f"{n * size / el / 1e6:6.1f} MB/s"))


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cmd-seconds", type=float, default=10.0)
    ap.add_argument("--obs-seconds", type=float, default=5.0)
    ap.add_argument("--rtt-samples", type=int, default=3000)
    ap.add_argument("--serve", choices=("corrigo", "pickle"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--hz", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--cameras", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--encoding", default="raw", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="lockstep", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve == "corrigo":
        serve_corrigo(args.port, args.hz, args.cameras, args.encoding, args.mode)
        return []
    if args.serve == "pickle":
        serve_pickle(args.port, args.cameras)
        return []
    t0 = time.perf_counter()
    rows: list[tuple[str, str]] = []
    bench_rtt(args.rtt_samples, rows)
    bench_commands(args.cmd_seconds, rows)
    bench_observations(args.obs_seconds, rows)
    print(f"\ncorrigo ZMQ protocol vs pickle over REQ/REP, loopback, mock arm, servers in their own process "
          f"(zmq {zmq.zmq_version()}, {time.perf_counter() - t0:.0f} s)")
    for name, value in rows:
        print(f"  {name:48} {value}")
    return rows


if __name__ == "__main__":
    main()
