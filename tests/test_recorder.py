"""Episodes recorded as LeRobotDataset v3, read back; a crash mid-episode loses nothing earlier."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from policies.dataset import Dataset
from agent.recorder import EpisodeRecorder
from policies.dataset import DatasetError


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    corr = root / "corrections.txt"
    corr.write_text("# scripted operator\n1.0 wait\n1.5 move 2 cm to the left\n2.5 continue\n6.0 perfect\n")
    out = cli("run", "--task", "put the red block in the blue bowl", "--record", str(root / "typed"),
              "--corrections", str(_write(root / "instr.txt", "0.5 grab the green block\n")))
    assert out.returncode in (0, 1), out.stderr
    out = cli("run", "--task", "put the red block in the blue bowl", "--record", str(root / "data"),
              "--cameras", "front,wrist", "--image-size", "48", "--corrections", str(corr))
    assert out.returncode == 0, out.stderr + out.stdout
    out = cli("run", "--env", "corrigo/Stack-v0", "--record", str(root / "stack"))
    assert out.returncode == 0, out.stderr
    return root


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_operator_instructions_are_marked(recorded: Path) -> None:
    ep = Dataset(recorded / "typed").episode(0)
    src = ep.instruction_sources()
    instr = ep.instructions()
    op = [i for i, s in zip(instr, src) if s == "operator"]
    assert op and set(op) == {"pick up the green block"}
    assert src[0] == "policy"


def test_layout_and_metadata(recorded: Path) -> None:
    data = recorded / "data"
    for rel in ("meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                "data/chunk-000/file-000.parquet"):
        assert (data / rel).is_file(), rel
    info = json.loads((data / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20.0 and info["total_episodes"] == 1
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    assert info["features"]["action"]["names"][:3] == ["ee.x", "ee.y", "ee.z"]
    stats = json.loads((data / "meta/stats.json").read_text())
    assert len(stats["observation.state"]["mean"]) == 15


def test_frames_read_back(recorded: Path) -> None:
    ds = Dataset(recorded / "data")
    assert len(ds) == 1 and ds.tasks == ["put the red block in the blue bowl"]
    ep = ds.episode(0)
    assert ep.meta["success"] is True and ep.meta["complete"] is True
    n = len(ep)
    assert np.allclose(ep.column("timestamp"), np.arange(n) / 20.0, atol=1e-5)
    assert list(ep.column("frame_index")) == list(range(n))
    assert ep.image("observation.images.wrist", 5).shape == (48, 48, 3)
    state = np.stack(ep.column("observation.state"))
    assert state.shape == (n, 15)
    # instructions: the active skill, persistent until replaced
    instr = ep.instructions()
    assert instr[0] == "pick up the red block" and instr[-1] == "put it in the blue bowl"
    assert set(ep.instruction_sources()) == {"policy"}
    assert {o["name"] for o in ep.objects()} >= {"red_block", "blue_bowl"}
    # corrections: on the frame they fired, with the parsed form
    corr = ep.corrections()
    assert [c["text"] for c in corr] == ["wait", "move 2 cm to the left", "continue", "perfect"]
    assert corr[1]["parsed"]["kind"] == "motion" and corr[1]["parsed"]["distance_m"] == pytest.approx(0.02)
    assert corr[0]["frame"] == 20 and corr[0]["timestamp"] == pytest.approx(1.0)
    # intervention frames: while stopped (1.0 s .. 2.5 s) and the nudge
    iv = ep.column("intervention")
    assert iv[25:49].all() and not iv[:19].any()
    assert ep.meta["num_corrections"] == 4
    # the arm moved 2 cm left while stopped
    y = state[:, 1]
    assert y[48] - y[21] == pytest.approx(0.02, abs=0.004)


def test_second_dataset_is_separate(recorded: Path) -> None:
    ds = Dataset(recorded / "stack")
    assert len(ds) == 1 and ds.episode(0).meta["success"] is True
    assert "observation.images.front" not in ds.info["features"]


def test_incompatible_directory_is_refused(recorded: Path) -> None:
    out = cli("run", "--env", "corrigo/Stack-v0", "--record", str(recorded / "data"))  # no cameras this time
    assert out.returncode == 2 and "other features" in out.stderr and "Traceback" not in out.stderr


def test_corrupt_info_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a readable dataset info"):
        EpisodeRecorder(tmp_path, 20.0, {})
    assert (tmp_path / "meta" / "info.json").read_text() == "{not json"


@pytest.mark.parametrize("on_partial", ["recover", "discard"])
def test_killed_mid_episode_keeps_earlier_episodes(tmp_path: Path, on_partial: str) -> None:
    root = tmp_path / "ds"
    for seed in (0, 1):
        out = cli("run", "--env", "corrigo/Stack-v0", "--seed", str(seed), "--record", str(root))
        assert out.returncode == 0, out.stderr
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--env", "corrigo/Stack-v0", "--seed", "2", "--realtime",
                             "--record", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    partial = root / "meta" / "partial" / "episode-000002.arrows"
    deadline = time.time() + 60
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size < 8_000):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert partial.exists(), "the running episode should stream to a partial file"
    ds = Dataset(root)  # readable while the partial is still there
    assert len(ds) == 2 and all(e.meta["complete"] for e in ds.episodes())
    assert all(len(e) > 50 for e in ds.episodes())
    from sim import make_sim_arm

    arm = make_sim_arm("pybullet", scene="stack")
    EpisodeRecorder(root, 20.0, arm.observation_features, "sim:pybullet", on_partial=on_partial)
    ds = Dataset(root)
    assert not partial.exists()
    if on_partial == "recover":
        assert len(ds) == 3
        ep = ds.episode(2)
        assert ep.meta["complete"] is False and ep.meta["success"] is None and len(ep) >= 20
        assert ep.task.startswith(("stack", "put", "place"))
    else:
        assert len(ds) == 2
