"""The learned high-level policy: candidates, data, batches, training, checkpoints, the CLI.

Tests that need the MiniLM / EfficientNet models are marked `kb`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, cli
from policies.learned.candidates import NUDGES, generate, is_place_target
from policies.learned.data import Sample, load_samples, split_by_episode
from policies.learned.train import CorrectionShareSampler
from robot.describe import resolve
from skills.library import default_library


# ----- recorded data shared by the tests (recorded once per module) -----
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("learned")
    out = cli("collect", "--env", "corrigo/Stack-v0", "--episodes", "4", "--start-seed", "0", "--out", str(root / "demos"),
              "--cameras", "front", "--image-size", "48", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "Stack" in out.stdout and "4/4" in out.stdout, out.stdout
    # an operator instruction replaces the policy's (YAY-style correction data)
    (root / "instr.txt").write_text("0.5 grab the green block\n")
    out = cli("run", "--task", "put the red block in the blue bowl", "--record", str(root / "corr"),
              "--corrections", str(root / "instr.txt"), "--no-interactive")
    assert out.returncode in (0, 1), out.stderr
    # failed episodes (time limit) with no operator step: nothing usable
    out = cli("run", "--env", "corrigo/Stack-v0", "--record", str(root / "failed"), "--max-time", "0.5", "--no-interactive")
    assert out.returncode == 1, out.stdout + out.stderr
    return root


# ----- candidates -----
SCENES = [("tabletop", 0), ("pick_place", 1), ("stack", 2), ("sort_fruit", 3), ("drawer", 4), ("pick_place", 7)]


@pytest.mark.parametrize("scene,seed", SCENES)
def test_candidates_cover_every_skill_object_and_parse(scene: str, seed: int) -> None:
    from sim import make_sim_arm

    arm = make_sim_arm("pybullet", scene=scene, seed=seed)
    arm.connect()
    try:
        objects = arm.scene_objects()
    finally:
        arm.disconnect()
    lib = default_library()
    cands = generate(objects, lib)
    by = {(c.skill, c.obj) for c in cands}
    for o in objects:
        if o.attributes.get("graspable"):
            assert ("pick", o.name) in by, o.name
        if is_place_target(o):
            assert ("place", o.name) in by, o.name
        if o.category == "cabinet":
            assert ("open_drawer", o.name) in by and ("close_drawer", o.name) in by
    assert ("go_home", None) in by and ("done", None) in by
    moves = [c for c in cands if c.skill == "move"]
    assert {c.call.args["direction"] for c in moves} == {d for d, _ in NUDGES}
    texts = [c.text for c in cands]
    assert len(texts) == len(set(texts))
    for c in cands:
        if c.skill == "done":
            continue
        call = lib.parse(c.text)
        assert call is not None and call.skill == c.skill, c.text
        assert lib.render(call) == c.text
        for slot in ("object", "target"):
            if slot in call.args:
                assert resolve(call.args[slot], objects).name == c.obj, c.text


# ----- batches and split -----
def test_correction_share_per_batch() -> None:
    normal, corr = list(range(100)), list(range(100, 120))
    s = CorrectionShareSampler(normal, corr, batch_size=20, share=0.1, rng=np.random.default_rng(0))
    batches = list(s)
    assert len(batches) == len(s)
    seen = []
    for b in batches:
        n_corr = sum(i >= 100 for i in b)
        assert n_corr == 2 if len(b) == 20 else n_corr >= 1, b
        seen += [i for i in b if i < 100]
    assert sorted(seen) == normal  # one pass over the normal samples per epoch
    s25 = CorrectionShareSampler(normal, corr, batch_size=32, share=0.25, rng=np.random.default_rng(1))
    assert all(sum(i >= 100 for i in b) == 8 for b in s25 if len(b) == 32)
    # no correction samples: plain batches
    plain = list(CorrectionShareSampler(normal, [], batch_size=20, share=0.1, rng=np.random.default_rng(0)))
    assert sorted(i for b in plain for i in b) == normal and all(len(b) == 20 for b in plain)
    # only correction samples
    only = list(CorrectionShareSampler([], corr, batch_size=8, share=0.1, rng=np.random.default_rng(0)))
    assert only and all(all(i >= 100 for i in b) for b in only)


def _fake_samples(n_eps: int, per: int) -> list[Sample]:
    from policies.learned.candidates import Candidate

    done = Candidate("done", "done", None)
    return [Sample(f"ds{e % 2}", e, f, "t", [], [], [], None, done) for e in range(n_eps) for f in range(per + e % 3)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_never_cuts_an_episode(seed: int) -> None:
    samples = _fake_samples(20, 4)
    train, val = split_by_episode(samples, 0.2, seed)
    assert val and train and sorted(train + val) == list(range(len(samples)))
    tk = {samples[i].episode_key for i in train}
    vk = {samples[i].episode_key for i in val}
    assert not tk & vk
    assert split_by_episode(samples, 0.2, seed) == (train, val)  # deterministic
    assert split_by_episode(_fake_samples(3, 4), 0.2, seed)[1] == []  # too few episodes: no validation


# ----- data -----
def test_samples_from_recorded_episodes(data: Path) -> None:
    lib = default_library()
    samples, rep = load_samples([data / "demos"], lib)
    assert rep.episodes == 4 and rep.image_key == "observation.images.front" and rep.image_shape == [48, 48, 3]
    assert all(s.image_png for s in samples)
    by_ep: dict[int, list[str]] = {}
    for s in samples:
        by_ep.setdefault(s.episode, []).append(s.target.skill)
    assert all(v[0] == "pick" and v[-1] == "done" and "place" in v for v in by_ep.values()), by_ep
    corr, _ = load_samples([data / "corr"], lib)
    marked = [s for s in corr if s.correction]
    assert [s.target.text for s in marked][:1] == ["pick up the green block"]
    # the policy step the operator overrode right away is not a sample; the operator's instruction
    # replaces it at that moment: the policy's first decision, with nothing before it in the history
    assert not any(s.target.text == "pick up the red block" and not s.correction for s in corr)
    assert marked[0].frame == 0 and marked[0].history == [], (marked[0].frame, marked[0].history)


def test_train_cli_errors_are_one_line(data: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli("train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")), "no such dataset")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")), "not a dataset")
    # a dataset whose episode table is empty
    e0 = tmp_path / "noeps"
    shutil.copytree(data / "failed", e0)
    import pyarrow.parquet as pq

    ep_p = e0 / "meta/episodes/chunk-000/file-000.parquet"
    pq.write_table(pq.read_table(ep_p).slice(0, 0), ep_p)
    assert_one_line_error(cli("train", "--data", str(e0), "--out", str(tmp_path / "o")), "no episodes")
    # garbage in info.json, then in a data file
    bad = tmp_path / "bad_info"
    shutil.copytree(data / "demos" / "Stack", bad)
    (bad / "meta/info.json").write_text("{not json")
    assert_one_line_error(cli("train", "--data", str(bad), "--out", str(tmp_path / "o")), "unreadable")
    bad2 = tmp_path / "bad_parquet"
    shutil.copytree(data / "demos" / "Stack", bad2)
    (bad2 / "data/chunk-000/file-001.parquet").write_bytes(b"PAR1 garbage garbage")
    assert_one_line_error(cli("train", "--data", str(bad2), "--out", str(tmp_path / "o")), "episode")
    # only failed episodes without operator steps
    assert_one_line_error(cli("train", "--data", str(data / "failed"), "--out", str(tmp_path / "o")), "no usable steps")
    # bad option values
    assert_one_line_error(cli("train", "--data", str(data / "demos"), "--out", str(tmp_path / "o"), "--correction-share", "1.5"),
                          "--correction-share")
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.parametrize("field,value,needle", [("fps", -1, "fps"), ("fps", float("nan"), "fps"),
                                                ("shape", [0], "observation.state"), ("shape", [], "observation.state")])
def test_dataset_metadata_numbers_are_refused(data: Path, tmp_path: Path, field: str, value: object, needle: str) -> None:
    """A recorded dataset whose info.json says fps -1 or a state of shape [0] is refused, naming the file
    (it used to be read and trained on)."""
    bad = tmp_path / "bad"
    shutil.copytree(data / "demos" / "Stack", bad)
    info = json.loads((bad / "meta/info.json").read_text())
    if field == "fps":
        info["fps"] = value
    else:
        info["features"]["observation.state"]["shape"] = value
    (bad / "meta/info.json").write_text(json.dumps(info))
    line = assert_one_line_error(cli("train", "--data", str(bad), "--out", str(tmp_path / "o"), "--no-progress"), needle)
    assert "info.json" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.kb
def test_resume_from_a_corrupt_checkpoint_is_one_line(trained: Path, data: Path, tmp_path: Path) -> None:
    """`train --resume` over a broken train_state.json (or its tensors) says which file, in one line
    (it was a JSONDecodeError traceback, after reading all the data)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    newest = sorted((run / "checkpoints").glob("epoch-*"))[-1]
    args = ("train", "--data", str(data / "demos"), str(data / "corr"), "--out", str(run), "--epochs", "9", "--resume",
            "--no-progress")
    good_state = (newest / "train_state.json").read_text()
    (newest / "train_state.json").write_text(good_state[: len(good_state) // 2])
    assert_one_line_error(cli(*args), str(newest / "train_state.json"))
    (newest / "train_state.json").write_text(good_state)
    (newest / "train_state.safetensors").write_bytes(b"\x00" * 16)
    assert_one_line_error(cli(*args), "cannot resume", str(newest))


def test_policy_errors_are_one_line(tmp_path: Path) -> None:
    out = cli("run", "--env", "corrigo/Stack-v0", "--policy", f"learned:{tmp_path / 'nothing'}", "--no-interactive")
    assert_one_line_error(out, "no such checkpoint")
    assert_one_line_error(cli("collect", "--env", "corrigo/Nope-v0", "--out", str(tmp_path / "c")), "unknown task")
    assert_one_line_error(cli("collect", "--env", "corrigo/Stack-v0", "--out", str(tmp_path / "c"), "--operator", "sim"),
                          "unknown operator")


# ----- training and the policy (need MiniLM + EfficientNet) -----
@pytest.fixture(scope="module")
def trained(data: Path) -> Path:
    out = data / "policy"
    r = cli("train", "--data", str(data / "demos"), str(data / "corr"), "--out", str(out), "--epochs", "2", "--seed", "3",
            "--no-progress")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "epoch   2/2" in r.stdout and "val acc" in r.stdout, r.stdout
    return out


@pytest.mark.kb
def test_train_writes_a_policy_and_resumes(trained: Path, data: Path) -> None:
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["type"] == "corrigo-learned-hlp" and cfg["image_key"] == "observation.images.front"
    assert cfg["train"]["correction_samples"] >= 1 and cfg["train"]["epochs_done"] == 2
    assert (trained / "model.safetensors").is_file() and (trained / "checkpoints/epoch-002/train_state.safetensors").is_file()
    # without --resume an existing run is not overwritten
    r = cli("train", "--data", str(data / "demos"), "--out", str(trained), "--epochs", "3", "--no-progress")
    assert_one_line_error(r, "--resume")
    r = cli("train", "--data", str(data / "demos"), str(data / "corr"), "--out", str(trained), "--epochs", "3", "--seed", "3",
            "--resume", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout and "epoch   3/3" in r.stdout and "epoch   1/3" not in r.stdout, r.stdout
    assert json.loads((trained / "config.json").read_text())["train"]["epochs_done"] == 3
    # fine-tuning from it (--init) on new data
    r = cli("train", "--data", str(data / "corr"), str(data / "demos"), "--out", str(data / "post"), "--epochs", "1",
            "--init", str(trained), "--correction-share", "0.25", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "initialised from" in r.stdout and "25% of each batch" in r.stdout, r.stdout


@pytest.mark.kb
def test_saved_policy_gives_identical_scores(trained: Path, data: Path, tmp_path: Path) -> None:
    from policies.learned.features import StepInput
    from policies.learned.images import decode_png, image_feature
    from policies.learned.policy import LearnedPolicy
    from policies.learned.train import _write_policy

    p1 = LearnedPolicy(trained)
    _write_policy(tmp_path / "copy", p1.model, p1.config, p1.texts)
    p2 = LearnedPolicy(tmp_path / "copy")
    samples, _ = load_samples([data / "demos"], default_library())
    for s in samples[:6]:
        img = image_feature(decode_png(s.image_png))
        step = StepInput(s.task, s.history, s.history_sources, s.objects, s.state, [], img)
        c1, s1 = p1.score(step)
        c2, s2 = p2.score(step)
        assert [c.text for c in c1] == [c.text for c in c2]
        assert np.array_equal(s1, s2)
        _, s3 = p1.score(step)
        assert np.array_equal(s1, s3)  # deterministic
        # knowledge as objects with .statement or as strings
        k1 = p1.score(StepInput(s.task, s.history, s.history_sources, s.objects, s.state,
                                [type("K", (), {"statement": "stack blocks gently"})().statement], img))[1]
        k2 = p1.score(StepInput(s.task, s.history, s.history_sources, s.objects, s.state, ["stack blocks gently"], img))[1]
        assert np.array_equal(k1, k2)


@pytest.mark.kb
def test_policy_runs_an_episode_and_stops_safely(trained: Path) -> None:
    from agent.runner import run_env_episode
    from policies.base import Done, Step
    from policies.learned.policy import LearnedPolicy
    from skills.base import SkillCall, SkillOutcome

    pol = LearnedPolicy(trained)
    result, robot = run_env_episode("sim:pybullet", "corrigo/Stack-v0", 11, policy=pol, max_episode_s=40.0)
    try:
        assert result.steps or result.done_reason
        assert result.success in (True, False)
        # the safety: a repeated choice ends the episode instead of looping
        obs = {"perception.objects": robot.scene_objects(), **robot.get_observation()}
        cands, scores = pol.score(pol.step_input(obs, result.task, [], []))
        assert len(cands) == len(scores) and np.isfinite(scores).all()
        pick = next(c for c in cands if c.skill == "pick")
        fixed = np.where([c.text == pick.text for c in cands], 1.0, 0.0).astype(np.float32)
        pol.score = lambda step, candidates=None: (cands, fixed)  # always prefers `pick`
        hist = [Step(SkillCall(pick.call.skill, dict(pick.call.args)), SkillOutcome(False, "missed"))]
        assert isinstance(pol.next_step(obs, result.task, hist, []), SkillCall)  # one retry is fine
        out = pol.next_step(obs, result.task, hist * pol.max_repeats, [])
        assert isinstance(out, Done) and not out.ok and "keeps choosing" in out.reason
        del pol.score
        long = [Step(SkillCall("go_home", {}), SkillOutcome(True))] * pol.max_steps
        out = pol.next_step(obs, result.task, long, [])
        assert isinstance(out, Done) and not out.ok
        # the registry string
        from policies.registry import make_policy

        assert make_policy(f"learned:{trained}").name == "learned"
        assert pol.latencies
    finally:
        robot.disconnect()


def test_operator_steps_replace_the_policy_steps_they_cut_short() -> None:
    from policies.learned.data import labelled_steps

    # (first frame, instruction, source, follows a "done")
    cut_short = [(0, "pick up the cup", "policy", False), (8, "pick up the mug", "operator", False),
                 (60, "put it on the plate", "policy", False)]
    pairs, replaced = labelled_steps(cut_short, ok=True)
    assert replaced == {0} and pairs == [(1, 0), (2, 2)]  # the mug labels the policy's first decision
    # after the policy said it was done, the operator adds a step: nothing is replaced
    after_done = [(0, "pick up the banana", "policy", False), (40, "put it in the basket", "policy", False),
                  (90, "pick up the apple", "operator", True), (130, "put it in the basket", "policy", False)]
    pairs, replaced = labelled_steps(after_done, ok=True)
    assert replaced == set() and pairs == [(0, 0), (1, 1), (2, 2), (3, 3)]
    # a failed episode keeps only the operator's steps
    pairs, replaced = labelled_steps(cut_short, ok=False)
    assert pairs == [(1, 0)]
