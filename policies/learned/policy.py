"""`LearnedPolicy`: the trained candidate scorer as a `HighLevelPolicy` (`--policy learned:PATH`).

A checkpoint is a directory, LeRobot style:

    config.json           what the model is (type, feature names, sizes) and how it was trained
    model.safetensors     the weights
    embeddings.json/.safetensors   MiniLM embeddings of the strings seen in training (a cache)

Inference is deterministic (argmax over the candidates, ties to the first). Safety: the
policy gives up (`Done(ok=False)`) instead of looping when its choice would repeat the
last instruction more than `max_repeats` times in a row (or a cycle of 2-3 instructions as
often: A B A B A), when the episode already has
`max_steps` steps, or when the chosen text does not parse or resolve; and it never places
on the object it holds.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policies.base import Done, HighLevelPolicy, PolicyError, Step
from policies.learned.candidates import Candidate, generate
from policies.learned.features import CAND_FEATURES, CTX_FEATURES, FEATURE_VERSION, Featurizer, StepInput, statement_of
from policies.learned.config import ScorerConfig
from policies.learned.text import TextCache
from policies.rule_based import held_object
from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve
from skills.base import SkillCall
from skills.library import SkillLibrary, default_library

POLICY_TYPE = "corrigo-learned-hlp"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_POLICY_OPTIONS = {"max_repeats": 2, "max_steps": 24}


def read_config(path: str | Path) -> dict[str, Any]:
    d = Path(path)
    cp = d / CONFIG_NAME
    if not d.is_dir():
        raise PolicyError(f"{d}: no such checkpoint directory (train one with: corrigo train --data DIR --out {d})")
    if not cp.is_file() or not (d / WEIGHTS_NAME).is_file():
        raise PolicyError(f"{d}: not a learned-policy checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        cfg = json.loads(cp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"{cp}: unreadable ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("type") != POLICY_TYPE:
        raise PolicyError(f"{cp}: not a {POLICY_TYPE} checkpoint")
    if cfg.get("feature_version") != FEATURE_VERSION or list(cfg.get("ctx_features", [])) != list(CTX_FEATURES) \
            or list(cfg.get("cand_features", [])) != list(CAND_FEATURES):
        raise PolicyError(f"{d}: made with another feature set (version {cfg.get('feature_version')}, this corrigo has "
                          f"{FEATURE_VERSION}); retrain it")
    return cfg


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    cfg = read_config(path)  # before importing torch: a bad path is refused at once
    from safetensors.torch import load_file

    from policies.learned.model import CandidateScorer

    model = CandidateScorer(ScorerConfig.from_dict(cfg["model"]))
    try:
        state = load_file(str(Path(path) / WEIGHTS_NAME))
        model.load_state_dict(state, strict=True)
    except Exception as e:  # noqa: BLE001 - truncated or foreign weights: one line
        raise PolicyError(f"{path}: cannot load {WEIGHTS_NAME} ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    model.eval()
    return model, cfg


def make_config(model_cfg: ScorerConfig, image_key: str | None, train_info: dict[str, Any],
                policy_options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": POLICY_TYPE,
        "feature_version": FEATURE_VERSION,
        "ctx_features": list(CTX_FEATURES),
        "cand_features": list(CAND_FEATURES),
        "text_model": "all-MiniLM-L6-v2 (colour words removed)",
        "image_model": "efficientnet-lite0 (frozen, pooled)" if model_cfg.use_image else None,
        "image_key": image_key if model_cfg.use_image else None,
        "model": model_cfg.to_dict(),
        "policy": {**DEFAULT_POLICY_OPTIONS, **(policy_options or {})},
        "train": train_info,
    }


def repeating_cycle(seq: Sequence[str], repeats: int, max_period: int = 3) -> int:
    """The period p (1..max_period) with which the end of `seq` repeats itself, `repeats` times over
    plus the new element (A A A for p=1, A B A B A for p=2 when repeats=2); 0 when there is none."""
    for p in range(1, max_period + 1):
        n = p * repeats + 1
        if len(seq) >= n and all(seq[i] == seq[i - p] for i in range(len(seq) - n + p, len(seq))):
            return p
    return 0


class LearnedPolicy(HighLevelPolicy):
    name = "learned"

    def __init__(self, path: str | Path, library: SkillLibrary | None = None) -> None:
        self.path = Path(path)
        self.model, self.config = load_model(self.path)
        import torch  # after load_model has checked the checkpoint (a bad path is refused in a second)
        self.library = library or default_library()
        self.texts = TextCache().load(self.path)
        self.featurizer = Featurizer(self.library, self.texts)
        opts = {**DEFAULT_POLICY_OPTIONS, **self.config.get("policy", {})}
        self.max_repeats = int(opts["max_repeats"])
        self.max_steps = int(opts["max_steps"])
        self.image_key = self.config.get("image_key")
        tag = self.config.get("train", {}).get("id") or self.path.name
        self.version = f"learned-{tag}"
        self.latencies: list[float] = []  # seconds per next_step call
        self.last_choice: tuple[list[Candidate], np.ndarray] | None = None
        self._torch = torch

    def reset(self) -> None:
        self.last_choice = None

    # ----- scoring -----
    def step_input(self, observation: dict[str, Any], task: str, history: Sequence[Step],
                   knowledge: Sequence[Any]) -> StepInput:
        image = None
        if self.image_key and observation.get(self.image_key) is not None:
            from policies.learned.images import image_feature

            image = image_feature(np.asarray(observation[self.image_key]))
        state = observation.get("observation.state")
        return StepInput(task=task, history=[self.library.render(s.call) for s in history],
                         history_sources=[s.source for s in history], objects=list(observation.get("perception.objects", [])),
                         state=None if state is None else np.asarray(state, np.float32),
                         knowledge=[statement_of(k) for k in knowledge or []], image=image)

    def score(self, step: StepInput, candidates: list[Candidate] | None = None) -> tuple[list[Candidate], np.ndarray]:
        """The candidates and their scores (float32) for one decision point."""
        cands = candidates if candidates is not None else generate(step.objects, self.library)
        feats = self.featurizer.featurize(step, cands)
        arr = self.featurizer.arrays(feats)
        t = {k: self._torch.from_numpy(np.ascontiguousarray(v)) for k, v in arr.items()}
        img = has = None
        if self.model.cfg.use_image:
            has = self._torch.tensor([1.0 if step.image is not None else 0.0])
            img = self._torch.from_numpy(np.asarray(step.image if step.image is not None else np.zeros(self.model.cfg.image_dim),
                                                    np.float32)[None])
        with self._torch.no_grad():
            s = self.model(t["task"], t["last"], t["know"], t["ctx"], t["cand_e"], t["cand_f"], t["mask"], img, has)
        return cands, s[0].numpy().astype(np.float32)

    # ----- the contract -----
    def next_step(self, observation: dict[str, Any], task: str, history: Sequence[Step],
                  knowledge: Sequence[Any]) -> SkillCall | Done:
        t0 = time.perf_counter()
        try:
            return self._next(observation, task, history, knowledge)
        finally:
            self.latencies.append(time.perf_counter() - t0)

    def _next(self, observation: dict[str, Any], task: str, history: Sequence[Step],
              knowledge: Sequence[Any]) -> SkillCall | Done:
        if len(history) >= self.max_steps:
            return Done(f"the learned policy stops after {self.max_steps} steps without finishing", ok=False)
        step = self.step_input(observation, task, history, knowledge)
        cands, scores = self.score(step)
        self.last_choice = (cands, scores)
        # an action mask: nothing can be placed on the object in the hand
        held = held_object({"observation.state": step.state}, step.objects) if step.state is not None else None
        if held is not None:
            scores = np.where([c.kind == "deliver" and c.obj == held.name for c in cands], np.float32(-np.inf), scores)
        best = cands[int(np.argmax(scores))]
        if best.skill == "done":
            return Done("task complete")
        period = repeating_cycle([*step.history, best.text], self.max_repeats)
        if period:
            what = f"{best.text!r}" if period == 1 else f"the same {period} steps ({best.text!r} next)"
            return Done(f"the learned policy keeps choosing {what} over and over; giving up", ok=False)
        call = self.library.parse(best.text)
        if call is None or call.skill != best.skill:
            return Done(f"the learned policy chose {best.text!r}, which no skill can run", ok=False)
        words = self.library.lexicon().get(call.skill)
        for slot in words.object_slots if words else ():
            if isinstance(call.args.get(slot), str):
                try:
                    resolve(str(call.args[slot]), step.objects)
                except (UnknownObjectError, AmbiguousObjectError) as e:
                    return Done(f"the learned policy chose {best.text!r}: {e}", ok=False)
        return call
