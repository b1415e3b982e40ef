"""MJCF of a whole MuJoCo world: the Panda, the table, and a laid-out scene's objects.

Objects are built from the backend-neutral `sim.objects` models placed by
`sim.scene.sample_layout`, so a seed gives the same world as in PyBullet.
"""
from __future__ import annotations

import math

import numpy as np

from sim.arm import HOME_JOINTS
from sim.mujoco_panda import box_inertia, fmt, panda_xml
from sim.objects import TABLE_HALF, TABLE_POS, TABLE_RGBA, Body, Geom, ObjectModel
from sim.scene import PlacedObject

BASE_LIFT = 0.0005  # objects start this far above the table, as in PyBullet

# Friction (see sim.mujoco_panda for how priorities stand in for Bullet's products):
# the table (0.5) and drawer (0.6) outrank objects (1.0), giving object-table 0.5 and
# object-drawer 0.6 as Bullet's 1.0 * 0.5 and 1.0 * 0.6.
TABLE_FRICTION, TABLE_PRIORITY = 0.5, 1
DRAWER_FRICTION, DRAWER_PRIORITY = 0.6, 1
SPIN_FRICTION = 0.002  # Bullet's spinningFriction on objects (metres)
ROLL_FRICTION = 0.002  # Bullet's rollingFriction on fruit (metres)
DRAWER_DAMPING = 0.3  # N s/m: PyBullet's linearDamping 0.5 on a 0.4 kg drawer
DRAWER_FRICTIONLOSS = 2.0  # N: PyBullet's zero-velocity motor with force 2 on the slide
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3  # collide with each other and with the robot (contype 2)


def wxyz(q_xyzw: tuple[float, ...] | np.ndarray) -> tuple[float, float, float, float]:
    """MuJoCo quaternions are (w, x, y, z); the project's are (x, y, z, w)."""
    return (float(q_xyzw[3]), float(q_xyzw[0]), float(q_xyzw[1]), float(q_xyzw[2]))


def _yaw_wxyz(yaw: float) -> tuple[float, float, float, float]:
    return (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))


def _geom_xml(g: Geom, rgba: tuple[float, ...], extra: str) -> str:
    # sim.objects sizes already follow MuJoCo's conventions: box half extents, cylinder
    # (radius, half height), capsule (radius, half length), sphere (radius,).
    return (
        f'<geom type="{g.shape}" size="{fmt(g.size)}" pos="{fmt(g.pos)}" quat="{fmt(wxyz(g.quat))}"'
        f' rgba="{fmt(g.rgba or rgba)}" {extra}/>'
    )


def _extent(body: Body) -> np.ndarray:
    """Bounding-box size of a body's geoms (rotations ignored: a generous bound)."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for g in body.geoms:
        half = np.asarray(g.size) if g.shape == "box" else np.full(3, g.size[0] + (g.size[1] if len(g.size) > 1 else 0.0))
        lo, hi = np.minimum(lo, np.asarray(g.pos) - half), np.maximum(hi, np.asarray(g.pos) + half)
    return hi - lo


def _inertial_xml(body: Body, extent: tuple[float, ...] | np.ndarray) -> str:
    # Like Bullet's compound shapes: a box inertia from the bounding box, about the COM.
    return f'<inertial pos="{fmt(body.com)}" mass="{fmt(body.mass)}" diaginertia="{fmt(box_inertia(body.mass, extent))}"/>'


def _drawer_xml(k: int, m: ObjectModel, indent: str) -> list[str]:
    """The drawer: a child body sliding along the cabinet's -x, range [0, travel]."""
    assert m.drawer is not None
    d = m.drawer
    extra = f'friction="{fmt(DRAWER_FRICTION)} {fmt(SPIN_FRICTION)} 0.0001" priority="{DRAWER_PRIORITY}" condim="4"'
    return [
        f'{indent}<body name="obj{k}_drawer" pos="{fmt(d.origin)}">',
        f'{indent}  <joint name="obj{k}_slide" type="slide" axis="-1 0 0" range="0 {fmt(d.travel)}"'
        f' damping="{fmt(DRAWER_DAMPING)}" frictionloss="{fmt(DRAWER_FRICTIONLOSS)}" armature="0.01"/>',
        f"{indent}  {_inertial_xml(d.body, _extent(d.body))}",
        *(f"{indent}  {_geom_xml(g, m.rgba, extra)}" for g in d.body.geoms),
        f"{indent}</body>",
    ]


