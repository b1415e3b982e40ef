"""Grounding pieces of the learned policy that need no model: colour words, held-out phrasings, features."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from policies.base import PolicyError
from policies.learned import colour
from policies.learned.candidates import generate
from policies.learned.features import CAND_FEATURES, CTX_FEATURES, Featurizer, StepInput, embed_text_of
from policies.learned.heldout import load_heldout
from policies.learned.text import TEXT_DIM, TextCache
from policies.rule_based import RuleBasedPolicy
from robot.vocab import COLOUR_WORDS
from robot.types import SceneObject
from skills.library import default_library


class FakeTexts(TextCache):
    """Deterministic pseudo-embeddings: no model needed (similarities are meaningless but stable)."""

    def __init__(self) -> None:
        super().__init__()

        def fn(texts: list[str]) -> np.ndarray:
            out = []
            for t in texts:
                rng = np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:8], 16))
                v = rng.standard_normal(TEXT_DIM).astype(np.float32)
                out.append(v / np.linalg.norm(v))
            return np.stack(out)

        self._fn = fn


def obj(name: str, cat: str, col: str, x: float, y: float, **attrs) -> SceneObject:
    base = {"block": {"graspable": True, "group": "block", "grasp_height": 0.02},
            "bowl": {"graspable": False, "container": True, "group": "container", "inner_radius": 0.06},
            "apple": {"graspable": True, "group": "fruit"},
            "basket": {"graspable": False, "container": True, "group": "container"}}
    size = {"block": (0.04, 0.04, 0.04), "bowl": (0.15, 0.15, 0.05), "apple": (0.06, 0.06, 0.06), "basket": (0.18, 0.24, 0.07)}
    return SceneObject(name, cat, col, np.array([x, y, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), np.array(size[cat]),
                       attributes={**base[cat], **attrs})


SCENE = [obj("red_block", "block", "red", 0.4, 0.1), obj("green_block", "block", "green", 0.45, -0.1),
         obj("blue_block", "block", "blue", 0.5, 0.0), obj("blue_bowl", "bowl", "blue", 0.55, 0.2),
         obj("red_bowl", "bowl", "red", 0.55, -0.2)]


@pytest.mark.parametrize("word,basic", [("crimson", "red"), ("scarlet", "red"), ("navy", "blue"), ("azure", "blue"),
                                        ("golden", "yellow"), ("ivory", "white"), ("lime", "green"), ("red", "red"),
                                        ("violet", "purple"), ("gray", "grey")])
def test_colour_words_map_to_basic_terms(word: str, basic: str) -> None:
    d = colour.distribution(word)
    assert d is not None and colour.BASIC[int(np.argmax(d))] == basic
    assert colour.agreement(colour.distribution(basic), colour.distribution(basic)) == pytest.approx(1.0)


def test_colour_word_detection() -> None:
    w = "put orange block in orange bowl and the orange in the basket".split()
    flags = [colour.is_colour_word(w, i) for i in range(len(w))]
    assert flags == [False, True, False, False, True, False, False, False, False, False, False, False]
    assert colour.distribution("block") is None and colour.distribution("flibber") is None
    assert colour.mask_colours("could you get crimson cube into navy bowl".split()) == "could you get cube into bowl".split()
    assert embed_text_of("Pick up the RED block") == "pick up block"


def test_heldout_phrasings_are_new() -> None:
    from sim.tasks import TASKS

    hs = load_heldout()
    norm = lambda t: " ".join(re.findall(r"[a-z{}]+", t.lower()))  # noqa: E731
    train = {norm(t) for task in TASKS.values() for t in task.templates}
    assert set(hs.templates) == set(TASKS)
    for task, tpls in hs.templates.items():
        assert tpls and not {norm(t) for t in tpls} & train, task
    assert set(hs.colour_synonyms) >= {"red", "blue", "green", "yellow", "white", "black"}
    for syns in hs.colour_synonyms.values():
        assert not set(syns) & set(COLOUR_WORDS)
    text = hs.phrase("PickPlace", {"object": "red_block", "target": "blue_bowl"}, SCENE, seed=3)
    assert text == hs.phrase("PickPlace", {"object": "red_block", "target": "blue_bowl"}, SCENE, seed=3)
    assert "red" not in text.split() and "blue" not in text.split()
    with pytest.raises(PolicyError):
        RuleBasedPolicy().ground(text, SCENE)
    with pytest.raises(PolicyError):
        load_heldout("/nonexistent/phrasings.yaml")


def test_features_ground_unknown_colour_words() -> None:
    lib = default_library()
    fz = Featurizer(lib, FakeTexts())
    cands = generate(SCENE, lib)
    F = {n: j for j, n in enumerate(CAND_FEATURES)}
    step = StepInput("could you get the crimson cube into the navy bowl", [], [], SCENE)
    f = fz.featurize(step, cands)
    by = {(c.skill, c.obj): f.cand[i] for i, c in enumerate(cands)}
    red, green, blue = by[("pick", "red_block")], by[("pick", "green_block")], by[("pick", "blue_block")]
    assert red[F["g_qfirst"]] > 0.8 and red[F["g_qfirst"]] > green[F["g_qfirst"]] + 0.5
    assert blue[F["g_qfirst"]] < 0.2  # "navy" is about the bowl, not the blue block
    assert by[("place", "blue_bowl")][F["g_qlast"]] > 0.8 > by[("place", "red_bowl")][F["g_qlast"]] + 0.5
    assert f.task_text == "could you get cube into bowl"
    # history features: the pick just done
    step2 = StepInput(step.task, ["pick up the red block"], ["policy"], SCENE)
    f2 = fz.featurize(step2, cands)
    i = next(k for k, c in enumerate(cands) if c.text == "pick up the red block")
    assert f2.cand[i, F["h_last"]] == 1.0 and f2.cand[i, F["h_count"]] > 0
    assert f2.ctx[CTX_FEATURES.index("last_acquire")] == 1.0 and f.ctx[CTX_FEATURES.index("last_acquire")] == 0.0


def test_loop_detection() -> None:
    from policies.learned.policy import repeating_cycle

    assert repeating_cycle(list("AAA"), 2) == 1 and repeating_cycle(list("AA"), 2) == 0
    assert repeating_cycle(list("ABABA"), 2) == 2 and repeating_cycle(list("ABAB"), 2) == 0
    assert repeating_cycle(list("ABCABCA"), 2) == 3
    sort = ["pick up the apple", "put it in the basket", "pick up the banana", "put it in the basket", "pick up the lemon",
            "put it in the basket"]
    assert all(repeating_cycle(sort[:k], 2) == 0 for k in range(1, len(sort) + 1))
