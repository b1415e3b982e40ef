"""[open-skills]: a skill brings its own language; nothing outside skills/ names a skill.

A new skill, `wipe(surface)`, is written and registered here, in the test module, and
without editing any table elsewhere: the parser understands "wipe it twice more" (the
skill's own adjustment words), "first scrub the plate" (its own verb), "slower" and "a
bit to the left" reach it while it runs on a real PyBullet arm, and an object correction
retargets its own slot.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from agent.loop import Agent, AgentConfig
from cli_helpers import cli
from corrections_kb.parser import parse
from policies import RuleBasedPolicy
from robot.lexicon import Adjustment
from sim import make_sim_arm
from sim.scene import scene_from_dict
from skills import SkillLibrary, default_library
from skills.arm import ARM_SKILLS
from skills.library import SKILLS
from wipe_skill import Wipe

ROOT = Path(__file__).resolve().parents[1]


def wipe_library() -> SkillLibrary:
    lib = SkillLibrary()
    for s in (*ARM_SKILLS, Wipe()):
        lib.register(s)
    return lib


def test_a_new_skill_brings_its_words_to_the_parser() -> None:
    lex = wipe_library().lexicon()
    c = parse("wipe it twice more", lexicon=lex)
    assert (c.kind, c.skill, c.param, c.delta) == ("skill", "wipe", "passes", 2)
    c = parse("scrub the plate three more times", lexicon=lex)
    assert (c.kind, c.param, c.delta) == ("skill", "passes", 3)
    assert parse("wipe it more", lexicon=lex).delta == 1 and parse("uh, wipe it once more", lexicon=lex).delta == 1
    c = parse("wipe it a bit harder", lexicon=lex)
    assert (c.skill, c.param, c.delta) == ("wipe", "height", pytest.approx(-0.0025))
    c = parse("first scrub the plate", lexicon=lex)  # its own verb starts an instruction
    assert (c.kind, c.plan_op, c.instructions) == ("plan", "insert", ["scrub the plate"])
    # without the skill in the lexicon none of this is a skill correction
    assert parse("wipe it twice more", lexicon=default_library().lexicon()).kind != "skill"
    assert parse("first scrub the plate", lexicon=default_library().lexicon()).plan_op != "insert"


def test_the_lexicon_describes_the_new_skill() -> None:
    words = wipe_library().lexicon().get("wipe")
    assert words is not None
    assert words.primary_slot == "surface" and words.object_slots == ("surface",)
    assert words.verbs == ("wipe", "scrub", "clean")
    assert words.param("passes").kind == "int" and words.param("passes").default == 2
    assert words.after_contact("wipe") and not words.after_contact("approach")


def test_a_skill_whose_words_refer_to_nothing_is_refused() -> None:
    class Broken(Wipe):
        name: ClassVar[str] = "broken_wipe"
        adjustments = (Adjustment("pressure", (r"press harder",), amount=1.0),)

    with pytest.raises(Exception, match="pressure"):
        SkillLibrary().register(Broken())


PLATE_SCENE = {"objects": [{"type": "plate", "colour": "white", "pose": {"x": 0.5, "y": 0.0}},
                           {"type": "bowl", "colour": "blue", "pose": {"x": 0.45, "y": 0.25}}]}


Trace = list[tuple[float, str | None, np.ndarray]]  # (t, phase, ee position)


def run_wipe(corrections: list[tuple[float, str]], task: str = "wipe the plate") -> tuple[Any, Trace]:
    lib = wipe_library()
    with make_sim_arm("pybullet", scene=scene_from_dict(PLATE_SCENE), seed=0) as arm:
        trace: Trace = []
        agent = Agent(arm, RuleBasedPolicy(library=lib), lib, config=AgentConfig(max_episode_s=60))
        agent.observers.append(lambda a: trace.append(
            (a.t, a.ctx.phase, np.asarray(a.robot.get_observation()["observation.state"][:3], float))))
        for t, text in corrections:
            agent.schedule(t, text)
        return agent.run(task), trace


@pytest.fixture(scope="module")
def baseline() -> tuple[Any, Trace]:
    result, trace = run_wipe([])
    assert [s.call["skill"] for s in result.steps] == ["wipe"] and result.steps[0].ok
    assert result.steps[0].params["passes"] == 2
    return result, trace


def sweep_centre(trace: Trace, after_s: float = 0.0) -> float:
    """Middle of the sideways sweeps (y, m) while wiping, after `after_s`."""
    ys = [p[1] for t, phase, p in trace if phase == "wipe" and t >= after_s]
    return (max(ys) + min(ys)) / 2


def test_corrections_reach_the_new_skill_on_a_real_arm(baseline: tuple[Any, Trace]) -> None:
    base, base_trace = baseline
    result, trace = run_wipe([(2.0, "wipe it twice more"), (2.5, "slower"), (3.0, "a bit to the left")])
    step = result.steps[0]
    kinds = [c.parsed["kind"] for c in result.corrections]
    assert kinds == ["skill", "speed", "motion"] and all(c.applied for c in result.corrections)
    assert step.ok and step.message == "wiped the white plate 4 times"
    assert step.params["passes"] == 4 and "passes 2 -> 4 (now)" in result.corrections[0].reply
    assert step.offset == pytest.approx([0.0, 0.02, 0.0])
    assert step.t_end - step.t_start > 1.5 * (base.steps[0].t_end - base.steps[0].t_start)
    # the sweeps after the nudge are centred 2 cm further left than the uncorrected ones
    assert sweep_centre(trace, after_s=4.0) - sweep_centre(base_trace) == pytest.approx(0.02, abs=0.006)


def test_an_object_correction_retargets_the_new_skills_slot(baseline: tuple[Any, Trace]) -> None:
    result, trace = run_wipe([(1.0, "no, the bowl")])
    assert result.corrections[0].reply == "ok, the bowl: wipe the bowl"
    done = [s for s in result.steps if s.ok]
    assert done and done[-1].call == {"skill": "wipe", "args": {"surface": "bowl"}}
    assert sweep_centre(trace, after_s=2.0) == pytest.approx(0.25, abs=0.02), "it should wipe over the bowl (y = 0.25)"


# ----- no skill name outside skills/ -------------------------------------------------------
# English words that happen to spell a skill name ("move", "pick", "place" as verbs the parser
# reads, "rotate" as a correction kind), listed by where they live. Anything else is a skill's
# identity written outside skills/.
WORD_TABLES = {
    "corrections_kb/parser.py": {"GERUNDS", "MOTION_ALLOWED", "ROTATE_VERBS", "SPEED_SENSE", "SPEED_ALLOWED",
                                 "ACTION_VERBS", "NP_FORBIDDEN", "PROTECTED_WORDS", "STOP_PHRASES"},
    "corrections_kb/types.py": {"KINDS", "NUDGE_KINDS"},
    "corrections_kb/effects.py": {"EFFECT_EXAMPLES"},  # documentation: what each effect type looks like
}
# (file, word): the simulated person reads the words on the screen ("move ..."), not skill names
READ_AS_TEXT = {("sim/operator.py", "move")}


def _skill_literals(source: str, rel: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, word) of every string constant in `source` (the file `rel`) that is a skill name."""
    tree = ast.parse(source)
    allowed_nodes: set[int] = set()
    for node in tree.body:  # module-level word tables
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if getattr(target, "id", None) in WORD_TABLES.get(rel, ()):
                allowed_nodes |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):  # Correction(kind="rotate"): a correction kind
        if isinstance(node, ast.keyword) and node.arg == "kind":
            allowed_nodes |= {id(n) for n in ast.walk(node)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names
            and id(n) not in allowed_nodes and (rel, n.value) not in READ_AS_TEXT]


