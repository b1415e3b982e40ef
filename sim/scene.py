"""Scenes declared in YAML, validated into dataclasses, laid out from a seed.

Layout sampling is backend-independent: the same spec and seed give the same
object list and poses in PyBullet and MuJoCo. Poses and regions must lie on the table
and within the arm's reach, and keys the loader would ignore are refused.

    name: pick_place
    objects:
      - {type: block, colour: any, region: {x: [0.35, 0.6], y: [-0.3, 0.3]}}
      - {type: bowl, colour: blue, pose: {x: 0.5, y: 0.2, yaw: 0}}
      - {type: cabinet, pose: {x: 0.72, y: -0.3}}
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping

import numpy as np
import yaml

from robot.errors import CorrigoError
from robot.safety import SafetyLimits
from sim.objects import CATEGORY_DEFAULTS, COLOURS, QUIRKS, TABLE_HALF, TABLE_POS, footprint_circles

SCENE_DIR = Path(__file__).parent / "scenes"
# Where objects may be sampled when no region is given: the reachable table area.
TABLE_REGION = {"x": (0.32, 0.68), "y": (-0.36, 0.36), "yaw": (-math.pi, math.pi)}
# Where an object may stand: on the table both backends build (sim.objects.TABLE_POS/TABLE_HALF), and
# within the arm's reach, the workspace box every arm clips its targets to (robot.safety.SafetyLimits).
_REACH = SafetyLimits()
LIMITS: dict[tuple[str, str], dict[str, tuple[float, float]]] = {  # (problem, what spans the limits): x/y ranges
    ("off the table", "the table spans"):
        {a: (TABLE_POS[k] - TABLE_HALF[k], TABLE_POS[k] + TABLE_HALF[k]) for k, a in enumerate("xy")},
    ("beyond the arm's reach", "the arm reaches"):
        {a: (_REACH.workspace_min[k], _REACH.workspace_max[k]) for k, a in enumerate("xy")},
}
TOP_KEYS = ("name", "objects", "clearance")
OBJECT_KEYS = ("type", "colour", "color", "size", "scale", "pose", "region", "name", "quirks")
POSE_KEYS = ("x", "y", "yaw")


class SceneError(CorrigoError):
    """A scene spec that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ObjectSpec:
    type: str
    colour: tuple[str, ...]  # one or several to choose from; ("any",) = the palette
    size: tuple[float, ...] | None = None
    scale: tuple[float, float] = (1.0, 1.0)
    pose: tuple[float, float, float] | None = None  # x, y, yaw
    region: dict[str, tuple[float, float]] | None = None
    name: str | None = None
    quirks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SceneSpec:
    name: str
    objects: tuple[ObjectSpec, ...]
    clearance_m: float = 0.02


@dataclass
class PlacedObject:
    """One object of a sampled layout: everything a backend needs to build it."""

    name: str
    category: str
    colour: str
    size: tuple[float, ...]  # per-category meaning, see sim.objects
    x: float
    y: float
    yaw: float
    quirks: dict[str, Any] = field(default_factory=dict)


def _where(i: int | None) -> str:
    return "scene" if i is None else f"scene object {i + 1}"


def _number(v: Any) -> bool:
    """A finite int or float (YAML's .nan and .inf are floats; a bool is not a number here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pair(v: Any, what: str, i: int | None) -> tuple[float, float]:
    if _number(v):
        return (float(v), float(v))
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_number(t) for t in v):
        lo, hi = float(v[0]), float(v[1])
        if lo > hi:
            raise SceneError(f"{_where(i)}: {what} range [{lo}, {hi}] is reversed")
        return (lo, hi)
    raise SceneError(f"{_where(i)}: {what} must be a finite number or [low, high], got {v!r}")


def _label(i: int, d: Mapping[str, Any]) -> str:
    typ = d.get("type")
    return f"object {i + 1}" + (f" ({typ})" if isinstance(typ, str) and typ in CATEGORY_DEFAULTS else "")


def _check_keys(d: Mapping[Any, Any], known: Collection[str], where: str) -> None:
    """Refuse keys the loader would ignore, suggesting the one probably meant."""
    extra = sorted(str(k) for k in d if k not in known)
    for k in extra:
        close = difflib.get_close_matches(k, known, n=1)
        if close:
            raise SceneError(f"unknown key {k!r} {where}: did you mean {close[0]!r}?")
    if extra:
        raise SceneError(f"unknown key(s) {extra} {where} (known: {', '.join(sorted(known))})")


def _check_placement(where: str, what: str, ranges: Mapping[str, tuple[float, float]]) -> None:
    """Refuse an object (a pose, or any point of a region) off the table or out of the arm's reach."""
    for (problem, spanned), limits in LIMITS.items():
        for axis, (lo, hi) in ranges.items():
            if axis not in limits:
                continue
            a, b = limits[axis]
            if lo < a or hi > b:
                given = f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g}]"
                spans = ", ".join(f"{k} {v[0]:.2f}..{v[1]:.2f} m" for k, v in limits.items())
                raise SceneError(f"{where}: {what} {axis}={given} m is {problem} ({spanned} {spans})")


