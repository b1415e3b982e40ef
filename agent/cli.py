"""The `corrigo` command line. User mistakes give one line on stderr and exit code 2.

What is a user mistake: a bad option (argparse errors are one line too, see `_Parser`), any
`CorrigoError`, and an `OSError` naming a file (permission denied, disk full, no such
directory: the environment, not corrigo). Anything else is a bug in corrigo: it is reported as
one `corrigo: internal error: ...` line with exit code 70, the traceback is written to a file
named in that line, and `CORRIGO_DEBUG=1` lets it propagate (full traceback on stderr).

An episode's outcome sets the exit code of `run` (agent.episode.EXIT_CODES): 0 succeeded (or
ran to its end with nothing to check: free motion), 1 failed, 2 refused (the task was not
started: it did not ground, named an unknown object, the policy refused), like a user mistake.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Callable, NoReturn, Sequence

from agent.cli_args import check_out_dir, int_in, positive_float
from agent.cli_args import seed as seed_type
from robot.errors import CorrigoError

# Some model packages write caches under ~/.cache; nothing here may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}

DEMO_TASK = "put the red block in the blue bowl"
# Scripted operator for part 1 of `corrigo demo`: episode time (s) and utterance.
DEMO_CORRECTIONS: tuple[tuple[float, str], ...] = (
    (0.5, "a little slower"),
    (2.0, "wait!"),
    (2.5, "move a bit to the left"),
    (3.6, "ok continue"),
    (4.0, "uh, speed up a little please"),
    (5.2, "flibber jabber"),
    (6.0, "hmm, 2 cm higher"),
    (7.6, "perfect"),
)
# Part 2: the jug can only be held by its handle; where it stands in each episode.
DEMO_JUG_POSES = ((0.5, -0.05, 0.3), (0.55, 0.05, -1.2))


def command(name: str) -> Callable[[Command], Command]:
    def deco(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return deco


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other user mistake (subparsers inherit this class)."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"corrigo: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="corrigo", description="Robots that improve from language corrections.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="one headless simulated episode with scripted corrections, narrated")
    d.add_argument("--robot", default="sim:pybullet", help="body: sim:pybullet, sim:mujoco, zmq://HOST:PORT")
    d.add_argument("--seed", type=seed_type, default=0)

    r = sub.add_parser("run", help="run a task; type corrections on stdin while the arm moves")
    r.add_argument("--task", help="the task sentence, e.g. 'put the red block in the blue bowl'")
    r.add_argument("--env", help="a benchmark task instead of --task, e.g. corrigo/PickPlace-v0")
    r.add_argument("--robot", default="sim:pybullet", help="body: sim:pybullet, sim:mujoco, zmq://HOST:PORT")
    r.add_argument("--policy", default="rule_based", help="high-level policy: rule_based, learned:PATH")
    r.add_argument("--scene", help="scene YAML file or built-in name (sim bodies; default: tabletop)")
    r.add_argument("--seed", type=seed_type, default=0)
    r.add_argument("--cameras", default="", help="comma-separated cameras to render and record: front,wrist")
    r.add_argument("--image-size", type=int_in(8, 1024), default=128, help="camera image size, pixels (8..1024)")
    r.add_argument("--corrections", help="timed corrections file: lines '<seconds> <text>'")
    r.add_argument("--record", help="record the episode (LeRobotDataset v3) into this directory")
    r.add_argument("--kb", default=os.environ.get("CORRIGO_KB") or "default",
                   help="knowledge base: a path, sqlite:PATH, new:PATH (make it; it must not exist), 'default' (a file "
                        "under your data directory, made on first use) or 'none' "
                        "(default: $CORRIGO_KB, else 'default')")
    r.add_argument("--learn", choices=("ask", "auto", "off"),
                   help="what the knowledge base keeps from this episode: ask (show each lesson, keep it? [Y/n/e]), "
                        "auto (keep what a successful episode taught), off (learn nothing) (default: ask on a terminal, "
                        "else auto)")
    r.add_argument("--operator", help="who is correcting: lessons are theirs (scoped to this user), and only theirs "
                   "and everyone's apply (default: shared by everyone)")
    r.add_argument("--viewpoint", choices=("robot", "facing"), default="robot",
                   help="whose left is 'left': the robot's, or an operator facing the robot")
    r.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="pace the loop in wall time (default: on when stdin is a terminal)")
    r.add_argument("--max-time", type=positive_float, default=180.0, help="episode time limit, s")
    r.add_argument("--interactive", action=argparse.BooleanOptionalAction, default=None,
                   help="read corrections from stdin (default: when stdin is a terminal)")

    e = sub.add_parser("envs", help="list the registered gymnasium envs")
    e.add_argument("--check", action="store_true", help="run gymnasium's check_env on each")
    e.add_argument("--backend", choices=("pybullet", "mujoco"), default="pybullet",
                   help="simulator for --check (sim.backends.BACKENDS)")

    for extra in _EXTRA_PARSERS:
        extra(sub)
    return p


_EXTRA_PARSERS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


def main(argv: Sequence[str] | None = None) -> int:
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except CorrigoError as e:
        print(f"corrigo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncorrigo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `corrigo envs | head -1`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second BrokenPipeError when Python flushes stdout at exit
        return 0
    except OSError as e:
        if e.filename is None or _debug():  # an OSError without a file is no user's mistake we can name
            raise
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        print(f"corrigo: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug: one line and where the traceback went
        if _debug():
            raise
        print(f"corrigo: internal error: {type(e).__name__}: {_first_line(e)} (a bug in corrigo; "
              f"{_save_traceback()}; please report it)", file=sys.stderr)
        return 70  # EX_SOFTWARE


def _debug() -> bool:
    return os.environ.get("CORRIGO_DEBUG", "") not in ("", "0")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def _save_traceback() -> str:
    """Write the current exception's traceback to a file; say where (or how to see it)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="corrigo-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(traceback.format_exc())
        return f"traceback in {path}"
    except OSError:
        return "run again with CORRIGO_DEBUG=1 for the traceback"


