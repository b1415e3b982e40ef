"""Building a body, a task and an agent from user options (shared by the CLI and eval)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from agent.events import EventSink
from agent.goal import Goal, Placement
from agent.loop import Agent, AgentConfig
from policies.base import HighLevelPolicy
from robot.errors import CorrigoError
from robot.registry import make_robot
from robot.robot import Robot, SceneProvider


@dataclass
class TaskSetup:
    """A task for `Agent.run(description, success, goal=goal)`.

    `success` is a benchmark's own check (None: the agent checks the goal); `goal` the
    placements it asks for (None: the agent grounds them from the sentence, with what the
    knowledge base knows, e.g. that "cup" means the mug).
    """

    description: str
    success: Callable[[], bool | None] | None
    task_name: str | None = None  # the benchmark task it was recognised as, if any
    goal: Goal | None = None


def build_robot(spec: str, *, scene: str | None = None, seed: int = 0, cameras: tuple[str, ...] = (),
                image_size: int = 128, **extra: Any) -> Robot:
    """A body from its registry string; simulator options apply to `sim:*` bodies only."""
    if spec.startswith("sim:"):
        from sim.arm import CameraConfig

        kw: dict[str, Any] = {"seed": seed, "cameras": tuple(cameras), "camera": CameraConfig(image_size, image_size)}
        if scene:
            kw["scene"] = scene
        kw.update(extra)
        return make_robot(spec, **kw)
    return make_robot(spec, **extra)


def build_policy(spec: str) -> HighLevelPolicy:
    """A high-level policy from its registry string: `rule_based`, `learned:PATH`."""
    from policies.registry import make_policy

    return make_policy(spec)


def env_task(robot: Robot, env: str, seed: int) -> TaskSetup:
    """The task instance of a benchmark env on a body showing that env's scene."""
    from sim.tasks import get_task

    task = get_task(env)
    if not isinstance(robot, SceneProvider):
        raise CorrigoError(f"{robot.name} cannot run benchmark envs (it does not report its scene)")
    objects = robot.scene_objects()
    inst = task.instantiate(objects, seed)
    goal = Goal(tuple(Placement(rel, target, obj) for rel, obj, target in inst.placements(objects)))
    return TaskSetup(inst.description, lambda: inst.is_success(robot.scene_objects()), task.name, goal)


def text_task(robot: Robot, text: str) -> TaskSetup:
    """A free-form task sentence: the agent grounds its goal and checks it, or refuses it with
    the reason (see `Agent.run`).

    A sentence in a benchmark task's phrasing that names an object the scene lacks is a
    one-line error here already, naming the unknown word.
    """
    if not text.strip():
        raise CorrigoError("the task is empty; say what to do, e.g. 'put the red block in the blue bowl'")
    if not isinstance(robot, SceneProvider):
        return TaskSetup(text, None)
    from sim.tasks import task_from_text

    inst = task_from_text(text, robot.scene_objects())
    return TaskSetup(text, None, inst.task if inst is not None else None)


def load_corrections_file(path: str | Path) -> list[tuple[float, str]]:
    """Timed lines `3.5 move a bit to the left` (seconds of episode time); '#' starts a comment."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CorrigoError(f"cannot read corrections file {p}: {e}") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(\d+(?:\.\d*)?|\.\d+)\s+(.+)$", line)
        if not m:
            raise CorrigoError(f"{p} line {n}: expected '<seconds> <text>', got {line!r}")
        t = float(m[1])
        if not math.isfinite(t):  # 400 digits parse to inf: a correction that would never come
            raise CorrigoError(f"{p} line {n}: the time {m[1][:20]}... is not a finite number of seconds")
        out.append((t, m[2].strip()))
    return out


def make_agent(robot: Robot, policy: HighLevelPolicy, *, on_event: EventSink | None = None, realtime: bool = False,
               max_episode_s: float = 180.0, viewpoint: str = "robot", recorder: Any = None, knowledge: Any = None) -> Agent:
    return Agent(robot, policy, config=AgentConfig(max_episode_s=max_episode_s, realtime=realtime, viewpoint=viewpoint),
                 on_event=on_event, recorder=recorder, knowledge=knowledge)


def run_env_episode(robot_spec: str, env: str, seed: int, *, corrections: list[tuple[float, str]] | None = None,
                    policy: HighLevelPolicy | str = "rule_based", on_event: EventSink | None = None,
                    max_episode_s: float = 120.0, recorder: Any = None, knowledge: Any = None,
                    robot: Robot | None = None) -> tuple[Any, Robot]:
    """One episode of a benchmark task on a fresh (or reset) simulated body.

    Returns (EpisodeResult, robot); the robot stays connected so callers can
    inspect the final scene, and must disconnect it.
    """
    from sim.tasks import get_task

    task = get_task(env)
    if robot is None:
        robot = build_robot(robot_spec, scene=task.scene, seed=seed)
        robot.connect()
    else:
        robot.reset(seed)  # type: ignore[attr-defined]
    setup = env_task(robot, env, seed)
    pol = build_policy(policy) if isinstance(policy, str) else policy
    agent = make_agent(robot, pol, on_event=on_event, max_episode_s=max_episode_s, recorder=recorder, knowledge=knowledge)
    for t, text in corrections or []:
        agent.schedule(t, text)
    return agent.run(setup.description, setup.success, goal=setup.goal), robot
