"""Colour words -> distributions over basic colour terms, for words no hand-written table holds.

MiniLM does not know colours: the nearest basic colour of "crimson" by MiniLM cosine is
purple, of "navy" orange (measured: 22-38% right on 40 colour synonyms, whatever the
context sentence). So colour words are grounded here instead, from the xkcd colour
survey (949 names with their sRGB, shipped in matplotlib):

- a word is a colour word when the survey (or CSS4) names a colour with it;
- its colour is that sRGB, taken to CIELAB;
- `distribution(word)` is a Parzen-window classifier over the survey names that contain
  exactly one basic colour term ("navy blue", "dark red", "pale green", ...; 531 names),
  with equal class priors. The window (5 Lab units) maximises leave-one-out accuracy on
  those labelled names (0.90); the held-out colour words of the benchmark played no part.

Objects are compared to colour words by the Bhattacharyya coefficient of the two
distributions (1.0 for the same word).
"""
from __future__ import annotations

import functools
import re

import numpy as np

from robot.vocab import CATEGORY_WORDS, COLOUR_WORDS, GROUP_WORDS

# The basic colour terms, in the order of every distribution vector (the sim palette's names).
BASIC: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "white", "black", "brown",
                          "grey", "cyan")
SIGMA_LAB = 5.0
# Survey names that are ordinary words in instructions, never meant as colours there.
_NOT_COLOURS = {"dark", "pale", "light", "bright", "deep", "royal", "bland", "drab", "ice", "it", "tea", "pea", "dust",
                "earth", "stone", "desert", "dusk", "twilight", "barney", "poo", "poop", "shit", "puke", "vomit",
                "snot", "booger", "bile", "diarrhea", "clay", "brick", "sand", "sea", "sky", "leaf", "iris", "marine"}


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, float)
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = (lin @ m.T) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(single-word lexicon -> Lab, labelled Lab points, their basic-term labels)."""
    import matplotlib.colors as mc

    lex: dict[str, np.ndarray] = {}
    for name, hexv in mc.CSS4_COLORS.items():
        lex[name] = _srgb_to_lab(np.asarray(mc.to_rgb(hexv)))
    pts, labels = [], []
    for key, hexv in mc.XKCD_COLORS.items():
        name = key.removeprefix("xkcd:")
        lab = _srgb_to_lab(np.asarray(mc.to_rgb(hexv)))
        if re.fullmatch(r"[a-z]+", name):
            lex[name] = lab  # the survey wins over CSS (CSS 'azure' is almost white)
        basic = {COLOUR_WORDS.get(w, w) for w in re.findall(r"[a-z]+", name)} & set(BASIC)
        if len(basic) == 1:
            pts.append(lab)
            labels.append(BASIC.index(basic.pop()))
    return lex, np.asarray(pts), np.asarray(labels)


def lab_of(word: str) -> np.ndarray | None:
    lex, _, _ = _tables()
    return lex.get(word)


@functools.lru_cache(maxsize=4096)
def _distribution(word: str) -> tuple[float, ...] | None:
    lab = lab_of(word)
    if lab is None:
        return None
    _, pts, labels = _tables()
    k = np.exp(-((pts - lab) ** 2).sum(1) / (2 * SIGMA_LAB**2))
    per_class = np.bincount(labels, weights=k, minlength=len(BASIC)) / np.maximum(np.bincount(labels, minlength=len(BASIC)), 1)
    if per_class.sum() < 1e-12:  # far from every labelled name: fall back to the nearest one
        per_class = np.zeros(len(BASIC))
        per_class[labels[int(np.argmin(((pts - lab) ** 2).sum(1)))]] = 1.0
    return tuple(float(v) for v in per_class / per_class.sum())


def distribution(word: str) -> np.ndarray | None:
    """P(basic colour term | colour word), or None when the word names no colour.

    A basic term (or a hand-written synonym of one: gray, violet, teal) is its own category;
    other words go through the survey classifier.
    """
    basic = COLOUR_WORDS.get(word, word)
    if basic in BASIC:
        return np.eye(len(BASIC))[BASIC.index(basic)]
    d = _distribution(word)
    return None if d is None else np.asarray(d)


def is_colour_word(words: list[str], i: int) -> bool:
    """Does words[i] name a colour here? ('orange' is a colour before a noun, a fruit otherwise.)"""
    w = words[i]
    if w == "orange":
        return i + 1 < len(words) and (words[i + 1] in CATEGORY_WORDS or words[i + 1] in GROUP_WORDS)
    if w in COLOUR_WORDS:
        return True
    if len(w) < 3 or w in CATEGORY_WORDS or w in GROUP_WORDS or w in _NOT_COLOURS:
        return False
    return lab_of(w) is not None


def agreement(p: np.ndarray | None, q: np.ndarray | None) -> float:
    """Bhattacharyya coefficient of two colour distributions (0.5 when either is unknown)."""
    if p is None or q is None:
        return 0.5
    return float(np.sqrt(p * q).sum())


def mask_colours(words: list[str]) -> list[str]:
    """The words without their colour words (what the sentence embedding sees)."""
    return [w for i, w in enumerate(words) if not is_colour_word(words, i)]
