"""`corrigo serve` (a robot server around any body) and `corrigo keys generate` (CURVE keypairs).

Loaded by `agent.cli._load_extensions()`; registers its parsers and commands there.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
from pathlib import Path
from typing import Any

from agent.cli import _EXTRA_PARSERS, command
from agent.cli_args import check_out_dir, float_in, int_in, seed, vec3
from robot.errors import CorrigoError


WORKSPACE_LIMIT_M = 5.0  # |x|, |y|, |z| of a safety box corner
MAX_EE_STEP_LIMIT_M = 0.25  # per control tick


def _add_parsers(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve a body over ZMQ (run it next to the arm's SDK)",
                       description="Serve a robot over the corrigo ZMQ protocol (docs/protocol.md).")
    s.add_argument("--robot", default="sim:pybullet", help="body: sim:pybullet, sim:mujoco, mock:arm, ur_rtde:HOST, ...")
    s.add_argument("--bind", default="tcp://127.0.0.1:5555", help="command endpoint (ROUTER)")
    s.add_argument("--pub-bind", help="state endpoint (PUB); default: the command port + 1")
    s.add_argument("--scene", help="scene for sim bodies (default: tabletop)")
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--cameras", default="", help="comma-separated cameras for sim bodies: front,wrist")
    s.add_argument("--image-size", type=int_in(8, 1024), default=128, help="camera image size, pixels (8..1024)")
    s.add_argument("--image-encoding", choices=("raw", "jpeg"), default="raw", help="how camera frames travel")
    s.add_argument("--jpeg-quality", type=int_in(1, 100), default=90)
    s.add_argument("--watchdog-ms", type=float_in(10, 10_000), default=250.0,
                   help="hold after this long without a command (10..10000 ms)")
    s.add_argument("--lease", type=float_in(0.1, 3600, unit="s"), default=2.0,
                   help="the controller loses control after this much silence, s (default 2; corrigo's client "
                        "keeps it alive while idle)")
    s.add_argument("--mode", choices=("lockstep", "stream"), default="lockstep",
                   help="lockstep: send_action replies after the tick that applied it; stream: at once")
    s.add_argument("--curve-keys", metavar="DIR", help="directory with this server's keypair (server.key_secret)")
    s.add_argument("--allow", nargs="+", action="extend", default=[], metavar="CLIENT_PUBKEY_FILE",
                   help="client public keys (files or directories of *.key) that may connect and control")
    s.add_argument("--allow-observe", nargs="+", action="extend", default=[], metavar="CLIENT_PUBKEY_FILE",
                   help="client public keys that may connect but only observe")
    # A box or a step beyond these is a typo, not an arm: refused rather than silently unbounded.
    s.add_argument("--workspace-min", type=vec3(WORKSPACE_LIMIT_M),
                   help=f"safety box corner x,y,z in metres (default 0.15,-0.5,0.005; within ±{WORKSPACE_LIMIT_M:g})")
    s.add_argument("--workspace-max", type=vec3(WORKSPACE_LIMIT_M),
                   help=f"safety box corner x,y,z in metres (default 0.8,0.5,0.6; within ±{WORKSPACE_LIMIT_M:g})")
    s.add_argument("--max-ee-step", type=float_in(0, MAX_EE_STEP_LIMIT_M, lo_open=True, unit="m"),
                   help=f"largest end-effector move per tick, m (default 0.03; at most {MAX_EE_STEP_LIMIT_M:g})")
    s.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it registers your body with robot.registry.register_robot)")
    s.add_argument("--verbose", "-v", action="store_true")

    k = sub.add_parser("keys", help="CURVE keys for `corrigo serve --curve-keys`")
    ks = k.add_subparsers(dest="keys_command", metavar="ACTION")
    g = ks.add_parser("generate", help="write NAME.key (public) and NAME.key_secret into DIR")
    g.add_argument("dir")
    g.add_argument("--name", default="server", help="file name stem (default: server)")


_EXTRA_PARSERS.append(_add_parsers)


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    import hw_drivers  # noqa: F401  (registers mock:arm, ur_rtde:, zmq://)
    from agent.runner import build_robot
    from hw_drivers.server import RobotServer, ServerConfig
    from robot.safety import SafetyLimits

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="corrigo serve: %(message)s")
    for mod in args.plugin:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise CorrigoError(f"--plugin {mod}: {e}") from None
    limits: dict[str, Any] = {}
    if args.workspace_min is not None:
        limits["workspace_min"] = args.workspace_min
    if args.workspace_max is not None:
        limits["workspace_max"] = args.workspace_max
    if args.max_ee_step is not None:
        limits["max_ee_step_m"] = args.max_ee_step
    try:
        safety = SafetyLimits(**limits)
    except ValueError as e:
        raise CorrigoError(str(e)) from None
    config = ServerConfig(
        bind=args.bind, pub_bind=args.pub_bind, watchdog_s=args.watchdog_ms / 1000.0, lease_s=args.lease, mode=args.mode,
        image_encoding=args.image_encoding, jpeg_quality=args.jpeg_quality, safety=safety,
        curve_keys=args.curve_keys, allow=tuple(args.allow), allow_observe=tuple(args.allow_observe),
    )
    cameras = tuple(c for c in args.cameras.split(",") if c)
    robot = build_robot(args.robot, scene=args.scene, seed=args.seed, cameras=cameras, image_size=args.image_size)
    server = RobotServer(robot, config)
    server.start()

    def on_signal(signum: int, _frame: Any) -> None:
        print(f"corrigo serve: {signal.Signals(signum).name}: holding the arm and stopping", flush=True)
        server.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    auth = f"CURVE, {len(config.allow) + len(config.allow_observe)} key source(s) allowed" if config.curve_keys else "no auth"
    print(f"corrigo serve: {robot.name} on {server.endpoint}, state on {server.pub_endpoint} "
          f"({1.0 / server.control_dt:.0f} Hz, watchdog {args.watchdog_ms:.0f} ms, {config.mode}, {auth})", flush=True)
    server.wait()
    print(f"corrigo serve: stopped after {server.stats['ticks']} ticks", flush=True)
    return 0


@command("keys")
def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_command != "generate":
        raise CorrigoError("usage: corrigo keys generate DIR [--name NAME]")
    import zmq.auth

    d = check_out_dir(args.dir, "keys generate")
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise CorrigoError(f"--name must be a plain file name stem, got {args.name!r}")
    # Never overwrite a key: NAME.key may be a client's public key kept in an --allow directory.
    for f in (d / f"{args.name}.key_secret", d / f"{args.name}.key"):
        if f.exists():
            raise CorrigoError(f"{f} exists; remove it or pick another --name")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CorrigoError(f"keys generate: cannot create {d}: {e.strerror}") from None
    public_file, secret_file = zmq.auth.create_certificates(str(d), args.name)
    Path(secret_file).chmod(0o600)
    print(f"public key: {public_file}   (give this to the other side)")
    print(f"secret key: {secret_file}   (keep it here)")
    return 0

