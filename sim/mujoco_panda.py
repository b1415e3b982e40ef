"""The Franka Panda as MJCF, converted from the URDF that ships with `pybullet_data`.

Same kinematics (joint origins, axes, limits), masses, centres of mass and collision
hulls as the PyBullet backend loads; nothing is downloaded. Generated once per
process (`panda_xml()`); MuJoCo caches the parsed meshes across recompiles.
"""
from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet_data

PANDA_DIR = Path(pybullet_data.getDataPath()) / "franka_panda"
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
FINGER_LINKS = ("panda_leftfinger", "panda_rightfinger")
EE_LINK = "panda_grasptarget"  # 0.105 m below the hand along the tool axis, between the fingertips
EE_SITE = "ee"
ROBOT_ROOT = "panda_link0"
ROBOT_RGBA = (0.92, 0.92, 0.92, 1.0)

# Friction and contact. Bullet multiplies the two coefficients of a contact; MuJoCo
# uses the geom with the higher `priority` (the max when equal). Links (0.5) share
# the table's priority so link-object contacts get 0.5 as in Bullet (0.5 * 1.0);
# the fingers (1.5) outrank everything: finger-object 1.5 as in Bullet (1.5 * 1.0).
LINK_FRICTION, LINK_PRIORITY = 0.5, 1
FINGER_FRICTION, FINGER_PRIORITY = 1.5, 2
FINGER_SPIN_FRICTION = 0.01  # metres; PyBullet sets spinningFriction 0.01 on the fingers
# MuJoCo's default contact is soft for light objects: a 40 N squeeze sank the pads
# ~5 mm into a 60 g block (Bullet: 0.2 mm). Nearly hard contacts (solimp 0.99) drop the
# compliance the URDF gives the fingertips (<contact> stiffness 3e4 N/m, which Bullet
# applies) and did slightly worse on the tasks. This middle setting leaves ~0.8 mm.
FINGER_SOLREF = "0.01 1"
FINGER_SOLIMP = "0.95 0.99 0.002"

# Actuation. Bullet's position motors are stiff velocity constraints (gain 0.2 per
# step, force-limited by the URDF effort); here PD servos on top of gravity
# compensation, critically damped, with the URDF efforts as force limits.
ARM_KP = (4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0)
ARM_ARMATURE = 0.1
ARM_DAMPING = 1.0
FINGER_FORCE = 40.0  # N per finger, as PyBullet's finger motors
FINGER_KP = 4000.0  # saturates at FINGER_FORCE once a finger is 1 cm from its target
FINGER_KV = 330.0  # kp/kv ~ 12/s: the closing speed of PyBullet's finger motors (gain 0.05)

# Collision filtering: the robot does not collide with itself (PyBullet loads the
# URDF without self-collision), but with everything else (contype 1, conaffinity 3).
ROBOT_CONTYPE, ROBOT_CONAFFINITY = 2, 1

MeshRef = tuple[str, tuple[float, ...], tuple[float, ...]]  # (file relative to PANDA_DIR, xyz, rpy)


@dataclass
class _Link:
    name: str
    mass: float
    com: tuple[float, ...]
    visual: list[MeshRef]
    collision: list[MeshRef]


@dataclass
class _Joint:
    name: str
    kind: str  # revolute, prismatic, fixed
    parent: str
    child: str
    xyz: tuple[float, ...]
    rpy: tuple[float, ...]
    axis: tuple[float, ...]
    lower: float
    upper: float
    effort: float


@dataclass(frozen=True)
class PandaXML:
    assets: str
    defaults: str
    body: str
    actuators: str
    lower: tuple[float, ...]  # arm joint limits, radians
    upper: tuple[float, ...]


def rpy_to_wxyz(r: float, p: float, y: float) -> tuple[float, float, float, float]:
    """URDF fixed-axis roll-pitch-yaw (R = Rz(y) Ry(p) Rx(r)) as a wxyz quaternion."""
    cr, sr = math.cos(r / 2), math.sin(r / 2)
    cp, sp = math.cos(p / 2), math.sin(p / 2)
    cy, sy = math.cos(y / 2), math.sin(y / 2)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


