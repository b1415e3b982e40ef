"""Frozen EfficientNet-lite0 features of camera images (corrections_kb.embed), cached by content."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from policies.base import PolicyError

IMAGE_DIM = 1280
_CACHE = "image_features.safetensors"


def _embed(images: list[np.ndarray]) -> np.ndarray:
    try:
        from corrections_kb.embed import embed_image
        from corrections_kb.errors import EmbeddingUnavailable
    except ImportError as e:  # pragma: no cover
        raise PolicyError(f"image features need corrections_kb.embed ({e})") from None
    try:
        return np.asarray(embed_image(images), np.float32).reshape(len(images), IMAGE_DIM)
    except EmbeddingUnavailable as e:
        raise PolicyError(f"image features need EfficientNet-lite0: {e}") from None


def image_feature(image: np.ndarray) -> np.ndarray:
    """(1280,) features of one HxWx3 uint8 image."""
    return _embed([np.asarray(image)[..., :3]])[0]


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class ImageFeatureCache:
    """PNG bytes -> features, remembered on disk (keyed by the bytes' SHA-1) across training runs."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory else None
        self._vecs: dict[str, np.ndarray] = {}
        if self.dir and (self.dir / _CACHE).is_file():
            try:
                from safetensors.numpy import load_file

                self._vecs = {k: np.asarray(v, np.float32) for k, v in load_file(str(self.dir / _CACHE)).items()
                              if v.shape == (IMAGE_DIM,)}
            except Exception:  # noqa: BLE001 - a broken cache is only slower
                self._vecs = {}

    def features(self, pngs: Sequence[bytes], progress: bool = False, batch: int = 32) -> np.ndarray:
        keys = [hashlib.sha1(b).hexdigest() for b in pngs]
        todo = sorted({k: b for k, b in zip(keys, pngs) if k not in self._vecs}.items())
        if todo:
            rng = range(0, len(todo), batch)
            if progress:
                from tqdm import tqdm

                rng = tqdm(rng, desc="image features", unit="batch", leave=False)
            for s in rng:
                chunk = todo[s: s + batch]
                for (k, _), v in zip(chunk, _embed([decode_png(b) for _, b in chunk])):
                    self._vecs[k] = v
            self.save()
        if not keys:
            return np.zeros((0, IMAGE_DIM), np.float32)
        return np.stack([self._vecs[k] for k in keys])

    def save(self) -> None:
        if self.dir is None:
            return
        from safetensors.numpy import save_file

        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / (_CACHE + ".tmp")
        save_file({k: np.ascontiguousarray(v) for k, v in self._vecs.items()}, str(tmp),
                  metadata={"model": "efficientnet-lite0", "count": json.dumps(len(self._vecs))})
        tmp.replace(self.dir / _CACHE)
