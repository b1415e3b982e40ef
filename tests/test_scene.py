"""Scene specs: YAML validation with one-line errors, seeded layouts."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.objects import footprint_circles
from sim.scene import SceneError, load_scene, sample_layout, scene_from_dict


def test_builtin_scenes_load_and_lay_out() -> None:
    for name in ("tabletop", "pick_place", "stack", "sort_fruit", "drawer"):
        spec = load_scene(name)
        for seed in range(40):
            layout = sample_layout(spec, seed)
            assert len(layout) == len(spec.objects)
            circles = [(p, footprint_circles(p.category, p.size, p.x, p.y, p.yaw)) for p in layout]
            for i, (a, ca) in enumerate(circles):
                for b, cb in circles[i + 1:]:
                    gap = min(math.hypot(x1 - x2, y1 - y2) - r1 - r2 for x1, y1, r1 in ca for x2, y2, r2 in cb)
                    assert gap >= spec.clearance_m - 1e-9, f"{name} seed {seed}: {a.name} overlaps {b.name}"


def test_same_seed_same_layout_other_seed_differs() -> None:
    spec = load_scene("pick_place")
    a, b, c = sample_layout(spec, 3), sample_layout(spec, 3), sample_layout(spec, 4)
    assert [(o.name, o.x, o.y, o.yaw) for o in a] == [(o.name, o.x, o.y, o.yaw) for o in b]
    assert [(o.x, o.y) for o in a] != [(o.x, o.y) for o in c]


def test_region_and_pose_are_respected() -> None:
    spec = scene_from_dict({"objects": [
        {"type": "block", "colour": "red", "region": {"x": [0.4, 0.45], "y": [0.1, 0.12], "yaw": 0}},
        {"type": "bowl", "colour": "blue", "pose": {"x": 0.6, "y": -0.2, "yaw": 0.3}},
    ]})
    for seed in range(10):
        block, bowl = sample_layout(spec, seed)
        assert 0.4 <= block.x <= 0.45 and 0.1 <= block.y <= 0.12 and block.yaw == 0
        assert (bowl.x, bowl.y, bowl.yaw) == (0.6, -0.2, 0.3)
        assert block.name == "red_block" and bowl.name == "blue_bowl"


def test_colour_any_gives_distinct_colours_per_type() -> None:
    spec = load_scene("pick_place")
    for seed in range(20):
        blocks = [o.colour for o in sample_layout(spec, seed) if o.category == "block"]
        assert len(set(blocks)) == len(blocks)


@pytest.mark.parametrize("text, message", [
    ("objects: [\n  {type: block, colour: red\n", r"line \d+: broken YAML"),
    ("objects:\n  - {type: unicorn}\n", r"scene object 1: unknown type 'unicorn'"),
    ("objects:\n  - {type: block, colour: mauve}\n", r"unknown colour 'mauve'"),
    ("objects:\n  - {type: block, pose: {x: 0.5, y: 0}, region: {x: [0.3, 0.4]}}\n", "either pose or region"),
    ("objects:\n  - {type: block, region: {x: [0.6, 0.3]}}\n", "reversed"),
    ("objects: []\n", "non-empty list"),
    ("- just a list\n", "top level must be a mapping"),
    ("objects:\n  - {type: block, size: -1}\n", "size must be metres"),
    ("objects:\n  - {type: block, wings: 2}\n", r"unknown key\(s\) \['wings'\]"),
    ("objects:\n" + "  - {type: basket, region: {x: [0.4, 0.41], y: [0, 0.01]}}\n" * 3, "no free place"),
])
def test_broken_scene_files_give_one_line_errors(tmp_path, text: str, message: str) -> None:
    p = tmp_path / "scene.yaml"
    p.write_text(text)
    with pytest.raises(SceneError, match=message) as e:
        spec = load_scene(p)
        sample_layout(spec, 0)
    assert "\n" not in str(e.value)


def test_missing_scene_names_the_builtins() -> None:
    with pytest.raises(SceneError, match="built-in scenes: .*tabletop"):
        load_scene("no_such_scene")


def test_sim_layout_matches_the_spec() -> None:
    from sim import make_sim_arm

    with make_sim_arm("pybullet", scene="pick_place", seed=5) as arm:
        placed = {p.name: p for p in arm.layout}
        for o in arm.scene_objects():
            p = placed[o.name]
            assert np.allclose(o.position[:2], [p.x, p.y], atol=0.01), o.name
