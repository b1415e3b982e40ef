"""Training samples from recorded episodes (the `policies.dataset` reader).

One sample per step boundary (a frame where the active instruction, or who gave it,
changes): the observation at that frame (the state when the new step started), the task,
the instructions before it, the scene objects then, and the new instruction as the label.
Plus a final "done" sample at the last frame of a successful episode.

Which steps are used:
- successful, complete episodes: every step, except a policy step the operator overrode
  right away (the next step is the operator's, with no "done" between): it was the wrong
  choice, and the operator's instruction replaces it at that moment (YAY Robot): a
  correction sample at the overridden step's frame, with the history before it;
- failed, unfinished (crash-recovered) or unjudged episodes: only the operator's steps
  (YAY: the operator's instruction is the label for that moment whatever happened later);
  no policy steps (they led to the failure, and which one went wrong is not recorded) and
  no "done";
- operator steps are marked as correction samples (`correction=True`).

Scene objects per frame: the episode's start objects (`Episode.objects()`) with their poses
updated from `observation.environment_state` when recorded (what perception would have
reported then); else the start objects as they were.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from policies.base import PolicyError
from policies.dataset import Dataset, DatasetError, Episode
from policies.learned.candidates import DONE_TEXT, Candidate, candidate_for_text, done_candidate
from robot.types import SceneObject
from skills.library import SkillLibrary

IMAGE_PREFERENCE = ("observation.images.front", "observation.images.wrist")


class TrainingDataError(PolicyError):
    """Data that cannot be trained on; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Sample:
    dataset: str  # dataset root, as given
    episode: int
    frame: int
    task: str
    history: list[str]
    history_sources: list[str]
    objects: list[SceneObject]
    state: np.ndarray | None
    target: Candidate
    correction: bool = False
    image_png: bytes | None = None
    knowledge: list[str] = field(default_factory=list)

    @property
    def episode_key(self) -> tuple[str, int]:
        return (self.dataset, self.episode)

    @property
    def is_done(self) -> bool:
        return self.target.skill == "done"


@dataclass
class LoadReport:
    datasets: list[str] = field(default_factory=list)
    episodes: int = 0
    episodes_used: int = 0
    samples: int = 0
    corrections: int = 0
    skipped_steps: int = 0
    image_key: str | None = None
    image_shape: list[int] | None = None