def _load_extensions() -> None:
    """Subcommands that live in their own modules register themselves on import."""
    import importlib

    for mod in ("agent.cli_kb", "agent.cli_eval", "agent.cli_serve", "agent.cli_train"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


# ----- commands -----
@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from agent.episode import SUCCEEDED
    from agent.events import print_events
    from agent.loop import summarize
    from agent.runner import build_policy, build_robot, make_agent, text_task

    print(f"corrigo demo, part 1: live corrections. A simulated Panda ({args.robot}), task {DEMO_TASK!r},\n"
          "and an operator who types while the arm moves.\n")
    with build_robot(args.robot, scene="tabletop", seed=args.seed) as robot:
        setup = text_task(robot, DEMO_TASK)
        agent = make_agent(robot, build_policy("rule_based"), on_event=print_events, max_episode_s=60.0)
        for t, text in DEMO_CORRECTIONS:
            agent.schedule(t, text)
        result = agent.run(setup.description, setup.success, goal=setup.goal)
    print("\n" + summarize(result))
    for c in result.corrections:
        lat = f" [{c.latency_s * 1000:.1f} ms]" if c.latency_s is not None else ""
        print(f"  {c.t:5.2f}s  {c.text!r:32} -> {c.parsed['kind']:8} {c.reply}{lat}")
    learned_ok = _demo_learning(args)
    return 0 if result.outcome.word == SUCCEEDED and learned_ok else 1


def _demo_learning(args: argparse.Namespace) -> bool:
    """Part 2: a correction is needed once. Uses a throwaway knowledge base."""
    import tempfile

    from agent.episode import SUCCEEDED
    from agent.events import print_events
    from agent.knowledge import KnowledgeBridge
    from agent.loop import Agent, AgentConfig
    from agent.operator_link import attach_operator
    from agent.runner import build_robot
    from corrections_kb.store import SqliteKnowledgeStore
    from policies import RuleBasedPolicy
    from sim.operator import GraspPoint, OperatorConfig, SimulatedOperator
    from sim.scene import scene_from_dict

    print("\ncorrigo demo, part 2: a correction is needed once. The jug is too wide to grasp except by its\n"
          "handle. A simulated operator corrects the first grasp; the second time, the jug stands elsewhere.\n")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBridge(SqliteKnowledgeStore(f"{tmp}/kb.sqlite"), operator="demo operator")
        for n, (x, y, yaw) in enumerate(DEMO_JUG_POSES, 1):
            spec = scene_from_dict({"objects": [{"type": "jug", "colour": "blue", "pose": {"x": x, "y": y, "yaw": yaw}},
                                                {"type": "basket", "pose": {"x": 0.38, "y": 0.36, "yaw": 1.5708}}]})
            print(f"--- episode {n}: jug at ({x:.2f}, {y:.2f}), turned {yaw:+.1f} rad"
                  + (", operator watching" if n == 1 else ", nobody watching"))
            with build_robot(args.robot, scene=spec) as robot:
                agent = Agent(robot, RuleBasedPolicy(), config=AgentConfig(max_episode_s=60), on_event=print_events,
                              knowledge=kb)
                if n == 1:
                    attach_operator(agent, SimulatedOperator(robot, [GraspPoint(category="jug")], OperatorConfig(seed=1)))
                result = agent.run("put the jug in the basket")
                done = result.outcome.word == SUCCEEDED
            print(f"    {result.outcome}; operator corrections: {len(result.corrections)}")
            ok = ok and done
        kb.close()
    return ok


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    from agent.episode import EXIT_CODES, REFUSED
    from agent.loop import summarize
    from agent.runner import build_policy, build_robot, env_task, load_corrections_file, make_agent, text_task
    from console.terminal import TerminalConsole

    if bool(args.task) == bool(args.env):
        raise CorrigoError("give exactly one of --task TEXT or --env corrigo/<Task>-v0")
    if args.record:  # before the body starts, not after
        check_out_dir(args.record, "--record")
    scripted = load_corrections_file(args.corrections) if args.corrections else []
    interactive = sys.stdin.isatty() if args.interactive is None else args.interactive
    realtime = interactive if args.realtime is None else args.realtime
    cameras = tuple(c for c in args.cameras.split(",") if c)
    scene = args.scene
    if args.env:
        from sim.tasks import get_task

        scene = scene or get_task(args.env).scene
    policy = build_policy(args.policy)
    console = TerminalConsole()
    learn = args.learn or ("ask" if interactive and sys.stdin.isatty() else "auto")
    with contextlib.ExitStack() as stack:
        # The knowledge base first: a corrupt or missing store is refused before the body starts.
        knowledge = _open_kb(args.kb, learn=learn != "off", review=console.review if learn == "ask" else None,
                             **({"operator": args.operator, "user": args.operator} if args.operator else {}))
        if knowledge is not None and hasattr(knowledge, "close"):
            stack.callback(knowledge.close)
        robot = stack.enter_context(build_robot(args.robot, scene=scene, seed=args.seed, cameras=cameras,
                                                image_size=args.image_size))
        setup = env_task(robot, args.env, args.seed) if args.env else text_task(robot, args.task)
        recorder = None
        if args.record:
            from agent.recorder import EpisodeRecorder

            recorder = EpisodeRecorder(args.record, 1.0 / robot.control_dt, robot.observation_features, robot.name)
            stack.callback(recorder.close)
        agent = make_agent(robot, policy, on_event=console.on_event, realtime=realtime, max_episode_s=args.max_time,
                           viewpoint=args.viewpoint, recorder=recorder, knowledge=knowledge)
        console.attach(agent)
        for t, text in scripted:
            agent.schedule(t, text)
        stack.callback(console.close)  # first to run: the prompt goes, what follows starts its own line
        if interactive:
            console.start_reader()
        result = agent.run(setup.description, setup.success, goal=setup.goal)
    print(summarize(result), flush=True)
    if result.outcome.word == REFUSED:
        print(f"corrigo: refused: {result.outcome.reason}", file=sys.stderr)
    return EXIT_CODES[result.outcome.word]


def _open_kb(spec: str | None, **kwargs: object) -> object | None:
    """`none`, `default` (a file under the user's data directory), a path, or `SCHEME:ARG` of a store."""
    if spec is None or spec == "none":
        return None
    if not spec.strip():
        raise CorrigoError("--kb is empty: give a path, sqlite:PATH, new:PATH, default or none")
    from agent.knowledge import open_knowledge

    return open_knowledge(spec, **kwargs)


@command("envs")
def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import sim
    from sim.tasks import TASKS

    for eid, (name, task) in zip(sim.ENV_IDS, TASKS.items()):
        line = f"{eid:28} scene={task.scene:11} e.g. {task.templates[0]!r}"
        if args.check:
            from gymnasium.utils.env_checker import check_env

            env = gym.make(eid, backend=args.backend)
            try:
                check_env(env.unwrapped, skip_render_check=True)
                line += "  check_env: ok"
            finally:
                env.close()
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    # Run the canonical `agent.cli` module, not this `__main__` copy: extensions
    # (agent.cli_serve, ...) register their commands into `agent.cli`.
    from agent.cli import main as _main

    raise SystemExit(_main())
