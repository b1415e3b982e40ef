"""What a recorded directory must look like after any crash: the checks of the recorder fault tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from policies.dataset import DATA_PATH, EPISODES_PATH, Dataset
from tests.faults.recorder_child import FPS, state_of


def finished(done_log: Path) -> list[dict[str, Any]]:
    if not done_log.exists():
        return []
    return [json.loads(line) for line in done_log.read_text().splitlines() if line.strip()]


def check(root: Path, done: list[dict[str, Any]], strict: bool) -> tuple[int, int]:
    """(lost episodes, corrupt files). `strict` after the recorder reopened the directory: then the
    files derived from the episodes index (info.json, stats.json) must agree with it exactly;
    right after a kill they may lag it by the one episode that was being finalised."""
    corrupt = 0
    meta = root / "meta"
    for p in (meta / "info.json", meta / "stats.json"):
        if p.exists():
            try:
                json.loads(p.read_text())
            except ValueError:
                corrupt += 1
    parquet_files = [p for p in root.rglob("*.parquet")]
    for p in parquet_files:
        try:
            pq.read_table(p)
        except Exception:  # noqa: BLE001 - any failure to read is a corrupt file
            corrupt += 1
    assert corrupt == 0, f"corrupt files in {root}"
    if not (meta / "info.json").exists():
        assert not done, f"{len(done)} finished episodes but no meta/info.json"
        assert strict is False or not (root / EPISODES_PATH).exists()
        return 0, 0
    ds = Dataset(root)  # corrigo's own reader
    rows = {int(m["episode_index"]): m for m in ds.meta_episodes}
    lost = 0
    for d in done:
        m = rows.get(d["episode_index"])
        if m is None or not m["complete"] or m["success"] is not d["success"] or m["length"] != d["frames"] \
                or m["tasks"] != [d["task"]]:
            lost += 1
            continue
        ep = ds.episode(list(rows).index(d["episode_index"]))
        state = np.stack(ep.column("observation.state"))
        want = np.stack([state_of(d["tag"], f) for f in range(d["frames"])])
        if state.shape != want.shape or not np.array_equal(state, want):
            lost += 1
    # every row of the index, finished or recovered: its data file, indices and task agree
    start = 0
    for i, (idx, m) in enumerate(sorted(rows.items())):
        path = root / DATA_PATH.format(chunk_index=m["data/chunk_index"], file_index=m["data/file_index"])
        t = pq.read_table(path)
        n = t.num_rows
        assert n == m["length"] and n > 0, (idx, n, m["length"])
        assert (m["dataset_from_index"], m["dataset_to_index"]) == (start, start + n), (idx, m["dataset_from_index"], start)
        assert t.column("index").to_pylist() == list(range(start, start + n))
        assert t.column("frame_index").to_pylist() == list(range(n))
        assert set(t.column("episode_index").to_pylist()) == {idx}
        task_idx = set(t.column("task_index").to_pylist())
        ti = task_idx.pop() if len(task_idx) == 1 else -1
        assert 0 <= ti < len(ds.tasks) and ds.tasks[ti] == m["tasks"][0], (idx, ti, m["tasks"], ds.tasks)
        assert ds.episode(i).image("observation.images.front", n - 1).shape[-1] == 3
        start += n
    info = ds.info
    assert info["fps"] == FPS
    stats = json.loads((meta / "stats.json").read_text()) if (meta / "stats.json").exists() else {}
    if strict:
        assert info["total_episodes"] == len(rows) and info["total_frames"] == start, (info, len(rows), start)
        assert info["total_tasks"] == len(ds.tasks)
        assert stats["observation.state"]["count"] == [start], (stats["observation.state"]["count"], start)
        assert not list((meta / "partial").glob("*")), "a partial stream left after reopening"
        assert not list(root.rglob("*.tmp")), "a temporary file left after reopening"
        want_mean = np.mean(np.concatenate([np.stack(e.column("observation.state")) for e in ds.episodes()]), 0)
        assert np.allclose(stats["observation.state"]["mean"], want_mean, rtol=1e-5, atol=1e-3)
    else:
        assert len(rows) - 1 <= info["total_episodes"] <= len(rows), (info["total_episodes"], len(rows))
    return lost, corrupt


def check_training_reader(root: Path) -> None:
    """policies/learned/data.py reads every episode (these synthetic ones give no training samples)."""
    from policies.learned.data import TrainingDataError, load_samples
    from skills.library import default_library

    try:
        load_samples([root], default_library(), image_key=None)
    except TrainingDataError as e:
        assert str(e).startswith("no usable steps"), str(e)  # not "corrupt episode" / "cannot read"
