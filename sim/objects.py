"""Backend-neutral object models: each object is a few primitive geoms.

PyBullet and MuJoCo both build from these, so a bowl is the same bowl in both.
Body frames have their origin at the bottom centre of the object; +x is the
object's forward axis (a mug's handle, a banana's length, a cabinet's back).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot.vocab import CATEGORY_GROUP

COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.12, 1),
    "green": (0.15, 0.7, 0.2, 1),
    "blue": (0.15, 0.3, 0.85, 1),
    "yellow": (0.95, 0.85, 0.1, 1),
    "purple": (0.55, 0.2, 0.7, 1),
    "orange": (0.95, 0.5, 0.1, 1),
    "pink": (0.95, 0.5, 0.7, 1),
    "white": (0.92, 0.92, 0.92, 1),
    "black": (0.08, 0.08, 0.08, 1),
    "brown": (0.5, 0.3, 0.15, 1),
    "grey": (0.5, 0.5, 0.5, 1),
    "cyan": (0.1, 0.8, 0.85, 1),
}

MAX_GEOMS = 16

# The table both backends build: a box whose top surface is at z = 0 (base frame).
TABLE_HALF = (0.55, 0.75, 0.02)
TABLE_POS = (0.45, 0.0, -0.02)
TABLE_RGBA = (0.78, 0.68, 0.52, 1.0)

# size meaning per category: block (edge) or (x, y, z); bowl/plate (diameter, height);
# basket (length, width, height); mug/cup (diameter, height); apple/orange/lemon
# (diameter); banana (length, diameter); cabinet (depth, width, height).
CATEGORY_DEFAULTS: dict[str, dict[str, Any]] = {
    "block": {"size": (0.04,), "colour": "any"},
    "bowl": {"size": (0.15, 0.05), "colour": "any"},
    "plate": {"size": (0.16, 0.015), "colour": "white"},
    "basket": {"size": (0.18, 0.24, 0.07), "colour": "brown"},
    "mug": {"size": (0.06, 0.08), "colour": "any"},
    "cup": {"size": (0.055, 0.09), "colour": "any"},
    "apple": {"size": (0.06,), "colour": "red"},
    "orange": {"size": (0.062,), "colour": "orange"},
    "lemon": {"size": (0.05,), "colour": "yellow"},
    "banana": {"size": (0.14, 0.032), "colour": "yellow"},
    "cabinet": {"size": (0.26, 0.32, 0.16), "colour": "white"},
    # A body too wide for the gripper: it can only be picked by its handle, off-centre.
    "jug": {"size": (0.10, 0.12), "colour": "any"},
}


@dataclass
class Geom:
    shape: str  # box: half extents; cylinder: (radius, half height); sphere: (radius,); capsule: (radius, half length)
    size: tuple[float, ...]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # xyzw; capsules/cylinders run along local z
    rgba: tuple[float, float, float, float] | None = None  # None: the object's colour


@dataclass
class Body:
    geoms: list[Geom]
    mass: float
    com: tuple[float, float, float] = (0.0, 0.0, 0.0)  # centre of mass in the body frame


@dataclass
class Drawer:
    """A drawer sliding out of a cabinet along the cabinet's -x axis."""

    body: Body
    origin: tuple[float, float, float]  # drawer frame in the cabinet frame (closed)
    travel: float  # metres it can open
    handle: tuple[float, float, float]  # handle grasp point, drawer frame
    interior: tuple[float, float, float]  # centre of the interior floor, drawer frame
    interior_half: tuple[float, float]  # half extents of the interior (x, y)
    rim: float = 0.0  # height of the drawer's walls above its frame


@dataclass
class ObjectModel:
    name: str
    category: str
    colour: str
    rgba: tuple[float, float, float, float]
    body: Body
    extents: tuple[float, float, float]  # full size x, y, z
    fixed: bool = False
    friction: float = 1.0
    rolling_friction: float = 0.0
    drawer: Drawer | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def geom_volume(g: Geom) -> float:
    if g.shape == "box":
        return 8.0 * g.size[0] * g.size[1] * g.size[2]
    if g.shape == "cylinder":
        return math.pi * g.size[0] ** 2 * 2.0 * g.size[1]
    if g.shape == "sphere":
        return 4.0 / 3.0 * math.pi * g.size[0] ** 3
    return math.pi * g.size[0] ** 2 * 2.0 * g.size[1] + 4.0 / 3.0 * math.pi * g.size[0] ** 3  # capsule


