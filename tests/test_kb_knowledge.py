"""The `Knowledge` item: validation, JSON round trip (bit-exact embeddings), score."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from corrections_kb.errors import InvalidKnowledge
from corrections_kb.knowledge import EFFECT_EXAMPLES, SCOPE_KEYS, Knowledge, decode_vector, encode_vector


def test_defaults_and_normalisation():
    k = Knowledge(kind="skill", statement="grasp mugs 2 cm further along +y in the mug's frame",
                  effect={"type": "param", "skill": "pick", "param": "grasp_offset", "delta": (0, 0.02, 0),
                          "frame": "object"},
                  scope={"skill": "pick", "object_category": "mug"})
    assert k.effect["delta"] == [0, 0.02, 0]  # tuples become lists: what is stored is what reads back
    assert set(k.scope) == set(SCOPE_KEYS) and k.scope["user"] is None
    assert k.active and k.version == 1 and k.uses == 0 and k.id is None
    assert k.updated_at == k.created_at and len(k.uid) == 32
    for effect in EFFECT_EXAMPLES:
        Knowledge(kind="task", statement="x", effect=effect)


@pytest.mark.parametrize("kw, msg", [
    ({"kind": "plan"}, "kind must be"),
    ({"statement": "  "}, "statement"),
    ({"effect": {"x": object()}}, "JSON"),
    ({"effect": {"x": float("nan")}}, "JSON"),
    ({"effect": [1, 2]}, "dict"),
    ({"scope": {"colour": "red"}}, "unknown scope key"),
    ({"scope": {"skill": 3}}, "string"),
    ({"text_embedding": np.zeros(384)}, "all zeros"),
    ({"text_embedding": np.full(384, np.nan)}, "NaN"),
    ({"visual_embedding": np.ones((2, 3))}, "1-D"),
    ({"uses": -1}, "non-negative"),
    ({"version": 0}, "version"),
    ({"created_at": float("inf")}, "finite"),
])
def test_invalid_fields_are_one_line_errors(kw, msg):
    base = {"kind": "task", "statement": "always put fruit in the basket"}
    with pytest.raises(InvalidKnowledge, match=msg) as e:
        Knowledge(**{**base, **kw})
    assert "\n" not in str(e.value)


def test_score_and_rank_key():
    a = Knowledge(kind="task", statement="a", successes=5, contradictions=2, updated_at=10.0, created_at=1.0)
    b = Knowledge(kind="task", statement="b", successes=1, contradictions=0, updated_at=20.0, created_at=1.0)
    assert a.score == 1 and b.score == 1
    assert max([a, b], key=lambda k: k.rank_key) is b  # same evidence: the more recent wins
    c = b.replace(contradictions=1)
    assert c.score == -1 and max([a, c], key=lambda k: k.rank_key) is a


def test_applies_to():
    k = Knowledge(kind="skill", statement="s", scope={"skill": "pick", "object_category": "mug"})
    assert k.applies_to(skill="pick", object_category="mug", user="ann")
    assert k.applies_to(skill=None)
    assert not k.applies_to(object_category="bowl")
    with pytest.raises(InvalidKnowledge):
        k.applies_to(colour="red")


def test_json_round_trip_with_embeddings():
    rng = np.random.default_rng(0)
    k = Knowledge(kind="skill", statement="grasp mugs further left ✓", effect={"type": "param", "delta": [0.1, -2e-9]},
                  scope={"skill": "pick"}, text_embedding=rng.standard_normal(384),
                  visual_embedding=rng.standard_normal(1280).astype(np.float32),
                  provenance={"episode": "ep-3", "operator": "ann", "utterances": ["no, more left"]},
                  uses=3, successes=2, contradictions=1, active=False, version=4, id=17)
    line = k.to_json()
    assert "\n" not in line
    back = Knowledge.from_json(line)
    assert back == k
    assert back.text_embedding.dtype == np.float32 and back.text_embedding.tobytes() == k.text_embedding.tobytes()
    # lists of numbers are accepted too
    d = json.loads(line)
    d["text_embedding"] = k.text_embedding.tolist()
    assert Knowledge.from_dict(d) == k


def test_from_json_errors():
    with pytest.raises(InvalidKnowledge, match="not valid JSON"):
        Knowledge.from_json("{nope")
    with pytest.raises(InvalidKnowledge, match="unknown field"):
        Knowledge.from_dict({"kind": "task", "statement": "x", "colour": 1})
    with pytest.raises(InvalidKnowledge, match="missing field"):
        Knowledge.from_dict({"kind": "task"})
    with pytest.raises(InvalidKnowledge, match="base64"):
        Knowledge.from_dict({"kind": "task", "statement": "x", "text_embedding": "!!!"})


def test_equality_is_field_by_field():
    k = Knowledge(kind="task", statement="x", text_embedding=np.ones(4))
    other = k.replace()
    assert other == k
    v = other.text_embedding.copy()
    v[0] = np.nextafter(v[0], np.float32(2))
    assert other.replace(text_embedding=v) != k
    assert k.content_equal(k.replace(uses=5, version=9))
    assert not k.content_equal(k.replace(active=False))


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(vec=arrays(np.float32, st.integers(1, 64), elements=finite_f32).filter(lambda a: bool(np.any(a))),
       statement=st.text(min_size=1).filter(lambda s: s.strip()),
       effect=st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.floats(allow_nan=False,
                              allow_infinity=False), st.text(), st.lists(st.integers(), max_size=3)), max_size=4))
def test_round_trip_property(vec, statement, effect):
    k = Knowledge(kind="task", statement=statement, effect=effect, text_embedding=vec)
    back = Knowledge.from_json(k.to_json())
    assert back == k
    assert decode_vector(encode_vector(vec)).tobytes() == vec.tobytes()