def fmt(values: float | tuple[float, ...] | list[float] | np.ndarray) -> str:
    """Numbers as MJCF attribute text."""
    if isinstance(values, (int, float)):
        return f"{float(values):.9g}"
    return " ".join(f"{float(v):.9g}" for v in values)


def box_inertia(mass: float, full: np.ndarray | tuple[float, ...]) -> tuple[float, float, float]:
    """Diagonal inertia of a solid box with full extents `full`: Bullet's approximation."""
    x, y, z = (max(float(v), 1e-3) for v in full)
    return (mass / 12 * (y * y + z * z), mass / 12 * (x * x + z * z), mass / 12 * (x * x + y * y))


# ----- URDF parsing -----
def _floats(s: str | None, default: tuple[float, ...] = (0.0, 0.0, 0.0)) -> tuple[float, ...]:
    return tuple(float(v) for v in s.split()) if s else default


def _origin(el: ET.Element | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    o = el.find("origin") if el is not None else None
    return (_floats(o.get("xyz")), _floats(o.get("rpy"))) if o is not None else ((0.0,) * 3, (0.0,) * 3)


def _meshes(link: ET.Element, tag: str) -> list[MeshRef]:
    out = []
    for g in link.findall(tag):
        mesh = g.find("geometry/mesh")
        if mesh is not None:
            out.append((mesh.get("filename", "").replace("package://", ""), *_origin(g)))
    return out


def _parse_link(el: ET.Element) -> _Link:
    inertial = el.find("inertial")
    mass_el = inertial.find("mass") if inertial is not None else None
    mass = float(mass_el.get("value", 0)) if mass_el is not None else 0.0
    return _Link(el.get("name", ""), mass, _origin(inertial)[0], _meshes(el, "visual"), _meshes(el, "collision"))


def _parse_joint(el: ET.Element) -> _Joint:
    lim, ax = el.find("limit"), el.find("axis")
    parent, child = el.find("parent"), el.find("child")

    def limit(key: str) -> float:
        return float(lim.get(key, 0)) if lim is not None else 0.0

    return _Joint(
        el.get("name", ""), el.get("type", "fixed"),
        parent.get("link", "") if parent is not None else "", child.get("link", "") if child is not None else "",
        *_origin(el), _floats(ax.get("xyz") if ax is not None else None, (0.0, 0.0, 1.0)),
        limit("lower"), limit("upper"), limit("effort"),
    )


def _mesh_extent(path: Path) -> np.ndarray:
    v = np.array([[float(t) for t in line.split()[1:4]] for line in path.read_text().splitlines() if line.startswith("v ")])
    return v.max(axis=0) - v.min(axis=0)


# ----- MJCF generation -----
class _Converter:
    def __init__(self, links: dict[str, _Link], joints: list[_Joint]) -> None:
        self.links = links
        self.children: dict[str, list[_Joint]] = {}
        for j in joints:
            self.children.setdefault(j.parent, []).append(j)
        self.meshes: dict[str, str] = {}  # mesh asset name -> file

    def link_xml(self, link: _Link, indent: str) -> list[str]:
        lines = []
        if link.mass > 0:
            # Bullet ignores the URDF's placeholder inertias (0.1 everywhere) and uses the
            # collision shape's bounding box; so do we.
            extent = _mesh_extent(PANDA_DIR / link.collision[0][0]) if link.collision else np.full(3, 0.05)
            inertia = fmt(box_inertia(link.mass, extent))
            lines.append(f'{indent}<inertial pos="{fmt(link.com)}" mass="{fmt(link.mass)}" diaginertia="{inertia}"/>')
        for kind, refs in (("vis", link.visual), ("col", link.collision)):
            cls = "finger" if kind == "col" and link.name in FINGER_LINKS else kind
            for file, xyz, rpy in refs:
                name = f"{kind}_{Path(file).stem}"
                self.meshes[name] = file
                lines.append(f'{indent}<geom class="{cls}" mesh="{name}" pos="{fmt(xyz)}" quat="{fmt(rpy_to_wxyz(*rpy))}"/>')
        if link.name == EE_LINK:
            lines.append(f'{indent}<site name="{EE_SITE}" size="0.005" rgba="1 0 0 0"/>')
        for j in self.children.get(link.name, []):
            # gravcomp: the servos only fight inertia, like Bullet's motor constraints do.
            lines.append(f'{indent}<body name="{j.child}" pos="{fmt(j.xyz)}" quat="{fmt(rpy_to_wxyz(*j.rpy))}" gravcomp="1">')
            if j.kind in ("revolute", "prismatic"):
                typ, cls = ("hinge", "arm") if j.kind == "revolute" else ("slide", "fingerjoint")
                lines.append(f'{indent}  <joint name="{j.name}" class="{cls}" type="{typ}" axis="{fmt(j.axis)}"'
                             f' range="{fmt((j.lower, j.upper))}"/>')
            lines += self.link_xml(self.links[j.child], indent + "  ")
            lines.append(f"{indent}</body>")
        return lines


def _actuators(arm: list[_Joint]) -> str:
    acts = [
        f'<position name="act_{j.name}" joint="{j.name}" kp="{fmt(kp)}" dampratio="1"'
        f' ctrlrange="{fmt((j.lower, j.upper))}" forcerange="{fmt((-j.effort, j.effort))}"/>'
        for j, kp in zip(arm, ARM_KP)
    ]
    acts += [
        f'<position name="act_{n}" joint="{n}" kp="{fmt(FINGER_KP)}" kv="{fmt(FINGER_KV)}"'
        f' ctrlrange="0 0.04" forcerange="{fmt((-FINGER_FORCE, FINGER_FORCE))}"/>'
        for n in FINGER_JOINTS
    ]
    return "\n".join(acts)


_DEFAULTS = f"""<default class="panda">
  <joint armature="{ARM_ARMATURE}" damping="{ARM_DAMPING}"/>
  <default class="arm"/>
  <default class="fingerjoint"><joint armature="0.01" damping="0"/></default>
  <default class="vis"><geom type="mesh" group="2" contype="0" conaffinity="0" density="0" rgba="{fmt(ROBOT_RGBA)}"/></default>
  <default class="col"><geom type="mesh" group="3" contype="{ROBOT_CONTYPE}" conaffinity="{ROBOT_CONAFFINITY}" density="0"
    priority="{LINK_PRIORITY}" friction="{LINK_FRICTION} 0.005 0.0001"/></default>
  <default class="finger"><geom type="mesh" group="3" contype="{ROBOT_CONTYPE}" conaffinity="{ROBOT_CONAFFINITY}" density="0"
    condim="4" priority="{FINGER_PRIORITY}" friction="{FINGER_FRICTION} {FINGER_SPIN_FRICTION} 0.0001"
    solref="{FINGER_SOLREF}" solimp="{FINGER_SOLIMP}"/></default>
</default>"""


@functools.lru_cache(maxsize=1)
def panda_xml() -> PandaXML:
    """The Panda's MJCF fragments: mesh assets, default classes, body tree, actuators."""
    root = ET.parse(PANDA_DIR / "panda.urdf").getroot()
    links = {link.name: link for link in map(_parse_link, root.findall("link"))}
    joints = [_parse_joint(el) for el in root.findall("joint")]
    conv = _Converter(links, joints)
    body = "\n".join([f'<body name="{ROBOT_ROOT}" childclass="panda">', *conv.link_xml(links[ROBOT_ROOT], "  "), "</body>"])
    assets = "\n".join(f'<mesh name="{n}" file="{PANDA_DIR / f}"/>' for n, f in sorted(conv.meshes.items()))
    by_name = {j.name: j for j in joints}
    arm = [by_name[n] for n in ARM_JOINTS]
    return PandaXML(assets, _DEFAULTS, body, _actuators(arm), tuple(j.lower for j in arm), tuple(j.upper for j in arm))
