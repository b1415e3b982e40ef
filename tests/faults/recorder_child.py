"""The child side of the recorder fault tests: record episodes, SIGKILL ourselves at write step N.

The write steps are counted where the recorder's own code touches the disk, by wrapping
what it calls (not by rewriting it): `open` in agent.recorder (each write is split in two
halves so a kill can land mid-file), os.replace, Path.unlink, and the Arrow stream
(opening an episode's stream, each flushed batch). A step is a kill just before that
write (a kill just after one write is the same as a kill before the next). After every
`end_episode` that returns, a line is appended (and fsynced) to `done.jsonl`: the
parent's list of episodes that were finished before the kill.
"""
from __future__ import annotations

import json
import os
import pathlib
import resource
import signal
from pathlib import Path
from typing import Any, Callable

import numpy as np

import agent.recorder as R
from robot.types import Feature

FPS = 20.0
IMAGE = 12  # a tiny camera, so the image column is exercised
STATE_DIM = 8


def features() -> dict[str, Feature]:
    return {"observation.state": Feature("float32", (STATE_DIM,), tuple(f"s{i}" for i in range(STATE_DIM))),
            "observation.images.front": Feature("uint8", (IMAGE, IMAGE, 3), ("height", "width", "channel"))}


def state_of(tag: int, frame: int) -> np.ndarray:
    """The state recorded at `frame` of the episode tagged `tag`: checked back exactly."""
    return (tag * 1000 + frame + np.arange(STATE_DIM) / 8).astype(np.float32)


def record(rec: R.EpisodeRecorder, tag: int, frames: int, done_log: Path | None) -> dict[str, Any]:
    task = f"task {tag % 3}"  # tasks repeat and new ones appear: task indices must stay right
    rec.start_episode(task, {"policy": "fault-test", "robot": "none", "tag": tag})
    assert rec._ep is not None
    idx = rec._ep["episode_index"]
    img = np.zeros((IMAGE, IMAGE, 3), np.uint8)
    for f in range(frames):
        img[:] = (tag + f) % 256
        obs = {"observation.state": state_of(tag, f), "observation.images.front": img}
        action = {"ee.pos": np.array([0.4, 0.0, 0.3]), "ee.quat_xyzw": np.array([1.0, 0, 0, 0]), "gripper": 0.0}
        rec.add_frame(obs, action, "pick up the red block", False, [])
    success = tag % 2 == 0
    rec.end_episode(success, {"done_reason": "finished", "outcome": "succeeded" if success else "failed"})
    done = {"episode_index": idx, "tag": tag, "frames": frames, "task": task, "success": success}
    if done_log is not None:
        with open(done_log, "a") as f:
            f.write(json.dumps(done) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return done


def install_kill_switch(kill_at: int, counter: list[int]) -> None:
    """SIGKILL this process at write step `kill_at` (0: never; count only)."""
    def step() -> None:
        counter[0] += 1
        if counter[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def before(fn: Callable[..., Any]) -> Callable[..., Any]:
        # a kill right after one write is a kill right before the next: one step per write suffices
        def wrapped(*a: Any, **kw: Any) -> Any:
            step()
            return fn(*a, **kw)
        return wrapped

    class SplitWrites:
        def __init__(self, f: Any) -> None:
            self._f = f

        def write(self, data: bytes) -> int:
            half = len(data) // 2
            self._f.write(data[:half])
            self._f.flush()
            step()  # half a file on disk
            return half + self._f.write(data[half:])

        def __getattr__(self, name: str) -> Any:
            return getattr(self._f, name)

        def __enter__(self) -> "SplitWrites":
            return self

        def __exit__(self, *exc: object) -> None:
            self._f.close()

    real_open = open
    R.open = lambda *a, **kw: SplitWrites(real_open(*a, **kw))  # type: ignore[attr-defined]
    # a SIGKILL loses nothing the kernel already has, fsync or not (that is for power loss): skip its cost
    os.fsync = lambda fd: None
    os.replace = before(os.replace)
    real_unlink = pathlib.Path.unlink

    def unlink(self: pathlib.Path, missing_ok: bool = False) -> None:
        step()
        real_unlink(self, missing_ok=missing_ok)
        if self.suffix == ".arrows":
            step()  # the episode's stream removed: the last write of end_episode
    pathlib.Path.unlink = unlink  # type: ignore[method-assign]
    R.EpisodeRecorder._flush = before(R.EpisodeRecorder._flush)  # type: ignore[method-assign]
    R.ipc.new_stream = before(R.ipc.new_stream)


def session(root: str, kill_at: int, tags: list[int], frames: list[int], done_log: str) -> int:
    """Open the recorder on `root` (recovering what a kill left), record one episode per tag."""
    counter = [0]
    install_kill_switch(kill_at, counter)
    rec = R.EpisodeRecorder(root, FPS, features(), "fault-test")
    for tag, n in zip(tags, frames):
        record(rec, tag, n, Path(done_log))
    rec.close()
    return counter[0]


def session_main(root: str, kill_at: int, tags: list[int], frames: list[int], done_log: str, q: Any) -> None:
    q.put(session(root, kill_at, tags, frames, done_log))


def disk_full_main(root: str, limit: int, tags: list[int], frames: list[int], done_log: str, q: Any) -> None:
    """Record with RLIMIT_FSIZE set: writes past `limit` bytes fail with EFBIG, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us instead of failing the write
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        rec = R.EpisodeRecorder(root, FPS, features(), "fault-test")
        for tag, n in zip(tags, frames):
            record(rec, tag, n, Path(done_log))
        rec.close()
        q.put(("ok", ""))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which asserts its kind
        q.put((type(e).__name__, str(e)))
