"""Typed effects: construction, validation, the Mapping view, JSON round trip, the v1 -> v2 upgrade."""
from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corrections_kb import effects as fx
from corrections_kb.effects import (
    EFFECT_EXAMPLES, EFFECT_SCHEMA, EFFECT_TYPES, Alias, Effect, GraspOffset, InsertStep, Note, Order, ParamChange,
    PreferredContainer, RawEffect, SpeedScale, effect_from_dict, stored_v1_to_v2, upgrade_v1,
)
from corrections_kb.errors import InvalidKnowledge
from corrections_kb.knowledge import Knowledge


def test_types_examples_and_checks_are_complete():
    assert EFFECT_SCHEMA == 2
    assert set(EFFECT_TYPES) == {"grasp_offset", "param", "speed", "preference", "alias", "order", "insert_step",
                                 "note"}
    assert all(cls.type == tag for tag, cls in EFFECT_TYPES.items())
    assert sorted(e.type for e in EFFECT_EXAMPLES) == sorted(EFFECT_TYPES)  # one example per type
    for cls in EFFECT_TYPES.values():  # every field's annotation has a check
        for f in dataclasses.fields(cls):
            assert str(f.type) in fx._CHECKS, (cls.type, f.name, f.type)
        assert len(fx._fields_of(cls)) == len(dataclasses.fields(cls))  # builds every check


@pytest.mark.parametrize("effect", EFFECT_EXAMPLES, ids=lambda e: e.type)
def test_round_trip_through_json(effect):
    d = effect.to_dict()
    assert d["type"] == effect.type and None not in d.values()
    back = effect_from_dict(json.loads(json.dumps(d)))
    assert type(back) is type(effect) and back == effect and back.to_dict() == d


def test_mapping_view_is_read_only():
    e = GraspOffset(skill="pick", param="grasp_offset", delta=[0, 0.02, 0])
    assert e.delta == (0.0, 0.02, 0.0) and all(type(x) is float for x in e.delta)
    assert e["delta"] == [0, 0.02, 0] and e.get("type") == "grasp_offset" and e.get("value") is None
    assert "value" not in e and "frame" in e and len(e) == 5
    assert dict(e) == {"type": "grasp_offset", "skill": "pick", "param": "grasp_offset", "delta": [0.0, 0.02, 0.0],
                       "frame": "object"}
    e["delta"].append(9)  # a copy: the effect does not change
    assert e["delta"] == [0, 0.02, 0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.skill = "place"  # type: ignore[misc]
    with pytest.raises(TypeError):
        e["skill"] = "place"  # type: ignore[index]


def test_equality_against_effects_and_dicts():
    a = ParamChange(skill="pick", param="grasp_yaw", value=0.3)
    assert a == {"type": "param", "skill": "pick", "param": "grasp_yaw", "value": 0.3}
    assert a == ParamChange(skill="pick", param="grasp_yaw", value=0.3)
    assert a != ParamChange(skill="pick", param="grasp_yaw", value=0.31)
    assert a != {"type": "param", "skill": "pick", "param": "grasp_yaw"}
    # same fields, other tag: different effects
    assert GraspOffset(skill="pick", param="p", value=(1.0,)) != {"type": "param", "skill": "pick", "param": "p",
                                                                   "value": [1.0], "frame": "object"}
    assert a != "param"


def test_numbers():
    assert ParamChange(param="passes", value=3).value == 3 and type(ParamChange(value=3).value) is int
    assert type(ParamChange(value=3.0).value) is float
    assert ParamChange(delta=[1, 2]).delta == (1.0, 2.0)
    assert SpeedScale(scale=2).scale == 2.0 and type(SpeedScale(scale=2).scale) is float


@pytest.mark.parametrize("d, msg", [
    ({"type": "alias", "word": "cup"}, "alias effect: missing field(s) 'means'"),
    ({"type": "alias", "word": "cup", "means": "mug", "colour": "red"}, "alias effect: unknown field(s) 'colour'"),
    ({"type": "alias", "word": "", "means": "mug"}, "'word' must be a non-empty string"),
    ({"type": "preference", "target": 3}, "'target' must be a non-empty string"),
    ({"type": "param", "value": True}, "'value' must be a number"),
    ({"type": "param", "value": "3"}, "'value' must be a number"),
    ({"type": "param", "delta": [0, float("nan")]}, "'delta' must be finite"),
    ({"type": "param", "value": float("inf")}, "'value' must be finite"),
    ({"type": "grasp_offset", "skill": "pick", "param": "p", "value": 0.1}, "'value' must be a non-empty list"),
    ({"type": "grasp_offset", "skill": "pick", "param": "p", "value": []}, "'value' must be a non-empty list"),
    ({"type": "grasp_offset", "skill": "pick", "param": "p", "frame": None}, "'frame' must be a non-empty string"),
    ({"type": "speed", "scale": 0}, "'scale' must be positive"),
    ({"type": "speed", "scale": "slow"}, "'scale' must be a number"),
    ({"type": "insert_step", "steps": "open the drawer"}, "'steps' must be a non-empty list of strings"),
    ({"type": "insert_step", "steps": []}, "'steps' must be a non-empty list of strings"),
    ({"type": "order", "first": "fruit", "then": 1}, "'then' must be a non-empty string"),
    ({"type": "note", "text": "x"}, "note effect: unknown field(s) 'text'; known: none"),
    ({"type": "plan", "op": "insert_before", "steps": ["a"], "step": "b"}, "unknown field(s) 'step'"),
])
def test_bad_known_effects_are_one_line_errors_naming_the_field(d, msg):
    with pytest.raises(InvalidKnowledge) as e:
        effect_from_dict(d)
    assert msg in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InvalidKnowledge, match="effect"):  # and so is a Knowledge item built with it
        Knowledge(kind="task", statement="x", effect=d)