def _quirks(q: Any, where: str) -> dict[str, Any]:
    if not isinstance(q, Mapping):
        raise SceneError(f"{where}: quirks must be a mapping")
    for k, v in q.items():
        vals = [v] if k == "mass" else v
        ok = isinstance(vals, (list, tuple)) and len(vals) == (1 if k == "mass" else 3) and all(
            isinstance(t, (int, float)) and math.isfinite(t) for t in vals)
        if not ok or (k == "mass" and v <= 0):
            need = "a positive number (kg)" if k == "mass" else "three numbers (m, in the object's frame)"
            raise SceneError(f"{where}: quirk {k} must be {need}, got {v!r}")
    return dict(q)


def _object_spec(d: Any, i: int) -> ObjectSpec:
    if not isinstance(d, Mapping):
        raise SceneError(f"{_where(i)}: expected a mapping with at least 'type', got {type(d).__name__}")
    label = _label(i, d)
    _check_keys(d, OBJECT_KEYS, f"in {label}")
    for part in ("pose", "region", "quirks"):
        if isinstance(d.get(part), Mapping):
            _check_keys(d[part], QUIRKS if part == "quirks" else POSE_KEYS, f"in {part} of {label}")
    typ = d.get("type")
    if typ not in CATEGORY_DEFAULTS:
        raise SceneError(f"{_where(i)}: unknown type {typ!r} (known: {', '.join(sorted(CATEGORY_DEFAULTS))})")
    colour = d.get("colour", d.get("color", CATEGORY_DEFAULTS[typ]["colour"]))
    colours = (colour,) if isinstance(colour, str) else tuple(colour) if isinstance(colour, list) else None
    if not colours or not all(isinstance(c, str) for c in colours):
        raise SceneError(f"{_where(i)}: colour must be a name, a list of names or 'any', got {colour!r}")
    for c in colours:
        if c != "any" and c not in COLOURS:
            raise SceneError(f"{_where(i)}: unknown colour {c!r} (known: {', '.join(COLOURS)}, any)")
    size = d.get("size")
    if size is not None:
        vals = [size] if isinstance(size, (int, float)) else size
        if not isinstance(vals, list) or not all(isinstance(v, (int, float)) and 0.005 <= v <= 0.6 for v in vals):
            raise SceneError(f"{_where(i)}: size must be metres between 0.005 and 0.6 (a number or a list), got {size!r}")
        size = tuple(float(v) for v in vals)
    scale = _pair(d.get("scale", 1.0), "scale", i)
    if not (0.3 <= scale[0] <= scale[1] <= 3.0):
        raise SceneError(f"{_where(i)}: scale must lie in [0.3, 3.0], got {scale}")
    pose, region = d.get("pose"), d.get("region")
    if pose is not None and region is not None:
        raise SceneError(f"{_where(i)}: give either pose or region, not both")
    pose_t = None
    if pose is not None:
        if not isinstance(pose, Mapping) or "x" not in pose or "y" not in pose:
            raise SceneError(f"{_where(i)}: pose needs x and y (metres) and may give yaw (radians)")
        try:
            pose_t = (float(pose["x"]), float(pose["y"]), float(pose.get("yaw", 0.0)))
        except (TypeError, ValueError):
            raise SceneError(f"{_where(i)}: pose values must be numbers, got {dict(pose)!r}") from None
        if not all(math.isfinite(v) for v in pose_t):
            raise SceneError(f"{_where(i)}: pose values must be finite")
        _check_placement(f"scene {label}", "pose", {"x": (pose_t[0],) * 2, "y": (pose_t[1],) * 2})
    region_t = None
    if region is not None:
        if not isinstance(region, Mapping):
            raise SceneError(f"{_where(i)}: region must map x/y/yaw to [low, high]")
        region_t = {k: _pair(v, f"region.{k}", i) for k, v in region.items()}
        _check_placement(f"scene {label}", "region", region_t)
    quirks = _quirks(d.get("quirks", {}) or {}, f"scene {label}")
    name = d.get("name")
    if name is not None and (not isinstance(name, str) or not name.replace("_", "").isalnum()):
        raise SceneError(f"{_where(i)}: name must be letters, digits and underscores, got {name!r}")
    return ObjectSpec(typ, colours, size, scale, pose_t, region_t, name, dict(quirks))


