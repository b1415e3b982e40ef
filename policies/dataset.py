"""The episode dataset format (LeRobotDataset v3 + language columns) and its reader.

`agent.recorder` writes this layout; training (`policies.train`) and analysis read it
here, below the agent layer.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot.errors import CorrigoError

CODEBASE_VERSION = "v3.0"
CHUNK_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"


class DatasetError(CorrigoError):
    pass


@dataclass
class Episode:
    index: int
    task: str
    meta: dict[str, Any]  # the episode's row in meta/episodes
    table: pa.Table  # its frames

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, key: str) -> np.ndarray:
        return np.asarray(self.table.column(key).to_pylist())

    def image(self, key: str, frame: int) -> np.ndarray:
        from PIL import Image

        cell = self.table.column(key)[frame].as_py()
        return np.asarray(Image.open(io.BytesIO(cell["bytes"])))

    def instructions(self) -> list[str]:
        """The active instruction of every frame ('' where none)."""
        return [rows[0]["content"] if rows else "" for rows in self.table.column("language_persistent").to_pylist()]

    def instruction_sources(self) -> list[str]:
        """Per frame: 'operator' where the active instruction came from the operator, else 'policy'."""
        return ["operator" if rows and rows[0]["role"] == "user" else "policy"
                for rows in self.table.column("language_persistent").to_pylist()]

    def objects(self) -> list[dict[str, Any]]:
        """The scene objects at the start of the episode (SceneObject dicts), if recorded."""
        return list(json.loads(self.meta.get("meta_json") or "{}").get("objects", []))

    def corrections(self) -> list[dict[str, Any]]:
        """Every operator utterance with its frame, text and parsed form."""
        out = []
        for i, rows in enumerate(self.table.column("language_events").to_pylist()):
            for r in rows:
                calls = json.loads(r["tool_calls"] or "[]")
                parsed = calls[0]["arguments"] if calls else {}
                out.append({"frame": i, "timestamp": r["timestamp"], "text": r["content"], "parsed": parsed,
                            "reply": calls[0].get("reply", "") if calls else ""})
        return out


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_info(info: Any, where: str | Path) -> None:
    """Refuse a `meta/info.json` whose numbers make no dataset: fps finite and positive, every
    feature shape a non-empty list of positive sizes, totals non-negative counts. (Python's
    json reads NaN and Infinity, so these are checked, not assumed.)"""
    if not isinstance(info, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(info).__name__}")
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and 0 < fps <= 10_000):
        raise DatasetError(f"{where}: fps must be a positive number of frames per second (at most 10000), got {fps!r}")
    feats = info.get("features")
    if not isinstance(feats, dict) or not feats:
        raise DatasetError(f"{where}: 'features' must map feature names to their dtype and shape")
    for name, f in feats.items():
        shape = f.get("shape") if isinstance(f, dict) else None
        if not (isinstance(shape, list) and shape and all(_count(n) and n > 0 for n in shape)):
            raise DatasetError(f"{where}: feature {name!r} needs a shape of positive sizes, got {shape!r}")
    for key in ("total_episodes", "total_frames", "total_tasks"):
        if key in info and not _count(info[key]):
            raise DatasetError(f"{where}: {key} must be a count (0, 1, 2, ...), got {info[key]!r}")


class Dataset:
    """A recorded dataset; `episodes()` iterates finalised episodes in order."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_p = self.root / "meta" / "info.json"
        if not info_p.is_file():
            raise DatasetError(f"{self.root}: not a corrigo/LeRobot dataset (no meta/info.json)")
        try:
            self.info = json.loads(info_p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(f"{info_p}: unreadable ({e})") from None
        check_info(self.info, info_p)
        ep_p = self.root / EPISODES_PATH
        try:
            self.meta_episodes = pq.read_table(ep_p).to_pylist() if ep_p.exists() else []
            self.tasks = pq.read_table(self.root / "meta" / "tasks.parquet").column("task").to_pylist()
        except (pa.ArrowInvalid, OSError) as e:
            raise DatasetError(f"{self.root}: corrupt metadata ({e})") from None

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    def __len__(self) -> int:
        return len(self.meta_episodes)

    def episode(self, i: int) -> Episode:
        m = self.meta_episodes[i]
        path = self.root / DATA_PATH.format(chunk_index=m["data/chunk_index"], file_index=m["data/file_index"])
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise DatasetError(f"{path}: cannot read episode {m['episode_index']} ({e})") from None
        return Episode(int(m["episode_index"]), m["tasks"][0] if m["tasks"] else "", m, table)

    def episodes(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)
