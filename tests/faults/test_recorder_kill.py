"""kill -9 of a process recording episodes (agent/recorder.py), at each of its write steps.

A child process (forked from a server that has pyarrow loaded, so a round costs ~0.1 s)
records into a directory holding one finished episode and SIGKILLs itself at write step
N (tests/faults/recorder_child.py counts them: each file's first half, each rename, each
streamed batch, the stream's removal). After each kill: every episode whose end_episode
returned is intact (frames checked value by value, through corrigo's reader and
pyarrow), no file is corrupt, the index agrees with its data files, tasks and global
indices; reopening the directory recovers the rest, after which info.json and stats.json
agree with the index exactly; and recording more works.
"""
from __future__ import annotations

import multiprocessing as mp
import random
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.recorder import EpisodeRecorder
from tests.faults import recorder_child as C
from tests.faults.conftest import Tally, rounds
from tests.faults.recorder_check import check, check_training_reader, finished

# each child re-imports the main module (pytest, under pytest): preload it too
PRELOAD = ["agent.recorder", "tests.faults.recorder_child", "pyarrow.dataset", "PIL.PngImagePlugin", "pytest"]


@pytest.fixture(scope="module")
def ctx() -> Any:
    c = mp.get_context("forkserver")
    c.set_forkserver_preload(PRELOAD)
    return c


def in_child(ctx: Any, target: Callable[..., None], *args: Any, timeout: float = 60) -> tuple[int, Any]:
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError("the recording child hung")
    return p.exitcode, (q.get(timeout=5) if p.exitcode == 0 else None)


def reopen_and_record(root: Path, done: list[dict[str, Any]], tag: int) -> None:
    """What a user does next: record into the same directory again (the parent, no kill switch)."""
    rec = EpisodeRecorder(root, C.FPS, C.features(), "fault-test")
    assert check(root, done, strict=True) == (0, 0)
    done.append(C.record(rec, tag, 25, None))
    rec.close()
    assert check(root, done, strict=True) == (0, 0)


def test_kill_at_each_write_step_loses_no_finished_episode(ctx: Any, tmp_path: Path, tally: Tally) -> None:
    base = tmp_path / "base"
    assert in_child(ctx, C.session_main, str(base), 0, [0], [30], str(tmp_path / "base.done"))[0] == 0
    base_done = finished(tmp_path / "base.done")
    # how many write steps one more episode of 45 frames (3 streamed batches) takes
    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    code, steps = in_child(ctx, C.session_main, str(probe), 0, [1], [45], str(tmp_path / "probe.done"))
    assert code == 0 and steps >= 12, steps
    lost = corrupt = kills = 0
    for n in range(1, steps + 1):
        d = tmp_path / f"kill-{n}"
        shutil.copytree(base, d)
        log = tmp_path / f"kill-{n}.done"
        code, _ = in_child(ctx, C.session_main, str(d), n, [1], [45], str(log))
        assert code == -9, f"step {n}: the child was not killed (exit {code})"
        kills += 1
        done = base_done + finished(log)
        lo, co = check(d, done, strict=False)
        lost, corrupt = lost + lo, corrupt + co
        assert lo == 0, f"kill at write step {n}: {lo} finished episodes lost"
        reopen_and_record(d, done, tag=2)
        if n == steps:
            check_training_reader(d)
    print(f"{kills} kills, one at each of {steps} write steps of an episode: 0 finished episodes lost, 0 corrupt files")
    tally.add("recorder kill -9", rounds=steps, kills=kills, lost_episodes=lost, corrupt_files=corrupt)


def test_repeated_kills_including_during_recovery(ctx: Any, tmp_path: Path, tally: Tally) -> None:
    """One directory, killed again and again at random steps; each reopen first recovers what
    the previous kill left, so kills also land in the middle of a recovery."""
    root = tmp_path / "ds"
    log = tmp_path / "done.jsonl"
    rng = random.Random(14)
    n = rounds(4, 400)
    kills = lost = corrupt = 0
    tag = 10
    for _ in range(n):
        tags = [tag, tag + 1]
        tag += 2
        frames = [rng.randint(1, 50), rng.randint(1, 50)]
        code, _ = in_child(ctx, C.session_main, str(root), rng.randint(1, 40), tags, frames, str(log))
        kills += int(code == -9)
        lo, co = check(root, finished(log), strict=False)
        lost, corrupt = lost + lo, corrupt + co
        assert lo == 0
    done = finished(log)
    reopen_and_record(root, done, tag=tag)
    check_training_reader(root)
    print(f"{n} sessions on one directory, {kills} killed at a random step: {len(done)} finished episodes, all intact")
    tally.add("recorder kill -9", rounds=n, kills=kills, lost_episodes=lost, corrupt_files=corrupt)
