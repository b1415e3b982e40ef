"""Batch training of the learned policy from recorded episodes (`corrigo train`).

- Samples: `policies.learned.data` (step boundaries + "done"; operator steps are corrections).
- Split: by episode, never inside one (`--val-fraction`, seeded).
- Batches: when correction samples exist, `correction_share` of every batch is drawn from
  them (YAY Robot post-training used 10%), the rest from the other samples.
- Loss: softmax cross-entropy over each step's candidate set.
- Checkpoints: OUT/checkpoints/epoch-NNN/ after every epoch (weights, optimizer, RNG state),
  and OUT/ itself always holds the newest policy (config.json + model.safetensors), loadable
  with `--policy learned:OUT`. `resume` continues from the newest epoch; `init` starts from
  another policy's weights (fine-tuning / post-training on new data).
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from policies.base import PolicyError
from policies.learned.candidates import generate, match
from policies.learned.data import Sample, TrainingDataError, describe, load_samples, split_by_episode
from policies.learned.features import CAND_FEATURES, CTX_FEATURES, Featurizer, StepFeatures, StepInput
from policies.learned.images import IMAGE_DIM, ImageFeatureCache
from policies.learned.config import ScorerConfig
from policies.learned.policy import CONFIG_NAME, WEIGHTS_NAME, load_model, make_config, read_config
from policies.learned.text import TEXT_DIM, TextCache
from skills.library import SkillLibrary, default_library

CKPT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 3


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    correction_share: float = 0.1
    val_fraction: float = 0.15
    seed: int = 0
    resume: bool = False
    init: str | None = None
    images: str = "auto"  # "auto": use camera images when the data has them; "off"
    hidden: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.data:
            raise TrainingDataError("give at least one dataset directory: --data DIR")
        if self.epochs < 1:
            raise TrainingDataError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise TrainingDataError(f"--batch-size must be at least 2, got {self.batch_size}")
        if not 0.0 <= self.correction_share < 1.0:
            raise TrainingDataError(f"--correction-share must be in [0, 1), got {self.correction_share}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainingDataError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingDataError(f"--lr must be positive, got {self.lr}")
        if self.images not in ("auto", "off"):
            raise TrainingDataError(f"--images must be 'auto' or 'off', got {self.images!r}")


# ----- batches -----
class CorrectionShareSampler:
    """Index batches in which `share` of every batch comes from the correction samples.

    With no correction samples (or share 0) it is a plain shuffled batching of `normal`.
    An epoch is one pass over `normal`; correction samples are drawn in shuffled cycles.
    """

    def __init__(self, normal: Sequence[int], corrections: Sequence[int], batch_size: int, share: float,
                 rng: np.random.Generator) -> None:
        self.normal = list(normal)
        self.corrections = list(corrections)
        self.batch_size = batch_size
        self.rng = rng
        if not self.corrections or share <= 0:
            self.k = 0
        elif not self.normal:
            self.k = batch_size
        else:
            self.k = min(batch_size - 1, max(1, int(round(share * batch_size))))
        self._cycle: list[int] = []

    def __len__(self) -> int:
        n = len(self.normal) if self.normal else len(self.corrections)
        return max(1, math.ceil(n / (self.batch_size - self.k if self.normal else self.batch_size)))

    def _take_corrections(self, n: int) -> list[int]:
        out = []
        while len(out) < n:
            if not self._cycle:
                self._cycle = [self.corrections[i] for i in self.rng.permutation(len(self.corrections))]
            out.append(self._cycle.pop())
        return out

    def __iter__(self) -> Iterator[list[int]]:
        if not self.normal:
            for _ in range(len(self)):
                yield self._take_corrections(self.batch_size)
            return
        order = [self.normal[i] for i in self.rng.permutation(len(self.normal))]
        per = self.batch_size - self.k
        for s in range(0, len(order), per):
            batch = order[s: s + per]
            if self.k:
                # keep the share exact in a short last batch too
                k = self.k if len(batch) == per else max(1, int(round(self.k * len(batch) / per)))
                batch = batch + self._take_corrections(k)
            yield batch


# ----- tensors -----
@dataclass
class Tensors:
    texts: Any  # (U, 384) embedding table
    task: Any  # (N,) index
    last: Any  # (N,) index
    know: Any  # (N, 384)
    ctx: Any  # (N, n_ctx)
    cand_i: Any  # (N, C) index
    cand_f: Any  # (N, C, n_cand)
    mask: Any  # (N, C) bool
    label: Any  # (N,)
    image: Any | None  # (N, 1280)
    has_image: Any | None  # (N,)
    correction: Any  # (N,) bool
    done: Any  # (N,) bool

    def batch(self, idx: Any) -> dict[str, Any]:
        T = self.texts
        out = {"task": T[self.task[idx]], "last": T[self.last[idx]], "know": self.know[idx], "ctx": self.ctx[idx],
               "cand_e": T[self.cand_i[idx]], "cand_f": self.cand_f[idx], "mask": self.mask[idx]}
        if self.image is not None:
            out["image"], out["has_image"] = self.image[idx], self.has_image[idx]
        return out


def featurize_samples(samples: Sequence[Sample], featurizer: Featurizer, image_feats: np.ndarray | None,
                      progress: bool = False) -> tuple[list[StepFeatures], list[int]]:
    """Features and the label index of every sample (the target joins the set when it is not a candidate)."""
    feats, labels = [], []
    it: Any = enumerate(samples)
    if progress:
        from tqdm import tqdm

        it = tqdm(list(it), desc="features", unit="step", leave=False)
    for i, s in it:
        cands = generate(s.objects, featurizer.library)
        j = match(s.target, cands)
        if j is None:
            cands = cands + [s.target]
            j = len(cands) - 1
        img = image_feats[i] if image_feats is not None and s.image_png is not None else None
        step = StepInput(s.task, s.history, s.history_sources, s.objects, s.state, s.knowledge, img)
        feats.append(featurizer.featurize(step, cands))
        labels.append(j)
    return feats, labels


def build_tensors(samples: Sequence[Sample], feats: Sequence[StepFeatures], labels: Sequence[int], texts: TextCache,
                  use_image: bool) -> Tensors:
    import torch

    strings: dict[str, int] = {"": 0}
    for f in feats:
        for t in (f.task_text, f.last_text, *f.cand_texts):
            strings.setdefault(t, len(strings))
    keys = list(strings)
    texts.ensure(keys[1:])
    table = np.zeros((len(keys), TEXT_DIM), np.float32)
    for t, i in strings.items():
        if i:
            table[i] = texts.get(t)
    N, C = len(feats), max(len(f.cand_texts) for f in feats)
    cand_i = np.zeros((N, C), np.int64)
    cand_f = np.zeros((N, C, len(CAND_FEATURES)), np.float32)
    mask = np.zeros((N, C), bool)
    for n, f in enumerate(feats):
        c = len(f.cand_texts)
        cand_i[n, :c] = [strings[t] for t in f.cand_texts]
        cand_f[n, :c] = f.cand
        mask[n, :c] = True
    image = has = None
    if use_image:
        image = np.zeros((N, IMAGE_DIM), np.float32)
        has = np.zeros(N, np.float32)
        for n, f in enumerate(feats):
            if f.image is not None:
                image[n], has[n] = f.image, 1.0
    tt = torch.from_numpy
    return Tensors(
        texts=tt(table), task=tt(np.array([strings[f.task_text] for f in feats])),
        last=tt(np.array([strings[f.last_text] for f in feats])),
        know=tt(np.stack([texts.mean(f.know_texts) for f in feats]).astype(np.float32)),
        ctx=tt(np.stack([f.ctx for f in feats])), cand_i=tt(cand_i), cand_f=tt(cand_f), mask=tt(mask),
        label=tt(np.asarray(labels, np.int64)),
        image=None if image is None else tt(image), has_image=None if has is None else tt(has),
        correction=tt(np.array([s.correction for s in samples])), done=tt(np.array([s.is_done for s in samples])),
    )


# ----- checkpoints -----
def _epoch_dirs(out: Path) -> list[Path]:
    d = out / CKPT_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("epoch-") and (p / "train_state.json").is_file())


def _optimizer_tensors(opt: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimizer's state as flat tensors plus JSON (no pickle)."""
    import torch

    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"state.{pid}.{k}"] = v.detach().clone().contiguous() if torch.is_tensor(v) else torch.tensor(v)
    return tensors, {"param_groups": sd["param_groups"]}


