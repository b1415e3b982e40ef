"""Episode recording in the LeRobotDataset v3 layout, with language columns.

    DIR/meta/info.json            codebase_version, fps, features, totals, path templates
    DIR/meta/stats.json           per-feature min/max/mean/std over finalised episodes
    DIR/meta/tasks.parquet        task_index, task
    DIR/meta/episodes/chunk-000/file-000.parquet   one row per episode
    DIR/data/chunk-000/file-NNN.parquet            the frames of episode NNN

Crash safety: frames stream to `meta/partial/episode-NNNNNN.arrows` (Arrow IPC)
while an episode runs; at its end the data file is written to a temporary name and
renamed, then the metadata files are rewritten the same way. A kill at any moment
leaves every finalised episode readable; the partial stream is recovered (marked
incomplete) or discarded the next time the directory is opened.

The episodes index is the commit record: tasks.parquet is written before it (a task
listed early is harmless), stats.json and info.json after it, and both are derived
from it, so opening the directory after a kill between two of these writes rewrites
them from the index. A write that fails (a full disk) raises one DatasetError naming
the directory; what was finalised before stays as it was.
"""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from policies.dataset import CHUNK_SIZE, CODEBASE_VERSION, DATA_PATH, EPISODES_PATH, DatasetError, check_info
from robot.types import ACTION_NAMES, Feature, action_to_vector

FLUSH_EVERY = 20  # frames per streamed batch: at most this many are lost in a crash

LANG_ROW = pa.struct([
    ("role", pa.string()), ("content", pa.string()), ("style", pa.string()), ("timestamp", pa.float32()),
    ("camera", pa.string()), ("tool_calls", pa.string()),
])
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise


def _atomic_write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _atomic_write_bytes(path, buf.getvalue())


