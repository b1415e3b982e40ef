"""The episode dataset format (LeRobotDataset v3 + language columns) and its reader.

`agent.recorder` writes this layout; training (`policies.train`) and analysis read it
here, below the agent layer.
"""
from __future__ import annotations

import io
import json
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