def centroid(geoms: list[Geom]) -> tuple[float, float, float]:
    """Volume-weighted centre of a body's geoms (uniform density)."""
    vols = np.array([geom_volume(g) for g in geoms])
    pos = np.array([g.pos for g in geoms], dtype=float)
    c = (vols[:, None] * pos).sum(0) / max(float(vols.sum()), 1e-12)
    return (float(c[0]), float(c[1]), float(c[2]))


def footprint_circles(category: str, size: tuple[float, ...], x: float, y: float, yaw: float) -> list[tuple[float, float, float]]:
    """Circles (x, y, r) covering an object's footprint, including a drawer's sweep."""
    c, s = math.cos(yaw), math.sin(yaw)

    def at(lx: float, ly: float, r: float) -> tuple[float, float, float]:
        return (x + c * lx - s * ly, y + s * lx + c * ly, r)

    if category == "block":
        e = size if len(size) == 3 else (size[0],) * 3
        return [at(0, 0, 0.5 * math.hypot(e[0], e[1]))]
    if category in ("bowl", "plate", "apple", "orange", "lemon", "cup"):
        return [at(0, 0, size[0] / 2)]
    if category == "jug":
        return [at(0.01, 0, size[0] / 2 + 0.03)]
    if category == "mug":
        return [at(0.006, 0, size[0] / 2 + 0.018)]
    if category == "banana":
        r = size[0] / 4
        return [at(-r, 0, r), at(r, 0, r)]
    if category == "basket":
        lx, ly = (size + (0.18, 0.24))[:2]
        r = min(lx, ly) / 2 * 1.2
        n = max(1, math.ceil(max(lx, ly) / min(lx, ly)))
        along_x = lx >= ly
        span = max(lx, ly) / 2 - min(lx, ly) / 2
        pts = [(-span + 2 * span * k / max(n - 1, 1)) if n > 1 else 0.0 for k in range(n)]
        return [at(p, 0, r) if along_x else at(0, p, r) for p in pts]
    if category == "cabinet":
        dx, wy = (size + (0.26, 0.32))[:2]
        sweep = 0.30  # drawer travel plus handle standoff, in front of the carcass
        return [at(0, 0, 0.5 * math.hypot(dx, wy)), at(-dx / 2 - sweep / 2, 0, max(wy / 2, sweep / 2))]
    raise KeyError(category)


def _ring(radius: float, height: float, thickness: float, n: int, z0: float) -> list[Geom]:
    """Vertical walls approximating a cylinder shell (concave shapes as convex parts)."""
    seg = 2 * radius * math.tan(math.pi / n) + 0.002
    out = []
    for k in range(n):
        a = 2 * math.pi * k / n
        out.append(
            Geom(
                "box",
                (thickness / 2, seg / 2, height / 2),
                (radius * math.cos(a), radius * math.sin(a), z0 + height / 2),
                (0.0, 0.0, math.sin(a / 2), math.cos(a / 2)),
            )
        )
    return out


def _open_box(lx: float, ly: float, h: float, t: float, floor: float) -> list[Geom]:
    """A tray: floor plus four walls, origin at the bottom centre."""
    return [
        Geom("box", (lx / 2, ly / 2, floor / 2), (0, 0, floor / 2)),
        Geom("box", (t / 2, ly / 2, h / 2), (lx / 2 - t / 2, 0, h / 2)),
        Geom("box", (t / 2, ly / 2, h / 2), (-lx / 2 + t / 2, 0, h / 2)),
        Geom("box", (lx / 2 - t, t / 2, h / 2), (0, ly / 2 - t / 2, h / 2)),
        Geom("box", (lx / 2 - t, t / 2, h / 2), (0, -ly / 2 + t / 2, h / 2)),
    ]


_ALONG_X = (0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4))  # local z -> x


QUIRKS = ("com_offset", "grasp_offset", "mass")  # what build_model reads from a scene's `quirks`


