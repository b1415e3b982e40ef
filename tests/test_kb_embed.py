"""Embeddings: MiniLM text vectors, EfficientNet-lite0 visual vectors, object crops.

Tests that load a model are marked `kb`; crop tests need only numpy."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from corrections_kb.embed import crop_from_mask, resize

ROOT = Path(__file__).resolve().parents[1]


# ----- synthetic object images -----
def _background(rng: np.random.Generator, h: int = 240, w: int = 320) -> np.ndarray:
    """A grey table top with a little texture and a lighting gradient."""
    img = np.full((h, w, 3), 170, np.float32)
    img += np.linspace(-15, 15, w)[None, :, None]
    img += rng.normal(0, 4, (h, w, 1))
    return img


def red_block(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = _background(rng)
    h, w = img.shape[:2]
    s = int(rng.integers(30, 60))
    y, x = int(rng.integers(20, h - s - 20)), int(rng.integers(20, w - s - 20))
    mask = np.zeros((h, w), bool)
    mask[y:y + s, x:x + s] = True
    shade = np.linspace(0.75, 1.0, s)[:, None]  # lit from one side
    img[y:y + s, x:x + s] = np.stack([200 * shade + rng.integers(0, 30), 25 * shade + 0 * shade,
                                      30 * shade + 0 * shade], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def banana(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = _background(rng)
    h, w = img.shape[:2]
    cy, cx = int(rng.integers(100, 140)), int(rng.integers(120, 200))
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - (cy - 50), xx - cx)
    mask = (d > 55) & (d < 75) & (yy > cy - 10)  # a yellow crescent
    img[mask] = [235, 205, 60]
    tips = mask & (np.abs(xx - cx) > 55)
    img[tips] = [110, 90, 40]  # brown ends
    return np.clip(img, 0, 255).astype(np.uint8), mask


# ----- crops (no model) -----
def test_crop_from_mask_shape_and_centre():
    rgb, mask = red_block(1)
    crop = crop_from_mask(rgb, mask)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    centre = crop[92:132, 92:132].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 120 and centre[1] < 60  # the block fills the middle
    assert crop_from_mask(rgb, mask, size=64).shape == (64, 64, 3)


def test_crop_pads_outside_the_image_with_the_imagenet_mean():
    rgb = np.full((50, 50, 3), 255, np.uint8)
    mask = np.zeros((50, 50), bool)
    mask[0:10, 0:10] = True  # at the corner: the square crop sticks out
    crop = crop_from_mask(rgb, mask, pad=0.5)
    assert tuple(crop[0, 0]) == (124, 116, 104)
    assert tuple(crop[-1, -1]) == (255, 255, 255)


def test_crop_errors():
    rgb = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="mask is empty"):
        crop_from_mask(rgb, np.zeros((20, 30), bool))
    with pytest.raises(ValueError, match="does not match"):
        crop_from_mask(rgb, np.ones((30, 20), bool))
    with pytest.raises(ValueError, match="HxWx3"):
        crop_from_mask(np.zeros((20, 30)), np.ones((20, 30), bool))


def test_resize():
    img = np.zeros((400, 600, 3), np.uint8)
    img[:, 300:] = 200
    out = resize(img, 100)
    assert out.shape == (100, 100, 3)
    assert out[:, :45].max() == 0 and out[:, 55:].min() == 200
    flat = np.full((7, 9, 3), 77, np.uint8)
    assert (resize(flat, 224) == 77).all()


# ----- models -----
@pytest.mark.kb
def test_text_embeddings():
    from corrections_kb.embed import get_text_embedder

    te = get_text_embedder()
    assert te is get_text_embedder()  # cached per process
    e = te.embed_many(["grasp the mug", "pick up the cup", "open the drawer"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1
    assert te.embed("grasp the mug").shape == (384,)
    np.testing.assert_allclose(te.embed("grasp the mug"), e[0], atol=1e-5)
    assert te.embed_many([]).shape == (0, 384)


@pytest.mark.kb
def test_visual_embeddings():
    from corrections_kb.embed import get_visual_embedder

    ve = get_visual_embedder()
    crops = [crop_from_mask(*red_block(1)), crop_from_mask(*red_block(2)), crop_from_mask(*banana(3))]
    f = ve.embed_many(crops)
    assert f.shape == (3, 1280) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.2  # red block ~ red block, not ~ banana (measured 0.98 vs 0.38)
    np.testing.assert_allclose(ve.embed(crops[0]), f[0], atol=1e-4)  # batch == single
    # any image size works (resized), float images in [0, 1] too
    assert ve.embed(np.zeros((50, 80, 3), np.uint8)).shape == (1280,)
    np.testing.assert_allclose(ve.embed(crops[0].astype(np.float32) / 255), f[0], atol=1e-2)
    with pytest.raises(ValueError):
        ve.embed(np.zeros((10, 10)))


@pytest.mark.kb
@pytest.mark.slow
def test_models_load_offline_and_write_nothing_under_home(tmp_path):
    """Fresh process, empty HOME and cache dir, no hub: both models load from the installed
    packages and nothing lands in ~/.cache or ~/.config."""
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    code = textwrap.dedent("""
        import numpy as np
        from corrections_kb.embed import get_text_embedder, get_visual_embedder
        print(get_text_embedder().embed("hello").shape, get_visual_embedder().embed(np.zeros((224, 224, 3), np.uint8)).shape)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "XDG_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "(384,) (1280,)" in r.stdout
    assert list(home.rglob("*")) == [], list(home.rglob("*"))
    assert "Loading weights" not in r.stderr