def test_no_skill_name_is_written_outside_skills() -> None:
    names = set(default_library().names())
    found = []
    for pkg in ("agent", "policies", "corrections_kb", "console", "sim", "hw_drivers", "robot"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = f.relative_to(ROOT).as_posix()
            found += [f"{rel}:{line}: {word!r}" for line, word in _skill_literals(f.read_text(), rel, names)]
    assert not found, "skill names outside skills/ (ask the lexicon for a role or a slot instead):\n" + "\n".join(found)


def test_the_literal_check_catches_a_skill_name() -> None:
    """The check above can fail: code that names a skill is caught, a word table is not."""
    names = set(default_library().names())
    code = 'from skills import SkillCall\nCALL = SkillCall("pick", {"object": "x"})\nKINDS = ("rotate",)\n'
    assert _skill_literals(code, "agent/probe.py", names) == [(2, "pick"), (3, "rotate")]
    assert _skill_literals(code, "corrections_kb/types.py", names) == [(2, "pick")]


# ----- a skill plugged in by installing a package (a real dist-info on sys.path) ----------------
@pytest.fixture
def wipe_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A third-party distribution whose `corrigo.skills` entry point is the wipe skill."""
    (tmp_path / "corrigo_wipe_plugin.py").write_text("from wipe_skill import Wipe  # the package's skill\n")
    info = tmp_path / "corrigo_wipe_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: corrigo-wipe-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[corrigo.skills]\nwipe = corrigo_wipe_plugin:Wipe\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    SKILLS.reload_entry_points()
    default_library.cache_clear()
    yield tmp_path
    SKILLS.reload_entry_points()
    default_library.cache_clear()


def test_an_installed_skill_joins_the_default_library(wipe_plugin: Path) -> None:
    lib = default_library()
    assert "wipe" in lib and lib.names()[:3] == ["close_drawer", "close_gripper", "go_home"]
    assert [s.name for s in lib.lexicon()][-1] == "wipe"  # after the built-ins: their words keep priority
    c = parse("wipe it twice more", lexicon=lib.lexicon())
    assert (c.skill, c.param, c.delta) == ("wipe", "passes", 2)


def test_an_installed_skill_runs_from_the_cli(wipe_plugin: Path) -> None:
    scene = wipe_plugin / "plate.yaml"
    scene.write_text("objects:\n  - {type: plate, colour: white, pose: {x: 0.5, y: 0.0}}\n")
    script = wipe_plugin / "corrections.txt"
    script.write_text("2.0 wipe it twice more\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(wipe_plugin), str(ROOT / "tests"), str(ROOT)])}
    run = cli("run", "--task", "wipe the plate", "--scene", str(scene), "--kb", "none", "--no-interactive",
              "--no-realtime", "--max-time", "40", "--corrections", str(script), env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "wipe: passes 2 -> 4 (now)" in run.stdout and "wiped the white plate 4 times" in run.stdout, run.stdout
