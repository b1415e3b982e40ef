"""The MuJoCo backend of `SimArm`: the same Panda, table, objects and cameras as PyBullet.

The world is compiled from one MJCF string at every reset (`sim.mujoco_model`,
the arm from `sim.mujoco_panda`; the arm part is generated once and MuJoCo caches
the meshes, so a rebuild takes ~10-50 ms after the first).
IK is damped least squares on the grasp-target site (`sim.mujoco_ik`), rendering
is offscreen OpenGL (`sim.mujoco_render`).
"""
from __future__ import annotations

import numpy as np

from robot.errors import RobotError
from sim.arm import CAMERA_NAMES, FINGER_MAX_WIDTH, HOME_JOINTS, SimArm
from sim.mujoco_gl import mujoco
from sim.mujoco_ik import SiteIK
from sim.mujoco_model import scene_xml, wxyz
from sim.mujoco_panda import ARM_JOINTS, EE_SITE, FINGER_JOINTS, ROBOT_ROOT, panda_xml
from sim.mujoco_render import CameraRenderer, look_at_quat
from sim.objects import ObjectModel
from sim.scene import PlacedObject

_OBJ = mujoco.mjtObj


class MujocoArm(SimArm):
    backend = "mujoco"

    def _open(self) -> None:
        cc = self.config.camera
        self._renderer = CameraRenderer(cc.width, cc.height)
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None

    def _close(self) -> None:
        self._renderer.close()
        self.model, self.data = None, None

    # ----- building -----
    def _build(self, models: list[ObjectModel], layout: list[PlacedObject]) -> None:
        cc = self.config.camera
        m = _compile(scene_xml(models, layout, self.config.physics_hz, cc.width, cc.height, cc.near, cc.far))
        d = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, d, 0)  # home joints, open fingers, objects at their layout poses
        mujoco.mj_forward(m, d)
        self.model, self.data = m, d
        self._index(m, models)
        arm = panda_xml()
        self._lower, self._upper = np.array(arm.lower), np.array(arm.upper)
        self._ik = SiteIK(m, self._site, self._arm_qadr, self._arm_dofadr, self._lower, self._upper, np.array(HOME_JOINTS))
        self._ik.seed(d.qpos[self._arm_qadr])
        self._ramp_from = self._ramp_to = d.ctrl[:7].copy()
        self._ramp_left = 0
        self._renderer.set_model(m)

    def _index(self, m: mujoco.MjModel, models: list[ObjectModel]) -> None:
        """Look up the ids and addresses the hooks read every tick."""
        jid = [mujoco.mj_name2id(m, _OBJ.mjOBJ_JOINT, n) for n in ARM_JOINTS]
        self._arm_qadr, self._arm_dofadr = m.jnt_qposadr[jid].copy(), m.jnt_dofadr[jid].copy()
        self._finger_qadr = m.jnt_qposadr[[mujoco.mj_name2id(m, _OBJ.mjOBJ_JOINT, n) for n in FINGER_JOINTS]].copy()
        self._site = mujoco.mj_name2id(m, _OBJ.mjOBJ_SITE, EE_SITE)
        self._bodies = [mujoco.mj_name2id(m, _OBJ.mjOBJ_BODY, f"obj{k}") for k in range(len(models))]
        slide = next((k for k, mo in enumerate(models) if mo.drawer is not None), None)
        slide_id = None if slide is None else mujoco.mj_name2id(m, _OBJ.mjOBJ_JOINT, f"obj{slide}_slide")
        self._drawer_qadr = None if slide_id is None else int(m.jnt_qposadr[slide_id])
        self._geom_label = self._labels(m)
        self._cams = {c: mujoco.mj_name2id(m, _OBJ.mjOBJ_CAMERA, c) for c in CAMERA_NAMES}

    def _labels(self, m: mujoco.MjModel) -> np.ndarray:
        """Segmentation label per geom: 1 robot, k+2 object k, 0 table and anything else."""
        root_label = np.zeros(m.nbody, np.int32)
        root_label[mujoco.mj_name2id(m, _OBJ.mjOBJ_BODY, ROBOT_ROOT)] = 1
        for k, b in enumerate(self._bodies):
            root_label[b] = k + 2
        return root_label[m.body_rootid[m.geom_bodyid]]

    # ----- the arm -----
    def _live(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        if self.model is None or self.data is None:
            raise RobotError("the MuJoCo world is not built")
        return self.model, self.data

    def _arm_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        _, d = self._live()
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, d.site_xmat[self._site])
        quat = np.array([q[1], q[2], q[3], q[0]])
        width = float(d.qpos[self._finger_qadr].sum())
        return d.site_xpos[self._site].copy(), (quat if quat[3] >= 0 else -quat), width, d.qpos[self._arm_qadr].copy()

    def _command(self, pos: np.ndarray, quat: np.ndarray, finger_width: float) -> None:
        _, d = self._live()
        target = self._ik.solve(np.asarray(pos, float), np.array(wxyz(quat)))
        self._ramp_from = d.ctrl[:7].copy()
        self._ramp_to = np.clip(target, self._lower, self._upper)  # joint limits
        self._ramp_left = self._substeps
        half = min(max(finger_width / 2, 0.0), FINGER_MAX_WIDTH / 2)
        d.ctrl[7:9] = half

    def _step(self, n: int) -> None:
        m, d = self._live()
        # Joint targets move linearly to the new IK solution over one control period.
        # A step change every tick makes the stiff servos jerk the hand, and MuJoCo's
        # soft contacts let a held object creep out under those jerks (Bullet's
        # first-order velocity motors never jerk like that).
        while n > 0 and self._ramp_left > 0:
            self._ramp_left -= 1
            a = 1.0 - self._ramp_left / self._substeps
            d.ctrl[:7] = self._ramp_from + a * (self._ramp_to - self._ramp_from)
            mujoco.mj_step(m, d)
            n -= 1
        if n > 0:
            mujoco.mj_step(m, d, nstep=n)
        # mj_step leaves poses from before its last integration; refresh them for readers.
        mujoco.mj_kinematics(m, d)

    # ----- objects -----
    def _object_pose(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        _, d = self._live()
        b = self._bodies[k]
        w, x, y, z = d.xquat[b]
        quat = np.array([x, y, z, w])
        return d.xpos[b].copy(), (quat if quat[3] >= 0 else -quat)

    def _drawer_opening(self) -> float:
        if self._drawer_qadr is None:
            return 0.0
        return float(self._live()[1].qpos[self._drawer_qadr])

    # ----- cameras -----
    def _render(self, cam: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, d = self._live()
        if cam not in self._cams:
            raise RobotError(f"unknown camera {cam!r}")
        cid = self._cams[cam]
        eye, target, up = self.camera_pose(cam)
        m.cam_pos[cid] = eye
        m.cam_quat[cid] = look_at_quat(eye, target, up)
        m.cam_fovy[cid] = self.config.camera.fov_deg
        mujoco.mj_camlight(m, d)  # world-fixed cameras: copy the new pose into the data
        return self._renderer.render(d, cid, self._geom_label)


def _compile(xml: str) -> mujoco.MjModel:
    # The Panda's visual OBJ files lack some texture coordinates; MuJoCo warns and drops them.
    prev = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda msg: None if "texture coordinate" in msg else print(f"MuJoCo warning: {msg}"))
    try:
        return mujoco.MjModel.from_xml_string(xml)
    finally:
        mujoco.set_mju_user_warning(prev)