def find_datasets(paths: Iterable[str | Path]) -> list[Path]:
    """Each path is a dataset (has meta/info.json) or a folder of datasets (e.g. `corrigo collect`'s output)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise TrainingDataError(f"{p}: no such dataset directory")
        if not p.is_dir():
            raise TrainingDataError(f"{p}: not a directory (give a dataset directory recorded with --record or corrigo collect)")
        if (p / "meta" / "info.json").exists():
            out.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if d.is_dir() and (d / "meta" / "info.json").exists())
        if not subs:
            raise TrainingDataError(f"{p}: not a dataset (no meta/info.json here or in its subdirectories)")
        out.extend(subs)
    return out


def _objects_at(start: list[SceneObject], env: np.ndarray | None) -> list[SceneObject]:
    if env is None or len(env) != 7 * len(start) + 1:
        return start
    out = []
    for k, o in enumerate(start):
        pos, quat = np.asarray(env[7 * k: 7 * k + 3], float), np.asarray(env[7 * k + 3: 7 * k + 7], float)
        state = dict(o.state)
        if o.category == "cabinet":
            state["drawer_open"] = float(env[-1])
        out.append(SceneObject(o.name, o.category, o.colour, pos, quat, o.size.copy(), o.seg_id, dict(o.parts), state,
                               dict(o.attributes)))
    return out


def _segments(ep: Episode) -> list[tuple[int, str, str, bool]]:
    """(first frame, instruction, source, follows_idle) per step; follows_idle: the policy had
    said it was done (an empty instruction) before this step started."""
    segs: list[tuple[int, str, str, bool]] = []
    prev: tuple[str, str] | None = None
    idle = False
    for i, (text, src) in enumerate(zip(ep.instructions(), ep.instruction_sources())):
        if not text:
            idle = bool(segs)
            continue
        if (text, src) != prev:
            segs.append((i, text, src, idle))
        prev, idle = (text, src), False
    return segs


def labelled_steps(segs: Sequence[tuple[int, str, str, bool]], ok: bool) -> tuple[list[tuple[int, int]], set[int]]:
    """Which steps are labels, where, and which steps never happened in hindsight.

    Returns (label step, step whose decision point it labels) pairs, and the policy steps that
    were replaced. An operator step that cut the policy's step short (no "done" between them)
    replaces it, as in YAY Robot: it labels the policy's decision, and the policy's step is
    dropped from the data and from later histories. Policy steps count only in successful
    episodes."""
    replaced = {k - 1 for k, (_, _, src, follows_idle) in enumerate(segs)
                if k > 0 and src == "operator" and segs[k - 1][2] == "policy" and not follows_idle}
    pairs = [(k, k - 1 if k - 1 in replaced else k) for k, (_, _, src, _) in enumerate(segs)
             if src == "operator" or (ok and k not in replaced)]
    return pairs, replaced


def episode_samples(ep: Episode, root: str, library: SkillLibrary, image_key: str | None,
                    report: LoadReport | None = None) -> list[Sample]:
    report = report or LoadReport()
    start = [SceneObject.from_dict(d) for d in ep.objects()]
    if not start:
        report.skipped_steps += 1
        return []
    cols = set(ep.table.column_names)
    env = ep.column("observation.environment_state") if "observation.environment_state" in cols else None
    state = ep.column("observation.state") if "observation.state" in cols else None
    img_col = ep.table.column(image_key) if image_key and image_key in cols else None
    ok = ep.meta.get("success") is True and ep.meta.get("complete", True) is not False
    meta_json = json.loads(ep.meta.get("meta_json") or "{}")
    knowledge = [str(k.get("statement", k)) if isinstance(k, dict) else str(k)
                 for k in meta_json.get("task_knowledge", meta_json.get("knowledge", [])) or []]

    def make(frame: int, target: Candidate, hist: list[tuple[int, str, str, bool]], corr: bool) -> Sample:
        png = None
        if img_col is not None:
            cell = img_col[frame].as_py()
            png = cell.get("bytes") if isinstance(cell, dict) else None
        return Sample(root, ep.index, frame, ep.task, [h[1] for h in hist], [h[2] for h in hist],
                      _objects_at(start, None if env is None else np.asarray(env[frame], float)),
                      None if state is None else np.asarray(state[frame], np.float32), target, corr, png, knowledge)

    segs = _segments(ep)
    pairs, replaced = labelled_steps(segs, ok)
    kept = [j for j in range(len(segs)) if j not in replaced]
    out: list[Sample] = []
    for k, at in pairs:
        frame, text, op = segs[at][0], segs[k][1], segs[k][2] == "operator"
        objs = _objects_at(start, None if env is None else np.asarray(env[frame], float))
        target = candidate_for_text(text, objs, library)
        if target is None or target.skill == "done":
            report.skipped_steps += 1
            continue
        out.append(make(frame, target, [segs[j] for j in kept if j < at], op))
    if ok and segs:
        out.append(make(len(ep) - 1, done_candidate(), [segs[j] for j in kept], False))
    return out


def load_samples(paths: Sequence[str | Path], library: SkillLibrary, image_key: str | None = "auto",
                 progress: bool = False) -> tuple[list[Sample], LoadReport]:
    """Every usable sample of the datasets under `paths`; one-line errors for unusable data."""
    roots = find_datasets(paths)
    report = LoadReport(datasets=[str(r) for r in roots])
    datasets = []
    for r in roots:
        try:
            datasets.append(Dataset(r))
        except DatasetError as e:
            raise TrainingDataError(str(e)) from None
        except Exception as e:  # noqa: BLE001 - a corrupt file must give one line, not a traceback
            raise TrainingDataError(f"{r}: corrupt dataset ({type(e).__name__}: {e})") from None
    if image_key == "auto":
        feats = set()
        for ds in datasets:
            feats |= set(ds.info.get("features", {}))
        image_key = next((k for k in IMAGE_PREFERENCE if k in feats), None)  # datasets without it: samples without an image
    report.image_key = image_key
    if image_key:
        report.image_shape = next((list(ds.info["features"][image_key].get("shape", [])) for ds in datasets
                                   if image_key in ds.info.get("features", {})), None)
    total = sum(len(ds) for ds in datasets)
    if total == 0:
        raise TrainingDataError(f"no episodes in {', '.join(report.datasets)} (empty dataset)")
    it: Iterable[tuple[Dataset, int]] = ((ds, i) for ds in datasets for i in range(len(ds)))
    if progress:
        from tqdm import tqdm

        it = tqdm(list(it), desc="reading episodes", unit="ep", leave=False)
    samples: list[Sample] = []
    for ds, i in it:
        try:
            ep = ds.episode(i)
            got = episode_samples(ep, str(ds.root), library, image_key, report)
        except DatasetError as e:
            raise TrainingDataError(str(e)) from None
        except (KeyError, ValueError, TypeError, IndexError, json.JSONDecodeError) as e:
            raise TrainingDataError(f"{ds.root}: corrupt episode {i} ({type(e).__name__}: {e})") from None
        except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds on garbage
            raise TrainingDataError(f"{ds.root}: cannot read episode {i} ({type(e).__name__}: {e})") from None
        report.episodes += 1
        report.episodes_used += bool(got)
        samples.extend(got)
    report.samples = len(samples)
    report.corrections = sum(s.correction for s in samples)
    if not samples:
        raise TrainingDataError(f"no usable steps in {', '.join(report.datasets)} ({report.episodes} episodes: no successful "
                                "episode and no operator instruction)")
    return samples, report


def split_by_episode(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train/validation sample indices; every episode falls wholly on one side."""
    keys = sorted({s.episode_key for s in samples})
    rng = np.random.default_rng(seed)
    order = [keys[i] for i in rng.permutation(len(keys))]
    n_val = int(round(val_fraction * len(keys))) if len(keys) >= 4 else 0
    if val_fraction > 0 and len(keys) >= 4:
        n_val = max(1, min(n_val, len(keys) - 1))
    val_keys = set(order[:n_val])
    train = [i for i, s in enumerate(samples) if s.episode_key not in val_keys]
    val = [i for i, s in enumerate(samples) if s.episode_key in val_keys]
    return train, val


def describe(report: LoadReport) -> str:
    return (f"{report.samples} samples ({report.corrections} from operator corrections) from {report.episodes_used}/"
            f"{report.episodes} episodes in {len(report.datasets)} dataset(s); images: {report.image_key or 'none'}")


__all__: Any = ["LoadReport", "Sample", "TrainingDataError", "describe", "episode_samples", "find_datasets",
                "load_samples", "split_by_episode"]