def build_model(name: str, category: str, colour: str, size: tuple[float, ...], quirks: dict[str, Any] | None = None) -> ObjectModel:
    quirks = quirks or {}
    rgba = COLOURS.get(colour, COLOURS["grey"])
    group = CATEGORY_GROUP[category]
    attrs: dict[str, Any] = {"group": group, "graspable": True, "container": False, "yaw_symmetry": 0.0}
    fixed, friction, rolling, drawer = False, 1.0, 0.0, None
    if category == "block":
        e = size if len(size) == 3 else (size[0],) * 3
        body = Body([Geom("box", (e[0] / 2, e[1] / 2, e[2] / 2), (0, 0, e[2] / 2))], mass=0.06)
        extents = (e[0], e[1], e[2])
        attrs.update(grasp_height=e[2] / 2, yaw_symmetry=math.pi / 2 if abs(e[0] - e[1]) < 1e-6 else math.pi)
    elif category == "bowl":
        d, h = size[0], (size[1] if len(size) > 1 else 0.05)
        body = Body([Geom("cylinder", (d / 2, 0.005), (0, 0, 0.005))] + _ring(d / 2 - 0.005, h, 0.01, 12, 0.0), mass=0.35)
        extents = (d, d, h)
        attrs.update(graspable=False, container=True, floor=0.01, inner_radius=d / 2 - 0.012, rim_height=h)
    elif category == "plate":
        d, h = size[0], (size[1] if len(size) > 1 else 0.015)
        body = Body([Geom("cylinder", (d / 2, h / 2), (0, 0, h / 2))], mass=0.3)
        extents = (d, d, h)
        attrs.update(graspable=False, container=True, floor=h, inner_radius=d / 2 - 0.01, rim_height=h)
    elif category == "basket":
        lx, ly, h = (size + (0.18, 0.24, 0.07)[len(size):])[:3]
        body = Body(_open_box(lx, ly, h, 0.01, 0.01), mass=0.6)
        extents = (lx, ly, h)
        attrs.update(graspable=False, container=True, floor=0.01, inner_half=(lx / 2 - 0.012, ly / 2 - 0.012), rim_height=h)
    elif category in ("mug", "cup"):
        d, h = size[0], (size[1] if len(size) > 1 else 0.08)
        geoms = [Geom("cylinder", (d / 2, h / 2), (0, 0, h / 2))]
        if category == "mug":
            geoms.append(Geom("box", (0.012, 0.006, h * 0.3), (d / 2 + 0.010, 0, h * 0.55)))
        body = Body(geoms, mass=0.12)
        extents = (d + (0.024 if category == "mug" else 0.0), d, h)
        attrs.update(grasp_height=max(h - 0.025, h / 2), yaw_symmetry=math.pi if category == "mug" else 0.0)
    elif category == "jug":
        d, h = size[0], (size[1] if len(size) > 1 else 0.12)
        handle_len = 0.04
        body = Body([
            Geom("cylinder", (d / 2, h / 2), (0, 0, h / 2)),
            # handle: a fin along +x, thin across y, overlapping the body by 2 mm
            Geom("box", (handle_len / 2, 0.006, h * 0.3), (d / 2 + handle_len / 2 - 0.002, 0, h * 0.55)),
        ], mass=0.12)
        extents = (d + handle_len, d, h)
        # The bounding-box centre, where a naive grasp aims, is on the body: too wide to close on.
        attrs.update(grasp_height=h * 0.7, yaw_symmetry=0.0, handle_offset=[d / 2 + handle_len * 0.65, 0.0, 0.0])
    elif category in ("apple", "orange", "lemon"):
        d = size[0]
        body = Body([Geom("sphere", (d / 2,), (0, 0, d / 2))], mass=0.08)
        extents = (d, d, d)
        rolling = 0.002
        attrs.update(grasp_height=d / 2, yaw_symmetry=0.0)
    elif category == "banana":
        length, d = size[0], (size[1] if len(size) > 1 else 0.032)
        body = Body([Geom("capsule", (d / 2, max(length / 2 - d / 2, 0.005)), (0, 0, d / 2), _ALONG_X)], mass=0.1)
        extents = (length, d, d)
        rolling = 0.002
        attrs.update(grasp_height=d / 2, yaw_symmetry=math.pi)
    elif category == "cabinet":
        body, drawer, extents = _cabinet(size)
        fixed = True
        # the drawer's walls, not the carcass, are what the fingers must clear over the opening
        attrs.update(graspable=False, container=True, rim_height=drawer.origin[2] + drawer.rim)
    else:
        raise KeyError(category)
    # Mass sits at the geometric centroid unless a quirk moves it (a heavier side).
    centre = centroid(body.geoms)
    off = quirks.get("com_offset", (0.0, 0.0, 0.0))
    body.com = (centre[0] + float(off[0]), centre[1] + float(off[1]), centre[2] + float(off[2]))
    if drawer is not None:
        drawer.body.com = centroid(drawer.body.geoms)
    if "mass" in quirks:
        body.mass = float(quirks["mass"])
    if "grasp_offset" in quirks:  # a true grasp point away from the geometric centre (object frame)
        attrs["true_grasp_offset"] = [float(v) for v in quirks["grasp_offset"]]
    # PyBullet's compound visual shapes crash beyond 16 parts; keep every body under it.
    assert len(body.geoms) <= MAX_GEOMS and (drawer is None or len(drawer.body.geoms) <= MAX_GEOMS)
    return ObjectModel(name, category, colour, rgba, body, extents, fixed, friction, rolling, drawer, attrs)