def _load_optimizer(opt: Any, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, v in tensors.items():
        if not name.startswith("state."):
            continue
        _, pid, k = name.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _write_policy(directory: Path, model: Any, config: dict[str, Any], texts: TextCache) -> None:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (WEIGHTS_NAME + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(directory / WEIGHTS_NAME)
    texts.save(directory)
    cj = directory / (CONFIG_NAME + ".tmp")
    cj.write_text(json.dumps(config, indent=2))
    cj.replace(directory / CONFIG_NAME)


def _save_checkpoint(out: Path, epoch: int, model: Any, opt: Any, config: dict[str, Any], texts: TextCache,
                     rng: np.random.Generator, history: list[dict[str, Any]]) -> Path:
    import torch
    from safetensors.torch import save_file

    d = out / CKPT_DIR / f"epoch-{epoch:03d}"
    tmp = out / CKPT_DIR / f".epoch-{epoch:03d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS_NAME))
    (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    tensors, meta = _optimizer_tensors(opt)
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "train_state.safetensors"))
    (tmp / "train_state.json").write_text(json.dumps({"epoch": epoch, "optimizer": meta, "numpy_rng": rng.bit_generator.state,
                                                      "history": history}, default=_jsonable))
    shutil.rmtree(d, ignore_errors=True)
    tmp.replace(d)
    for old in _epoch_dirs(out)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    _write_policy(out, model, config, texts)  # OUT/ is always the newest policy
    return d


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise TypeError(type(v).__name__)


def _read_resume(last: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The config and train state of checkpoint `last`, checked enough to resume from."""
    out: list[dict[str, Any]] = []
    for name in (CONFIG_NAME, "train_state.json"):
        p = last / name
        try:
            v = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TrainingDataError(f"{p}: unreadable checkpoint file ({e}); remove {last} to resume from the one "
                                    "before, or train into another --out") from None
        if not isinstance(v, dict):
            raise TrainingDataError(f"{p}: not a checkpoint file (expected a JSON object)")
        out.append(v)
    ck_cfg, state = out
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1 or not isinstance(state.get("optimizer"), dict) \
            or "numpy_rng" not in state or not isinstance(ck_cfg.get("model"), dict):
        raise TrainingDataError(f"{last}: incomplete checkpoint (needs model config, epoch, optimizer and RNG state); "
                                "remove it or train into another --out")
    return ck_cfg, state


# ----- evaluation -----
def accuracy(model: Any, T: Tensors, idx: Sequence[int], batch: int = 256) -> dict[str, float]:
    import torch

    if not len(idx):
        return {}
    model.eval()
    hits = []
    with torch.no_grad():
        for s in range(0, len(idx), batch):
            b = torch.as_tensor(np.asarray(idx[s: s + batch]))
            scores = model(**T.batch(b))
            hits.append((scores.argmax(1) == T.label[b]).numpy())
    h = np.concatenate(hits)
    ii = np.asarray(idx)
    corr = T.correction.numpy()[ii]
    done = T.done.numpy()[ii]
    out = {"acc": float(h.mean()), "n": int(len(h))}
    if corr.any():
        out["acc_corrections"] = float(h[corr].mean())
    if done.any():
        out["acc_done"] = float(h[done].mean())
    return out


# ----- the run -----
def train(cfg: TrainConfig, log: Callable[[str], None] | None = None, library: SkillLibrary | None = None) -> dict[str, Any]:
    def say(msg: str) -> None:
        if log is not None:
            log(msg)
        elif cfg.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stdout)
        else:
            print(msg, flush=True)

    t_start = time.perf_counter()
    library = library or default_library()
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise TrainingDataError(f"--out {out} is a file, not a directory")
    existing = _epoch_dirs(out)
    if existing and not cfg.resume:
        raise TrainingDataError(f"{out} already holds training checkpoints; add --resume to continue them or choose "
                                "another --out")
    # a checkpoint that cannot be resumed is refused before the data is read (minutes, not seconds)
    resume_from = _read_resume(existing[-1]) if existing and cfg.resume else None
    init_cfg = read_config(cfg.init) if cfg.init else None

    samples, report = load_samples(cfg.data, library, "auto" if cfg.images == "auto" else None, progress=cfg.progress)
    say(f"data: {describe(report)}")
    texts = TextCache().load(out)
    if cfg.init:
        texts.load(cfg.init)
    featurizer = Featurizer(library, texts)

    if init_cfg is not None:
        model_cfg = ScorerConfig.from_dict(init_cfg["model"])
    else:
        model_cfg = ScorerConfig(n_ctx=len(CTX_FEATURES), n_cand=len(CAND_FEATURES), use_image=report.image_key is not None,
                                 hidden=cfg.hidden)
    image_key = report.image_key if model_cfg.use_image else None
    image_feats = None
    if model_cfg.use_image and report.image_key:
        with_img = [i for i, s in enumerate(samples) if s.image_png is not None]
        image_feats = np.zeros((len(samples), IMAGE_DIM), np.float32)
        if with_img:
            cache = ImageFeatureCache(out / "cache")
            image_feats[with_img] = cache.features([samples[i].image_png for i in with_img], progress=cfg.progress)
    feats, labels = featurize_samples(samples, featurizer, image_feats, progress=cfg.progress)
    T = build_tensors(samples, feats, labels, texts, model_cfg.use_image)
    texts.save(out / "cache")  # every string embedded so far: a later run need not embed them again

    train_idx, val_idx = split_by_episode(samples, cfg.val_fraction, cfg.seed)
    n_train_eps = len({samples[i].episode_key for i in train_idx})
    n_val_eps = len({samples[i].episode_key for i in val_idx})
    corr_train = [i for i in train_idx if samples[i].correction]
    norm_train = [i for i in train_idx if not samples[i].correction]
    say(f"split by episode: {len(train_idx)} train samples ({n_train_eps} episodes), {len(val_idx)} validation "
        f"samples ({n_val_eps} episodes); {len(corr_train)} correction samples in training, "
        f"{cfg.correction_share:.0%} of each batch drawn from them" if corr_train else
        f"split by episode: {len(train_idx)} train samples ({n_train_eps} episodes), {len(val_idx)} validation "
        f"samples ({n_val_eps} episodes); no correction samples")

    import torch  # here, after every check of the options and data: a mistake is refused in a second

    from policies.learned.model import CandidateScorer

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = CandidateScorer(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, history = 0, []
    if resume_from is not None:
        from safetensors.torch import load_file

        last = existing[-1]
        ck_cfg, state = resume_from
        if ck_cfg.get("model") != model_cfg.to_dict():
            model_cfg = ScorerConfig.from_dict(ck_cfg["model"])
            model = CandidateScorer(model_cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            if model_cfg.use_image != (T.image is not None):
                raise TrainingDataError(f"{last}: was trained {'with' if model_cfg.use_image else 'without'} images; "
                                        "resume with the same data and --images setting")
        try:
            model.load_state_dict(load_file(str(last / WEIGHTS_NAME)))
            tens = load_file(str(last / "train_state.safetensors"))
            _load_optimizer(opt, tens, state["optimizer"])
            torch.set_rng_state(tens["rng.torch"])
            rng.bit_generator.state = state["numpy_rng"]
        except Exception as e:  # noqa: BLE001 - truncated or foreign tensors: one line naming the checkpoint
            raise TrainingDataError(f"{last}: cannot resume from this checkpoint ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:200] if str(e) else ''}); remove it or train into "
                                    "another --out") from None
        start_epoch, history = int(state["epoch"]), list(state.get("history", []))
        say(f"resuming from {last} (epoch {start_epoch} of {cfg.epochs})")
    elif cfg.resume:
        say(f"--resume: no checkpoint in {out}; starting from scratch")
    if init_cfg is not None and start_epoch == 0:
        init_model, _ = load_model(cfg.init)
        model.load_state_dict(init_model.state_dict())
        say(f"initialised from {cfg.init}")

    train_info = {
        "id": f"{int(time.time())}-s{cfg.seed}", "data": [str(d) for d in cfg.data], "datasets": report.datasets,
        "samples": report.samples, "correction_samples": report.corrections, "train_episodes": n_train_eps,
        "val_episodes": n_val_eps, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
        "correction_share": cfg.correction_share, "seed": cfg.seed, "init": cfg.init, "history": history,
        "image_shape": report.image_shape if image_key else None,
    }
    config = make_config(model_cfg, image_key, train_info)
    sampler = CorrectionShareSampler(norm_train, corr_train, cfg.batch_size, cfg.correction_share, rng)
    loss_fn = torch.nn.CrossEntropyLoss()
    if start_epoch >= cfg.epochs:
        say(f"already trained for {start_epoch} epochs (--epochs {cfg.epochs}); nothing to do")
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        losses, hits, n = [], 0, 0
        batches: Any = sampler
        if cfg.progress:
            from tqdm import tqdm

            batches = tqdm(sampler, total=len(sampler), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for b in batches:
            bt = torch.as_tensor(np.asarray(b))
            scores = model(**T.batch(bt))
            loss = loss_fn(scores, T.label[bt])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            hits += int((scores.argmax(1) == T.label[bt]).sum())
            n += len(b)
        val = accuracy(model, T, val_idx)
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_acc": hits / max(n, 1),
               "val": val, "seconds": time.perf_counter() - t0}
        history.append(rec)
        line = f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {rec['loss']:.4f}  train acc {rec['train_acc']:.3f}"
        if val:
            line += f"  val acc {val['acc']:.3f} (n={val['n']})"
            if "acc_corrections" in val:
                line += f"  val corrections acc {val['acc_corrections']:.3f}"
        else:
            line += "  (no validation episodes)"
        say(line)
        config["train"]["history"] = history
        config["train"]["epochs_done"] = epoch + 1
        _save_checkpoint(out, epoch + 1, model, opt, config, texts, rng, history)
    if start_epoch >= cfg.epochs and not (out / WEIGHTS_NAME).exists():
        _write_policy(out, model, config, texts)
    total = time.perf_counter() - t_start
    summary = {"out": str(out), "epochs": cfg.epochs, "samples": report.samples, "corrections": report.corrections,
               "val": history[-1]["val"] if history else {}, "seconds": total, "config": asdict(cfg)}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


__all__ = ["CorrectionShareSampler", "TrainConfig", "Tensors", "accuracy", "build_tensors", "featurize_samples", "train"]
