"""MiniLM sentence embeddings, computed once per string: a per-process dict plus an on-disk
cache (`embeddings.safetensors` + `embeddings.json` in a checkpoint or training directory).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from policies.base import PolicyError

TEXT_DIM = 384
_EMBED_JSON = "embeddings.json"
_EMBED_ST = "embeddings.safetensors"


def _embed_fn():  # the one place the embedding model is reached
    try:
        from corrections_kb.embed import embed_text
        from corrections_kb.errors import EmbeddingUnavailable
    except ImportError as e:  # pragma: no cover - the kb package is part of corrigo
        raise PolicyError(f"the learned policy needs corrections_kb.embed ({e})") from None

    def fn(texts: list[str]) -> np.ndarray:
        try:
            return np.asarray(embed_text(texts), np.float32).reshape(len(texts), TEXT_DIM)
        except EmbeddingUnavailable as e:
            raise PolicyError(f"the learned policy needs the MiniLM text model: {e}") from None

    return fn


class TextCache:
    """str -> (384,) float32 unit vector. Thread-unsafe; one per policy or training run."""

    def __init__(self) -> None:
        self._vecs: dict[str, np.ndarray] = {}
        self._dirty = False
        self._fn = None

    def __len__(self) -> int:
        return len(self._vecs)

    def __contains__(self, text: str) -> bool:
        return text in self._vecs

    def ensure(self, texts: Iterable[str]) -> None:
        missing = sorted({t for t in texts if t not in self._vecs})
        if not missing:
            return
        if self._fn is None:
            self._fn = _embed_fn()
        for s in range(0, len(missing), 256):
            chunk = missing[s: s + 256]
            for t, v in zip(chunk, self._fn(chunk)):
                self._vecs[t] = v
        self._dirty = True

    def get(self, text: str) -> np.ndarray:
        if text not in self._vecs:
            self.ensure([text])
        return self._vecs[text]

    def many(self, texts: Sequence[str]) -> np.ndarray:
        self.ensure(texts)
        if not texts:
            return np.zeros((0, TEXT_DIM), np.float32)
        return np.stack([self._vecs[t] for t in texts])

    def mean(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(TEXT_DIM, np.float32)
        return self.many(texts).mean(0).astype(np.float32)

    # ----- disk -----
    def load(self, directory: str | Path) -> "TextCache":
        d = Path(directory)
        jp, sp = d / _EMBED_JSON, d / _EMBED_ST
        if not (jp.is_file() and sp.is_file()):
            return self
        try:
            from safetensors.numpy import load_file

            strings = json.loads(jp.read_text())
            mat = load_file(str(sp))["text"]
        except Exception:  # noqa: BLE001 - a broken cache is only slower, never wrong
            return self
        if len(strings) != len(mat) or mat.shape[1:] != (TEXT_DIM,):
            return self
        for t, v in zip(strings, mat):
            self._vecs.setdefault(t, np.asarray(v, np.float32))
        return self

    def save(self, directory: str | Path, only: Iterable[str] | None = None) -> None:
        from safetensors.numpy import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._vecs if only is None else {t for t in only if t in self._vecs})
        mat = np.stack([self._vecs[k] for k in keys]) if keys else np.zeros((0, TEXT_DIM), np.float32)
        tmp_s, tmp_j = d / (_EMBED_ST + ".tmp"), d / (_EMBED_JSON + ".tmp")
        save_file({"text": np.ascontiguousarray(mat, np.float32)}, str(tmp_s))
        tmp_j.write_text(json.dumps(keys))
        tmp_s.replace(d / _EMBED_ST)
        tmp_j.replace(d / _EMBED_JSON)
        self._dirty = False