def test_not_a_dict():
    with pytest.raises(InvalidKnowledge, match="effect must be a dict, got list"):
        effect_from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("d", [{}, {"type": "wipe_pattern", "passes": 3}, {"kind": "x"}, {"type": 5},
                               {"type": "plan", "op": "skip", "target": "lid"}, {"type": "raw", "a": [1, {"b": None}]}])
def test_unknown_types_are_kept_verbatim(d):
    e = effect_from_dict(d)
    assert isinstance(e, RawEffect) and e.to_dict() == d and e == d and e.type == "raw"
    e.to_dict()["extra"] = 1
    assert e.to_dict() == d
    assert Knowledge.from_json(Knowledge(kind="task", statement="x", effect=d).to_json()).effect == d


@pytest.mark.parametrize("v1, cls, v2", [
    ({"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.02, 0], "frame": "object"},
     GraspOffset, {"type": "grasp_offset", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.02, 0],
                   "frame": "object"}),
    ({"type": "param", "skill": "place", "param": "offset", "value": [0.1, 0, 0], "frame": "base"},
     GraspOffset, {"type": "grasp_offset", "skill": "place", "param": "offset", "value": [0.1, 0, 0], "frame": "base"}),
    ({"type": "plan", "op": "insert_before", "steps": ["open the drawer", "look"],
      "anchor": {"skill": "pick", "object_category": "mug"}},
     InsertStep, {"type": "insert_step", "steps": ["open the drawer", "look"], "anchor_skill": "pick",
                  "anchor_category": "mug"}),
    ({"type": "plan", "op": "insert_before", "steps": ["open it"], "anchor": {"skill": "pick", "object_category": None}},
     InsertStep, {"type": "insert_step", "steps": ["open it"], "anchor_skill": "pick"}),
    ({"type": "plan", "op": "insert_before", "step": "pick up the lid", "anchor": "pick up the mug"},
     InsertStep, {"type": "insert_step", "steps": ["pick up the lid"], "anchor_text": "pick up the mug"}),
    ({"type": "plan", "op": "order", "first": "fruit", "then": "block"},
     Order, {"type": "order", "first": "fruit", "then": "block"}),
    ({"type": "plan", "op": "order", "first": "mug", "then": None}, Order, {"type": "order", "first": "mug"}),
    ({"type": "param", "skill": "pick", "param": "grasp_yaw", "value": 0.35}, ParamChange, None),
    ({"type": "param", "skill": "wipe", "param": "passes", "value": 3}, ParamChange, None),
    ({"type": "speed", "skill": "pick", "scale": 0.5}, SpeedScale, None),
    ({"type": "preference", "target": "basket", "applies_to": "fruit"}, PreferredContainer, None),
    ({"type": "alias", "word": "cup", "means": "mug"}, Alias, None),
    ({"type": "note"}, Note, None),
])
def test_v1_shapes_upgrade(v1, cls, v2):
    expected = _set(v2 or v1)  # v2 None: the shape did not change
    assert _set(upgrade_v1(v1)) == expected
    e = effect_from_dict(v1)
    assert type(e) is cls and e == expected
    assert effect_from_dict(e.to_dict()) == e  # v2 reads back as itself
    k = Knowledge.from_dict({"kind": "task", "statement": "x", "effect": v1})
    assert type(k.effect) is cls and json.loads(k.to_json())["effect"] == e.to_dict()