def object_xml(k: int, m: ObjectModel, p: PlacedObject) -> str:
    """Object k as body `obj{k}`: frame at its bottom centre, yawed, free unless fixed."""
    rolls = m.rolling_friction > 0
    friction = fmt((m.friction, SPIN_FRICTION, ROLL_FRICTION if rolls else 1e-4))
    extra = f'friction="{friction}" condim="{6 if rolls else 4}"'
    lines = [f'<body name="obj{k}" pos="{fmt((p.x, p.y, BASE_LIFT))}" quat="{fmt(_yaw_wxyz(p.yaw))}">']
    if not m.fixed:
        lines.append(f'  <freejoint name="obj{k}_free"/>')
    lines.append(f"  {_inertial_xml(m.body, m.extents)}")
    lines += [f"  {_geom_xml(g, m.rgba, extra)}" for g in m.body.geoms]
    if m.drawer is not None:
        lines += _drawer_xml(k, m, "  ")
    lines.append("</body>")
    return "\n".join(lines)


def _excludes(models: list[ObjectModel]) -> str:
    # A drawer never touches its own cabinet, as in PyBullet (no self-collision within a
    # multibody). MuJoCo's parent-child filter does not apply: the cabinet is welded to the world.
    return "\n".join(f'<exclude body1="obj{k}" body2="obj{k}_drawer"/>' for k, m in enumerate(models) if m.drawer is not None)


def _home_qpos(models: list[ObjectModel], layout: list[PlacedObject]) -> str:
    """qpos of the 'home' keyframe: arm at HOME_JOINTS, fingers open, objects as laid out."""
    parts = [fmt(HOME_JOINTS), "0.04 0.04"]
    for m, p in zip(models, layout):
        if not m.fixed:
            parts.append(fmt((p.x, p.y, BASE_LIFT, *_yaw_wxyz(p.yaw))))
        if m.drawer is not None:
            parts.append("0")
    return " ".join(parts)


def scene_xml(
    models: list[ObjectModel], layout: list[PlacedObject], physics_hz: float,
    cam_w: int, cam_h: int, near: float, far: float,
) -> str:
    """The whole world as one MJCF string (the arm part is generated once per process)."""
    arm = panda_xml()
    objects = "\n".join(object_xml(k, m, p) for k, (m, p) in enumerate(zip(models, layout)))
    return f"""<mujoco model="corrigo">
<compiler angle="radian" autolimits="true"/>
<!-- extent 1 makes the cameras' znear/zfar absolute metres -->
<statistic extent="1" center="0.45 0 0.2"/>
<option timestep="{fmt(1.0 / physics_hz)}" integrator="implicitfast" cone="elliptic" impratio="10"/>
<visual>
  <global offwidth="{cam_w}" offheight="{cam_h}"/>
  <map znear="{fmt(near)}" zfar="{fmt(far)}"/>
  <quality shadowsize="0"/>
  <headlight ambient="0.3 0.3 0.3" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
</visual>
<default>
  <!-- geoms keep their own rgba; the material only makes them less shiny -->
  <geom contype="{WORLD_CONTYPE}" conaffinity="{WORLD_CONAFFINITY}" material="matte"/>
  {arm.defaults}
</default>
<asset>
<material name="matte" specular="0.1" shininess="0.1"/>
<!-- a white background, like PyBullet's -->
<texture name="sky" type="skybox" builtin="flat" rgb1="1 1 1" rgb2="1 1 1" width="8" height="8"/>
{arm.assets}
</asset>
<worldbody>
<light name="top" pos="0.4 0 1.5" dir="0.2 0 -1" directional="true" diffuse="0.45 0.45 0.45" specular="0 0 0" castshadow="false"/>
<camera name="front" pos="1.1 0 0.8" fovy="60"/>  <!-- posed per render from SimArm.camera_pose -->
<camera name="wrist" pos="0 0 1" fovy="60"/>
<geom name="table" type="box" size="{fmt(TABLE_HALF)}" pos="{fmt(TABLE_POS)}" rgba="{fmt(TABLE_RGBA)}"
  friction="{fmt(TABLE_FRICTION)} {fmt(SPIN_FRICTION)} 0.0001" priority="{TABLE_PRIORITY}"/>
{arm.body}
{objects}
</worldbody>
<contact>
{_excludes(models)}
</contact>
<actuator>
{arm.actuators}
</actuator>
<keyframe>
  <key name="home" qpos="{_home_qpos(models, layout)}" ctrl="{fmt(HOME_JOINTS)} 0.04 0.04"/>
</keyframe>
</mujoco>
"""
