"""The generic registry, the robot and policy registries on it, and entry-point plugins found for real."""
from __future__ import annotations

import configparser
import importlib
import os
import sys
import textwrap
import types
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, cli
from policies.base import PolicyError
from policies.registry import POLICIES, known_policies, make_policy
from robot.errors import CorrigoError
from robot.registry import ROBOTS, Registry, known_robots, make_robot

ROOT = Path(__file__).resolve().parents[1]
TASK = "put the red block in the blue bowl"
BUILTIN_ROBOTS = ["mock:arm", "sim:mujoco", "sim:pybullet", "ur_rtde:", "zmq://"]
UNKNOWN_ROBOT = "unknown robot 'foo' (known: mock:arm, sim:mujoco, sim:pybullet, ur_rtde:HOST, zmq://HOST:PORT)"
UNKNOWN_POLICY = "unknown policy 'vlm:x' (known: learned:PATH, rule_based)"


def _message(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


# ----- the generic class, on groups of its own -----
def test_exact_key_then_longest_prefix_on_a_separator() -> None:
    reg: Registry[str] = Registry("thing", "corrigo.tests-none")
    reg.register("sim:", lambda spec: f"prefix {spec}")
    reg.register("sim:fast", lambda spec: f"exact {spec}")
    reg.register("mock:arm", lambda spec: f"mock {spec}")
    assert reg.make("sim:fast") == "exact sim:fast"
    assert reg.make("sim:slow") == "prefix sim:slow"
    assert reg.make("mock:arm?hz=5") == "mock mock:arm?hz=5"
    with pytest.raises(CorrigoError) as e:  # a key ends at a separator: mock:arm is not mock:armadillo
        reg.make("mock:armadillo")
    assert _message(e) == "unknown thing 'mock:armadillo' (known: mock:arm, sim:, sim:fast)"
    assert reg.known() == ["mock:arm", "sim:", "sim:fast"]


def test_argument_convention_serves_stores_and_factory_serves_skills() -> None:
    stores: Registry[tuple] = Registry("store", "corrigo.tests-stores", call_with="argument")
    stores.register("sqlite", lambda arg, **kw: ("sqlite", arg, kw), usage="sqlite:PATH")
    assert stores.make("sqlite:/tmp/kb.db", timeout=3) == ("sqlite", "/tmp/kb.db", {"timeout": 3})
    assert stores.make("sqlite") == ("sqlite", "", {})

    class Wipe:
        name = "wipe"

    skills: Registry[Wipe] = Registry("skill", "corrigo.tests-skills")
    skills.register("wipe", Wipe)
    assert isinstance(skills.factory("wipe")(), Wipe)
    with pytest.raises(CorrigoError) as e:
        skills.factory("mop")
    assert _message(e) == "unknown skill 'mop' (known: wipe)"
    assert _message(pytest.raises(CorrigoError, Registry("x", "corrigo.tests-none").make, "y")) == \
        "unknown x 'y' (known: none installed)"


def test_an_entry_whose_requirements_are_missing_is_not_advertised() -> None:
    reg: Registry[str] = Registry("robot", "corrigo.tests-none")
    reg.register("here:", lambda spec: spec, requires=("json",))
    reg.register("gone:", lambda spec: spec, requires=("corrigo_no_such_module",), usage="gone:HOST",
                 install="corrigo-gone")
    reg.register("plain:", lambda spec: spec, requires=("corrigo_no_such_package.sub",))
    assert reg.known() == ["here:"]
    with pytest.raises(CorrigoError) as e:
        reg.make("gone:h")
    assert _message(e) == "robot 'gone:h' needs corrigo_no_such_module, which is not installed (pip install corrigo-gone)"
    assert "pip install corrigo_no_such_package.sub" in _message(pytest.raises(CorrigoError, reg.make, "plain:x"))
    with pytest.raises(CorrigoError) as e:
        reg.make("other")
    assert "(known: here:)" in _message(e)  # the missing ones are not listed either


def test_lazy_providers_are_imported_on_first_need(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[str] = Registry("robot", "corrigo.tests-none")
    holder = types.ModuleType("corrigo_test_registry_holder")
    holder.REG = reg  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, holder.__name__, holder)
    (tmp_path / "corrigo_test_provider.py").write_text(textwrap.dedent("""
        from corrigo_test_registry_holder import REG
        REG.register("lazy:", lambda spec: "lazy " + spec, usage="lazy:NAME")
        REG.register("extra", lambda spec: "extra")  # a key its provider key does not announce
    """))
    (tmp_path / "corrigo_test_bad_provider.py").write_text("import corrigo_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("corrigo_test_provider", "corrigo_test_bad_provider"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    reg.add_provider("lazy:", "corrigo_test_provider")
    reg.add_provider("bad:", "corrigo_test_bad_provider")
    assert "corrigo_test_provider" not in sys.modules
    assert reg.make("lazy:a") == "lazy lazy:a"
    assert reg.make("extra") == "extra"
    assert reg.known() == ["extra", "lazy:"]  # the provider that fails to import is left out
    with pytest.raises(CorrigoError) as e:
        reg.make("bad:x")
    assert _message(e) == ("robot 'bad:x' needs module 'corrigo_test_bad_provider', which failed to import: "
                           "No module named 'corrigo_no_such_module'")
    with pytest.raises(CorrigoError) as e:
        reg.make("nothing")
    assert _message(e) == "unknown robot 'nothing' (known: extra, lazy:NAME)"


# ----- the robot and policy registries -----
def test_unknown_robot_and_policy_list_what_is_installed() -> None:
    assert known_robots() == BUILTIN_ROBOTS
    assert known_policies() == ["learned", "rule_based"]
    with pytest.raises(CorrigoError) as e:
        make_robot("foo")
    assert _message(e) == UNKNOWN_ROBOT
    with pytest.raises(PolicyError) as e:
        make_policy("vlm:x")
    assert _message(e) == UNKNOWN_POLICY


def test_sim_mujoco_is_listed_only_when_mujoco_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mujoco", None)  # `import mujoco` fails; find_spec says it is absent
    assert "sim:mujoco" not in known_robots() and "sim:pybullet" in known_robots()
    with pytest.raises(CorrigoError) as e:
        make_robot("sim:mujoco")
    assert _message(e) == "robot 'sim:mujoco' needs mujoco, which is not installed (pip install mujoco)"
    assert "sim:mujoco" not in _message(pytest.raises(CorrigoError, make_robot, "foo"))


def test_the_cli_answers_an_unknown_robot_or_policy_in_one_line() -> None:
    robot = cli("run", "--task", TASK, "--robot", "foo", "--kb", "none", "--no-interactive")
    assert assert_one_line_error(robot) == f"corrigo: error: {UNKNOWN_ROBOT}"
    policy = cli("run", "--task", TASK, "--policy", "vlm:x", "--kb", "none", "--no-interactive")
    assert assert_one_line_error(policy) == f"corrigo: error: {UNKNOWN_POLICY}"


@pytest.mark.mujoco
def test_setup_cfg_declares_the_built_ins_as_entry_points() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    groups = {g: dict(line.split(" = ") for line in cfg["options.entry_points"][g].strip().splitlines())
              for g in ("corrigo.robots", "corrigo.policies")}
    assert sorted(groups["corrigo.robots"]) == known_robots()
    assert sorted(groups["corrigo.policies"]) == known_policies()
    for value in [*groups["corrigo.robots"].values(), *groups["corrigo.policies"].values()]:
        module, attr = value.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), value
    assert make_robot("mock:arm").name == "mock:arm"


# ----- entry points of installed distributions, found for real (a dist-info on sys.path) -----
PLUGIN = '''
"""A third-party corrigo plugin: a body under `demo:` and a policy `demo`."""
from hw_drivers.mock import MockArm
from policies.base import Done, HighLevelPolicy


class DemoArm(MockArm):
    def scene_objects(self):  # an empty table: perception sees nothing
        return []


def make_robot(spec, **kwargs):
    arm = DemoArm(**kwargs)
    arm.name = spec
    return arm


class DemoPolicy(HighLevelPolicy):
    name = "demo"
    version = "demo-0.1"

    def next_step(self, observation, task, history, knowledge):
        return Done("task complete")


def make_policy(arg):
    return DemoPolicy()


from skills.base import Skill, SkillOutcome


class Wipe(Skill):  # a skill plugin (the whole of one, minus doing anything)
    name = "wipe"
    templates = ("wipe the {surface}",)
    slots = ("surface",)
    primary_slot = "surface"

    def run(self, robot, call, ctx):
        yield from ()
        return SkillOutcome(True, "wiped")
'''


def _distribution(root: Path, name: str, version: str, entry_points: str) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A directory holding two installed plugin distributions, one working and one broken, on sys.path."""
    (tmp_path / "corrigo_demo_plugin.py").write_text(PLUGIN)
    _distribution(tmp_path, "corrigo-demo-plugin", "0.1", """
        [corrigo.robots]
        demo: = corrigo_demo_plugin:make_robot
        [corrigo.policies]
        demo = corrigo_demo_plugin:make_policy
        [corrigo.skills]
        wipe = corrigo_demo_plugin:Wipe
    """)
    (tmp_path / "corrigo_broken_plugin.py").write_text('raise RuntimeError("this plugin is broken")\n')
    _distribution(tmp_path, "corrigo-broken-plugin", "0.2", """
        [corrigo.robots]
        broken: = corrigo_broken_plugin:make_robot
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    ROBOTS.reload_entry_points()
    POLICIES.reload_entry_points()
    yield tmp_path
    for name in ("corrigo_demo_plugin", "corrigo_broken_plugin"):
        sys.modules.pop(name, None)
    ROBOTS.reload_entry_points()  # read again, without these, on the next lookup
    POLICIES.reload_entry_points()


def test_an_installed_plugin_registers_a_body_and_a_policy(plugins: Path) -> None:
    arm = make_robot("demo:x", control_hz=50.0)
    assert type(arm).__name__ == "DemoArm" and arm.name == "demo:x" and arm.control_dt == pytest.approx(0.02)
    with arm:
        assert arm.get_observation()["observation.state"].shape == (8,)
    policy = make_policy("demo")
    assert (policy.name, policy.version) == ("demo", "demo-0.1")
    assert known_robots() == sorted([*BUILTIN_ROBOTS, "demo:"])  # the broken one is left out, the others stay
    assert known_policies() == ["demo", "learned", "rule_based"]
    skills: Registry[object] = Registry("skill", "corrigo.skills")  # the same class serves the other groups
    assert skills.known() == ["wipe"] and type(skills.factory("wipe")()).__name__ == "Wipe"


def test_a_broken_plugin_gives_one_line_naming_its_distribution(plugins: Path) -> None:
    with pytest.raises(CorrigoError) as e:
        make_robot("broken:x")
    assert _message(e) == ("robot plugin 'broken:' (corrigo_broken_plugin:make_robot) from distribution "
                           "corrigo-broken-plugin 0.2 failed to load: RuntimeError: this plugin is broken")
    assert make_robot("mock:arm").name == "mock:arm"


def test_entry_points_of_the_built_ins_are_not_listed_twice(plugins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    robots = cfg["options.entry_points"]["corrigo.robots"]
    _distribution(plugins, "corrigo-installed-copy", "0.1.0", "[corrigo.robots]\n" + textwrap.dedent(robots))
    ROBOTS.reload_entry_points()
    monkeypatch.setitem(sys.modules, "mujoco", None)
    # the built-in entry (which requires mujoco) wins over the installed one of the same name (which cannot say so)
    assert known_robots() == ["demo:", "mock:arm", "sim:pybullet", "ur_rtde:", "zmq://"]


def test_plugins_reach_the_cli_through_pythonpath(plugins: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}
    run = cli("run", "--task", "wave hello", "--robot", "demo:x", "--policy", "demo", "--kb", "none", "--no-interactive",
              "--max-time", "5", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "task complete" in run.stdout, run.stdout
    broken = cli("run", "--task", TASK, "--robot", "broken:x", "--kb", "none", "--no-interactive", env=env)
    assert_one_line_error(broken, "corrigo-broken-plugin 0.2", "RuntimeError: this plugin is broken")
    unknown = cli("run", "--task", TASK, "--robot", "foo", "--kb", "none", "--no-interactive", env=env)
    assert_one_line_error(unknown, "known: demo:, mock:arm,")