def _cabinet(size: tuple[float, ...]) -> tuple[Body, Drawer, tuple[float, float, float]]:
    dx, wy, hz = (size + (0.26, 0.32, 0.16)[len(size):])[:3]
    t = 0.012
    carcass = [
        Geom("box", (dx / 2, wy / 2, t / 2), (0, 0, t / 2)),  # bottom
        Geom("box", (dx / 2, wy / 2, t / 2), (0, 0, hz - t / 2)),  # top
        Geom("box", (dx / 2, t / 2, hz / 2), (0, wy / 2 - t / 2, hz / 2)),  # left side
        Geom("box", (dx / 2, t / 2, hz / 2), (0, -wy / 2 + t / 2, hz / 2)),  # right side
        Geom("box", (t / 2, wy / 2, hz / 2), (dx / 2 - t / 2, 0, hz / 2)),  # back
    ]
    # Drawer: an open box that fits inside the carcass with a little play.
    ddx, dwy, dh = dx - 2 * t - 0.01, wy - 2 * t - 0.01, hz - 2 * t - 0.012
    grey = COLOURS["grey"]
    drawer_geoms = [
        Geom("box", (ddx / 2, dwy / 2, 0.005), (0, 0, 0.005)),  # floor
        Geom("box", (0.006, dwy / 2 + 0.004, dh / 2 + 0.004), (-ddx / 2 - 0.006, 0, dh / 2)),  # front panel
        Geom("box", (0.005, dwy / 2, dh / 2), (ddx / 2 - 0.005, 0, dh / 2)),  # back
        Geom("box", (ddx / 2, 0.005, dh / 2), (0, dwy / 2 - 0.005, dh / 2)),
        Geom("box", (ddx / 2, 0.005, dh / 2), (0, -dwy / 2 + 0.005, dh / 2)),
    ]
    # Handle: a fin sticking out of the front panel toward the robot, thin across y, so the
    # fingers pinch it closing along y and the (20 cm wide) hand stays parallel to and clear
    # of the cabinet front.
    fin_len = 0.06
    front = -ddx / 2 - 0.012
    handle_z = dh * 0.6
    drawer_geoms.append(Geom("box", (fin_len / 2, 0.006, 0.02), (front - fin_len / 2, 0, handle_z), rgba=grey))
    hx = front - fin_len + 0.018  # grasp point: near the fin's tip
    drawer = Drawer(
        body=Body(drawer_geoms, mass=0.4),
        origin=(0.0, 0.0, t + 0.004),
        travel=min(0.18, ddx * 0.85),
        handle=(hx, 0.0, handle_z),
        interior=(0.0, 0.0, 0.01),
        interior_half=(ddx / 2 - 0.012, dwy / 2 - 0.012),
        rim=dh,
    )
    return Body(carcass, mass=5.0), drawer, (dx, wy, hz)