def scene_from_dict(d: Any, origin: str = "scene") -> SceneSpec:
    if not isinstance(d, Mapping):
        raise SceneError(f"{origin}: top level must be a mapping with 'objects'")
    _check_keys(d, TOP_KEYS, "at the top")
    objs = d.get("objects")
    if not isinstance(objs, list) or not objs:
        raise SceneError(f"{origin}: 'objects' must be a non-empty list")
    clearance = d.get("clearance", 0.02)
    if not isinstance(clearance, (int, float)) or not 0 <= clearance <= 0.2:
        raise SceneError(f"{origin}: clearance must be metres in [0, 0.2]")
    spec = SceneSpec(str(d.get("name", origin)), tuple(_object_spec(o, i) for i, o in enumerate(objs)), float(clearance))
    if sum(o.type == "cabinet" for o in spec.objects) > 1:
        raise SceneError(f"{origin}: at most one cabinet per scene")
    return spec


def load_scene(path_or_name: str | Path) -> SceneSpec:
    """Load a scene YAML by path, or by name from the built-in `sim/scenes/`."""
    p = Path(path_or_name)
    if not p.suffix and not p.exists():
        p = SCENE_DIR / f"{p.name}.yaml"
    if not p.is_file():
        builtin = ", ".join(sorted(f.stem for f in SCENE_DIR.glob("*.yaml")))
        raise SceneError(f"scene {str(path_or_name)!r} not found (built-in scenes: {builtin})")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SceneError(f"{p}{where}: broken YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SceneError(f"{p}: cannot read: {e}") from None
    try:
        return scene_from_dict(data, origin=str(p))
    except SceneError as e:  # name the file in every message
        raise SceneError(str(e) if str(p) in str(e) else f"{p}: {e}") from None


def sample_layout(spec: SceneSpec, seed: int) -> list[PlacedObject]:
    """Choose colours, sizes and poses for every object, deterministically per seed."""
    rng = np.random.default_rng(seed)
    placed: list[PlacedObject] = []
    used: dict[str, set[str]] = {}
    footprints: list[tuple[float, float, float]] = []
    names: dict[str, int] = {}
    # Fixed poses first so sampled objects avoid them, then the largest objects.
    def big(k: int) -> float:
        o = spec.objects[k]
        return max(r for _, _, r in footprint_circles(o.type, o.size or tuple(CATEGORY_DEFAULTS[o.type]["size"]), 0, 0, 0))

    order = sorted(range(len(spec.objects)), key=lambda k: (spec.objects[k].pose is None, -big(k)))
    chosen: dict[int, PlacedObject] = {}
    for k in order:
        o = spec.objects[k]
        taken = used.setdefault(o.type, set())
        options = list(COLOURS) if o.colour == ("any",) else [c for c in o.colour if c != "any"]
        free = [c for c in options if c not in taken] or options
        colour = free[int(rng.integers(len(free)))] if len(free) > 1 else free[0]
        taken.add(colour)
        base = o.size or tuple(CATEGORY_DEFAULTS[o.type]["size"])
        s = float(rng.uniform(*o.scale)) if o.scale[0] != o.scale[1] else o.scale[0]
        size = tuple(v * s for v in base)
        if o.pose is not None:
            x, y, yaw = o.pose
            circles = footprint_circles(o.type, size, x, y, yaw)
        else:
            reg = {**TABLE_REGION, **(o.region or {})}
            for _ in range(1000):
                x = float(rng.uniform(*reg["x"]))
                y = float(rng.uniform(*reg["y"]))
                yaw = float(rng.uniform(*reg["yaw"]))
                circles = footprint_circles(o.type, size, x, y, yaw)
                if all(
                    math.hypot(cx - fx, cy - fy) >= cr + fr + spec.clearance_m
                    for cx, cy, cr in circles
                    for fx, fy, fr in footprints
                ):
                    break
            else:
                raise SceneError(f"scene {spec.name!r}: no free place for object {k + 1} ({o.type}) after 1000 tries; enlarge its region")
        footprints.extend(circles)
        base_name = o.name or (f"{colour}_{o.type}" if colour else o.type)
        names[base_name] = names.get(base_name, 0) + 1
        name = base_name if names[base_name] == 1 else f"{base_name}_{names[base_name]}"
        chosen[k] = PlacedObject(name, o.type, colour, size, x, y, yaw, dict(o.quirks))
    placed = [chosen[k] for k in range(len(spec.objects))]
    return placed