def encode_png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class EpisodeRecorder:
    """Writes episodes of one body to DIR; implements the agent's `Recorder` protocol."""

    def __init__(self, root: str | Path, fps: float, observation_features: dict[str, Feature],
                 robot_type: str = "", on_partial: str = "recover") -> None:
        if on_partial not in ("recover", "discard"):
            raise DatasetError("on_partial must be 'recover' or 'discard'")
        self.root = Path(root)
        self.fps = float(fps)
        self.robot_type = robot_type
        try:
            (self.root / "meta" / "partial").mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where the directory should be, no permission, ...
            raise DatasetError(f"cannot record into {self.root}: {e.strerror} ({e.filename})") from None
        self.images = sorted(k for k in observation_features if k.startswith("observation.images."))
        self.state_features = {k: f for k, f in observation_features.items()
                               if k in ("observation.state", "observation.environment_state")}
        self.features = self._features(observation_features)
        self.schema = self._schema()
        self._load_meta()
        self._check_compatible()
        self._recover_partials(on_partial)
        self._writer: ipc.RecordBatchStreamWriter | None = None
        self._sink: Any = None
        self._rows: list[dict[str, Any]] = []
        self._ep: dict[str, Any] | None = None

    # ----- layout -----
    def _features(self, obs: dict[str, Feature]) -> dict[str, dict[str, Any]]:
        f: dict[str, dict[str, Any]] = {k: v.to_dict() for k, v in self.state_features.items()}
        for k in self.images:
            f[k] = {"dtype": "image", "shape": list(obs[k].shape), "names": ["height", "width", "channel"]}
        f["action"] = {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": list(ACTION_NAMES)}
        for k, dt in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                      ("index", "int64"), ("task_index", "int64")):
            f[k] = {"dtype": dt, "shape": [1], "names": None}
        f["intervention"] = {"dtype": "bool", "shape": [1], "names": None}
        f["policy"] = {"dtype": "string", "shape": [1], "names": None}
        f["language_persistent"] = {"dtype": "language", "shape": [1], "names": None}
        f["language_events"] = {"dtype": "language", "shape": [1], "names": None}
        return f

    def _schema(self) -> pa.Schema:
        fields = [pa.field(k, pa.list_(pa.float32())) for k in self.state_features]
        fields += [pa.field(k, IMAGE) for k in self.images]
        fields += [
            pa.field("action", pa.list_(pa.float32())), pa.field("timestamp", pa.float32()),
            pa.field("frame_index", pa.int64()), pa.field("episode_index", pa.int64()), pa.field("index", pa.int64()),
            pa.field("task_index", pa.int64()), pa.field("intervention", pa.bool_()), pa.field("policy", pa.string()),
            pa.field("language_persistent", pa.list_(LANG_ROW)), pa.field("language_events", pa.list_(LANG_ROW)),
        ]
        return pa.schema(fields)

    def _load_meta(self) -> None:
        info_p = self.root / "meta" / "info.json"
        self.info: dict[str, Any] | None = None
        if info_p.exists():
            try:
                self.info = json.loads(info_p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DatasetError(f"{info_p}: not a readable dataset info file ({e}); not touching it") from None
            check_info(self.info, info_p)
        tasks_p = self.root / "meta" / "tasks.parquet"
        self.tasks: list[str] = pq.read_table(tasks_p).column("task").to_pylist() if tasks_p.exists() else []
        ep_p = self.root / EPISODES_PATH
        self.episodes: list[dict[str, Any]] = pq.read_table(ep_p).to_pylist() if ep_p.exists() else []
        stats_p = self.root / "meta" / "stats.json"
        self.stats_acc: dict[str, Any] = {}
        if stats_p.exists():
            try:
                self.stats_acc = json.loads(stats_p.read_text()).get("_acc", {})
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.stats_acc = {}  # derived data: rebuilt from the index below
        self._stats_from_episodes()

    def _check_compatible(self) -> None:
        if self.info is None:
            return
        if self.info.get("codebase_version") != CODEBASE_VERSION:
            raise DatasetError(f"{self.root}: dataset version {self.info.get('codebase_version')!r}, expected {CODEBASE_VERSION}")
        if abs(float(self.info.get("fps", 0)) - self.fps) > 1e-6:
            raise DatasetError(f"{self.root}: recorded at {self.info.get('fps')} fps, this body runs at {self.fps}")
        if self.info.get("features") != self.features:
            raise DatasetError(f"{self.root}: holds episodes with other features (cameras or scene); record to a new directory")

    def _write_failed(self, e: OSError, what: str) -> DatasetError:
        why = e.strerror or str(e)
        return DatasetError(f"{self.root}: cannot write {what} ({why}); is the disk full? "
                            "episodes finished before this one are kept")

    # ----- the Recorder protocol -----
    def start_episode(self, task: str, meta: dict[str, Any]) -> None:
        if self._ep is not None:
            self.end_episode(None, {"done_reason": "superseded by a new episode"})
        if task not in self.tasks:
            self.tasks.append(task)
        idx = self._next_episode_index()
        self._ep = {"episode_index": idx, "task": task, "task_index": self.tasks.index(task), "frames": 0,
                    "meta": dict(meta), "instruction": None, "instruction_t": 0.0, "corrections": 0,
                    "interventions": 0, "started": time.time()}
        self._failed = False
        self._partial_path = self.root / "meta" / "partial" / f"episode-{idx:06d}.arrows"
        header = {"task": task, "meta": meta, "episode_index": idx, "task_index": self._ep["task_index"]}
        try:
            self._sink = pa.OSFile(str(self._partial_path), "wb")
            self._writer = ipc.new_stream(self._sink, self.schema.with_metadata({"corrigo.episode": json.dumps(header)}))
        except OSError as e:
            self._abandon()
            self._ep = None
            raise self._write_failed(e, "the episode stream") from None
        self._rows = []

    def add_frame(self, observation: dict[str, Any], action: dict[str, Any], instruction: str,
                  intervention: bool, events: list[dict[str, Any]], source: str = "policy") -> None:
        ep = self._ep
        if ep is None:
            raise DatasetError("add_frame called outside an episode")
        if self._failed:  # reported once already; the rest of this episode is not recorded
            return
        i = ep["frames"]
        ts = i / self.fps
        if instruction != ep["instruction"] or source != ep.get("source"):
            ep["instruction"], ep["instruction_t"], ep["source"] = instruction, ts, source
        row: dict[str, Any] = {k: np.asarray(observation[k], np.float32).tolist() for k in self.state_features}
        for k in self.images:
            row[k] = {"bytes": encode_png(observation[k]), "path": None}
        row.update(
            action=action_to_vector(action).astype(np.float32).tolist(), timestamp=ts, frame_index=i,
            episode_index=ep["episode_index"], index=self._total_frames() + i, task_index=ep["task_index"],
            intervention=bool(intervention), policy=str(ep["meta"].get("policy", "")),
            # role "user": the operator gave this instruction (YAY-style correction data)
            language_persistent=[{"role": "user" if ep["source"] == "operator" else "assistant",
                                  "content": ep["instruction"] or "", "style": "subtask",
                                  "timestamp": ep["instruction_t"], "camera": None, "tool_calls": None}]
            if ep["instruction"] else [],
            language_events=[{"role": "user", "content": e["text"], "style": "interjection", "timestamp": ts,
                              "camera": None, "tool_calls": json.dumps([{"name": "correction", "arguments": e["parsed"],
                                                                        "reply": e.get("reply", "")}])}
                             for e in events],
        )
        ep["corrections"] += len(events)
        ep["interventions"] += int(bool(intervention))
        self._rows.append(row)
        ep["frames"] += 1
        if len(self._rows) >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        if self._rows and self._writer is not None:
            try:
                self._writer.write_batch(pa.RecordBatch.from_pylist(self._rows, schema=self.schema))
                self._sink.flush()
            except OSError as e:
                self._failed = True
                self._rows = []
                raise self._write_failed(e, "the episode's frames") from None
            self._rows = []

    def _abandon(self) -> None:
        """Close the stream without finalising; the complete batches stay for recovery on the next open."""
        for h in (self._writer, self._sink):
            try:
                if h is not None:
                    h.close()
            except OSError:
                pass
        self._writer = self._sink = None
        self._rows = []

    def end_episode(self, success: bool | None, meta: dict[str, Any]) -> None:
        ep = self._ep
        if ep is None:
            return
        if self._failed:  # the write error was raised already; nothing more is written
            self._abandon()
            self._ep = None
            return
        try:
            self._flush()
            assert self._writer is not None
            self._writer.close()
            self._sink.close()
        except DatasetError:
            self._abandon()
            self._ep = None
            raise
        except OSError as e:
            self._abandon()
            self._ep = None
            raise self._write_failed(e, "the episode's frames") from None
        self._writer = None
        self._ep = None
        if ep["frames"] == 0:
            self._partial_path.unlink(missing_ok=True)
            return
        table = _read_stream(self._partial_path)
        try:
            self._finalise(table, ep["task"], {**ep["meta"], **meta}, success, complete=True)
        except OSError as e:
            self._load_meta()  # back to what is on disk; the partial stream is recovered on the next open
            raise self._write_failed(e, "the finished episode") from None
        self._partial_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._ep is not None:
            self.end_episode(None, {"done_reason": "recorder closed mid-episode"})

    # ----- finalising -----
    def _next_episode_index(self) -> int:
        partial = [int(p.stem.split("-")[1]) for p in (self.root / "meta" / "partial").glob("episode-*.arrows")]
        return max([e["episode_index"] for e in self.episodes] + partial + [-1]) + 1

    def _total_frames(self) -> int:
        return int(sum(e["length"] for e in self.episodes))

    def _finalise(self, table: pa.Table, task: str, meta: dict[str, Any], success: bool | None, complete: bool) -> None:
        idx = int(table.column("episode_index")[0].as_py())
        start = self._total_frames()
        n = table.num_rows
        # Global indices are assigned at finalisation (a recovered episode may come after others).
        table = table.set_column(table.schema.get_field_index("index"), "index", pa.array(np.arange(start, start + n), pa.int64()))
        # so is the task index: a crash may have lost a new task from tasks.parquet before the episode got here
        if task not in self.tasks:
            self.tasks.append(task)
        table = table.set_column(table.schema.get_field_index("task_index"), "task_index",
                                 pa.array(np.full(n, self.tasks.index(task)), pa.int64()))
        chunk, file = divmod(idx, CHUNK_SIZE)
        path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        _atomic_write_table(path, table)
        ev = table.column("language_events").to_pylist()
        iv = table.column("intervention").to_pylist()
        stats = _episode_stats(table, list(self.state_features) + ["action"])
        row = {
            "episode_index": idx, "tasks": [task], "length": n,
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": start, "dataset_to_index": start + n,
            "success": success, "outcome": meta.get("outcome"),  # succeeded | failed | refused | unknown; null if cut short
            "complete": complete, "done_reason": str(meta.get("done_reason", "")),
            "policy": str(meta.get("policy", "")), "robot": str(meta.get("robot", "")),
            "num_corrections": int(sum(len(e) for e in ev)), "num_intervention_frames": int(sum(bool(x) for x in iv)),
            "meta_json": json.dumps(meta, default=str),
        }
        for feat, st in stats.items():
            for name, val in st.items():
                row[f"stats/{feat}/{name}"] = val
        self.episodes = [e for e in self.episodes if e["episode_index"] != idx] + [row]
        self.episodes.sort(key=lambda e: e["episode_index"])
        self._merge_stats(stats)
        self._write_meta()

    def _stats_from_episodes(self) -> dict[str, Any] | None:
        """The running sums rebuilt from the per-episode stats in the index (the commit record), so
        stats.json is never trusted past it. None when the index predates these columns."""
        self.stats_acc, keep = {}, self.stats_acc
        for e in self.episodes:
            per: dict[str, dict[str, list[float]]] = {}
            for key, val in e.items():
                parts = key.split("/")
                if len(parts) == 3 and parts[0] == "stats" and val is not None:
                    per.setdefault(parts[1], {})[parts[2]] = list(val)
            if not per or any(not {"min", "max", "mean", "std", "count"} <= set(st) for st in per.values()):
                self.stats_acc = keep
                return None
            self._merge_stats(per)
        return self.stats_acc

    def _merge_stats(self, stats: dict[str, dict[str, list[float]]]) -> None:
        for feat, st in stats.items():
            acc = self.stats_acc.get(feat)
            n = st["count"][0]
            s = np.asarray(st["mean"]) * n
            s2 = (np.asarray(st["std"]) ** 2 + np.asarray(st["mean"]) ** 2) * n
            if acc is None:
                acc = {"n": n, "sum": s.tolist(), "sum2": s2.tolist(), "min": st["min"], "max": st["max"]}
            else:
                acc = {"n": acc["n"] + n, "sum": (np.asarray(acc["sum"]) + s).tolist(),
                       "sum2": (np.asarray(acc["sum2"]) + s2).tolist(),
                       "min": np.minimum(acc["min"], st["min"]).tolist(), "max": np.maximum(acc["max"], st["max"]).tolist()}
            self.stats_acc[feat] = acc

    def _write_meta(self) -> None:
        meta = self.root / "meta"
        for e in self.episodes:  # episodes recorded before the outcome column keep a null one
            e.setdefault("outcome", None)
        # tasks first, then the index (the commit record), then what is derived from it
        _atomic_write_table(meta / "tasks.parquet", pa.table({"task_index": list(range(len(self.tasks))), "task": self.tasks}))
        if self.episodes:
            _atomic_write_table(self.root / EPISODES_PATH, pa.Table.from_pylist(self.episodes))
        stats: dict[str, Any] = {}
        for feat, acc in self.stats_acc.items():
            mean = np.asarray(acc["sum"]) / acc["n"]
            std = np.sqrt(np.maximum(np.asarray(acc["sum2"]) / acc["n"] - mean**2, 0.0))
            stats[feat] = {"mean": mean.tolist(), "std": std.tolist(), "min": acc["min"], "max": acc["max"], "count": [acc["n"]]}
        stats["_acc"] = self.stats_acc
        _atomic_write_bytes(meta / "stats.json", json.dumps(stats).encode())
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type, "fps": self.fps,
            "total_episodes": len(self.episodes), "total_frames": self._total_frames(), "total_tasks": len(self.tasks),
            "chunks_size": CHUNK_SIZE, "data_path": DATA_PATH, "videos_path": None,
            "splits": {"train": f"0:{len(self.episodes)}"}, "features": self.features,
        }
        _atomic_write_bytes(meta / "info.json", json.dumps(info, indent=2).encode())
        self.info = info

    def _recover_partials(self, on_partial: str) -> None:
        finalised = {int(e["episode_index"]) for e in self.episodes}
        for p in sorted((self.root / "meta" / "partial").glob("episode-*.arrows")):
            table, header = _read_stream_lenient(p)
            if on_partial == "discard" or table is None or table.num_rows == 0:
                p.unlink(missing_ok=True)
                continue
            if int(table.column("episode_index")[0].as_py()) in finalised:
                p.unlink(missing_ok=True)  # killed after the commit, before this cleanup: the episode is in
                continue
            self._finalise(table, header.get("task", ""), {**header.get("meta", {}), "done_reason": "recovered after a crash"},
                           None, complete=False)
            p.unlink(missing_ok=True)
        for tmp in self.root.rglob("*.tmp"):  # half-written renames from a crash
            tmp.unlink(missing_ok=True)
        self._repair_derived()

    def _repair_derived(self) -> None:
        """After a kill between the index and the files derived from it, rewrite them."""
        if self.info is None and not self.episodes:
            return
        stats_p = self.root / "meta" / "stats.json"
        try:
            counted = json.loads(stats_p.read_text()).get("_acc", {}) if stats_p.exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            counted = None
        want_n = self._total_frames()
        info = self.info or {}
        stale = (info.get("total_episodes") != len(self.episodes) or info.get("total_frames") != want_n
                 or info.get("total_tasks") != len(self.tasks) or counted is None
                 or any(acc.get("n") != want_n for acc in counted.values()) or (want_n and not counted))
        if stale:
            self._write_meta()


def _read_stream(path: Path) -> pa.Table:
    with pa.OSFile(str(path), "rb") as f:
        return ipc.open_stream(f).read_all()


def _read_stream_lenient(path: Path) -> tuple[pa.Table | None, dict[str, Any]]:
    """Every complete batch of a stream cut short by a crash."""
    batches: list[pa.RecordBatch] = []
    header: dict[str, Any] = {}
    try:
        with pa.OSFile(str(path), "rb") as f:
            reader = ipc.open_stream(f)
            meta = reader.schema.metadata or {}
            header = json.loads(meta.get(b"corrigo.episode", b"{}"))
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError, json.JSONDecodeError):
        pass
    if not batches:
        return None, header
    return pa.Table.from_batches(batches), header


def _episode_stats(table: pa.Table, features: list[str]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for feat in features:
        arr = np.asarray(table.column(feat).to_pylist(), dtype=np.float64)
        out[feat] = {"min": arr.min(0).tolist(), "max": arr.max(0).tolist(), "mean": arr.mean(0).tolist(),
                     "std": arr.std(0).tolist(), "count": [int(arr.shape[0])]}
    return out