def _set(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def test_upgrade_does_not_change_its_input():
    v1 = {"type": "plan", "op": "insert_before", "step": "x", "anchor": "y"}
    before = json.dumps(v1)
    upgrade_v1(v1)
    effect_from_dict(v1)
    assert json.dumps(v1) == before


def test_stored_v1_that_is_not_a_valid_v2_effect_is_kept_whole():
    bad = {"type": "param", "skill": "pick", "value": "a lot"}
    d = stored_v1_to_v2(bad)
    assert d["type"] == "invalid_v1" and d["original"] == bad and "'value' must be a number" in d["error"]
    assert isinstance(effect_from_dict(d), RawEffect)
    good = {"type": "plan", "op": "order", "first": "fruit"}
    assert stored_v1_to_v2(good) == {"type": "order", "first": "fruit"}


def test_knowledge_effect_is_always_typed():
    assert Knowledge(kind="task", statement="x").effect == RawEffect() == {}
    assert isinstance(Knowledge(kind="task", statement="x", effect=None).effect, RawEffect)
    typed = Alias(word="cup", means="mug")
    k = Knowledge(kind="task", statement="x", effect=typed)
    assert k.effect is typed
    k2 = k.replace(effect={"type": "alias", "word": "cup", "means": "bowl"})
    assert isinstance(k2.effect, Alias) and k2.effect.means == "bowl" and not k2.content_equal(k)
    assert k.replace(effect=dict(typed)).content_equal(k)
    with pytest.raises(TypeError):  # equal to dicts, so not hashable
        hash(Note())
    assert isinstance(k.effect, Effect)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
names = st.text(min_size=1, max_size=8)


@settings(max_examples=80, deadline=None)
@given(effect=st.one_of(
    st.builds(GraspOffset, skill=names, param=names, value=st.none() | st.lists(finite, min_size=1, max_size=4),
              delta=st.none() | st.lists(finite, min_size=1, max_size=4), frame=names),
    st.builds(ParamChange, skill=st.none() | names, param=st.none() | names,
              value=st.none() | st.integers(-10**6, 10**6) | finite | st.lists(finite, min_size=1, max_size=3)),
    st.builds(SpeedScale, skill=st.none() | names, scale=st.floats(1e-3, 1e3)),
    st.builds(PreferredContainer, target=names, applies_to=st.none() | names),
    st.builds(InsertStep, steps=st.lists(names, min_size=1, max_size=3), anchor_skill=st.none() | names,
              anchor_category=st.none() | names, anchor_text=st.none() | names),
))
def test_round_trip_property(effect):
    back = effect_from_dict(json.loads(json.dumps(effect.to_dict(), allow_nan=False)))
    assert type(back) is type(effect) and back == effect
    for f in dataclasses.fields(effect):
        assert getattr(back, f.name) == getattr(effect, f.name)
        assert type(getattr(back, f.name)) is type(getattr(effect, f.name))  # an int stays an int
