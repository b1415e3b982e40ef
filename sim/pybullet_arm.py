"""The PyBullet backend of `SimArm`: a Franka Panda from `pybullet_data`."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.quiet import quiet_stdio

with quiet_stdio():  # PyBullet prints a build banner on import; users should see one-line errors only
    import pybullet as pb
    import pybullet_data

from robot.errors import RobotError
from robot.geometry import rotate
from sim.arm import FINGER_MAX_WIDTH, HOME_JOINTS, SimArm, placed_quat
from sim.objects import TABLE_HALF, TABLE_POS, TABLE_RGBA, Body, ObjectModel
from sim.scene import PlacedObject

EE_LINK = 11  # panda_grasptarget: between the fingertips
FINGERS = (9, 10)
ARM_JOINTS = tuple(range(7))


class PyBulletArm(SimArm):
    backend = "pybullet"

    def _open(self) -> None:
        self._cid = pb.connect(pb.DIRECT)
        if self._cid < 0:
            raise RobotError("could not start a PyBullet physics server")
        self._uids: list[int] = []
        self._drawer_uid: int | None = None

    def _close(self) -> None:
        try:
            pb.disconnect(physicsClientId=self._cid)
        except pb.error:
            pass

    # ----- building -----
    def _build(self, models: list[ObjectModel], layout: list[PlacedObject]) -> None:
        c = self._cid
        pb.resetSimulation(physicsClientId=c)
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setTimeStep(1.0 / self.config.physics_hz, physicsClientId=c)
        pb.setPhysicsEngineParameter(numSolverIterations=80, physicsClientId=c)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        table_col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(TABLE_HALF), physicsClientId=c)
        table_vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=list(TABLE_HALF), rgbaColor=TABLE_RGBA, physicsClientId=c)
        self._table = pb.createMultiBody(0, table_col, table_vis, list(TABLE_POS), physicsClientId=c)
        self._panda = pb.loadURDF(
            "franka_panda/panda.urdf", [0, 0, 0], useFixedBase=True,
            flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES, physicsClientId=c,
        )
        info = [pb.getJointInfo(self._panda, j, physicsClientId=c) for j in ARM_JOINTS]
        self._lower = np.array([i[8] for i in info])
        self._upper = np.array([i[9] for i in info])
        self._max_force = np.array([i[10] for i in info])
        for j, q in zip(ARM_JOINTS, HOME_JOINTS):
            pb.resetJointState(self._panda, j, q, physicsClientId=c)
        for j in FINGERS:
            pb.resetJointState(self._panda, j, FINGER_MAX_WIDTH / 2, physicsClientId=c)
            pb.changeDynamics(self._panda, j, lateralFriction=1.5, spinningFriction=0.01, physicsClientId=c)
        self._uids, self._drawer_uid = [], None
        for m, p in zip(models, layout):
            uid = self._make_body(m, p)
            self._uids.append(uid)
            if m.drawer is not None:
                self._drawer_uid = uid

    def _shapes(self, body: Body, rgba: tuple[float, ...]) -> tuple[int, int]:
        c = self._cid
        kinds = {"box": pb.GEOM_BOX, "cylinder": pb.GEOM_CYLINDER, "sphere": pb.GEOM_SPHERE, "capsule": pb.GEOM_CAPSULE}
        col_kw: dict[str, list[Any]] = {k: [] for k in ("shapeTypes", "radii", "halfExtents", "lengths", "collisionFramePositions", "collisionFrameOrientations")}
        vis_kw: dict[str, list[Any]] = {k: [] for k in ("shapeTypes", "radii", "halfExtents", "lengths", "visualFramePositions", "visualFrameOrientations", "rgbaColors")}
        for g in body.geoms:
            radius = g.size[0] if g.shape != "box" else 0.0
            half = list(g.size) if g.shape == "box" else [0.0, 0.0, 0.0]
            length = 2 * g.size[1] if g.shape in ("cylinder", "capsule") else 0.0
            for kw in (col_kw, vis_kw):
                kw["shapeTypes"].append(kinds[g.shape])
                kw["radii"].append(radius)
                kw["halfExtents"].append(half)
                kw["lengths"].append(length)
            # PyBullet expresses compound frames relative to the inertial frame.
            local = [g.pos[i] - body.com[i] for i in range(3)]
            col_kw["collisionFramePositions"].append(local)
            col_kw["collisionFrameOrientations"].append(list(g.quat))
            vis_kw["visualFramePositions"].append(local)
            vis_kw["visualFrameOrientations"].append(list(g.quat))
            vis_kw["rgbaColors"].append(list(g.rgba or rgba))
        col = pb.createCollisionShapeArray(physicsClientId=c, **col_kw)
        vis = pb.createVisualShapeArray(physicsClientId=c, **vis_kw)
        return col, vis

    def _make_body(self, m: ObjectModel, p: PlacedObject) -> int:
        c = self._cid
        col, vis = self._shapes(m.body, m.rgba)
        quat = placed_quat(p.yaw)
        base = np.array([p.x, p.y, 0.0005])
        com_world = base + _rot_z(p.yaw) @ np.asarray(m.body.com)
        kw: dict[str, Any] = {}
        if m.drawer is not None:
            d = m.drawer
            dcol, dvis = self._shapes(d.body, m.rgba)
            kw = dict(
                linkMasses=[d.body.mass], linkCollisionShapeIndices=[dcol], linkVisualShapeIndices=[dvis],
                linkPositions=[[d.origin[i] + d.body.com[i] - m.body.com[i] for i in range(3)]],
                linkOrientations=[[0, 0, 0, 1]], linkInertialFramePositions=[[0, 0, 0]],
                linkInertialFrameOrientations=[[0, 0, 0, 1]], linkParentIndices=[0],
                linkJointTypes=[pb.JOINT_PRISMATIC], linkJointAxis=[[-1, 0, 0]],
            )
        uid = pb.createMultiBody(
            baseMass=0.0 if m.fixed else m.body.mass, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis,
            basePosition=com_world.tolist(), baseOrientation=quat.tolist(), physicsClientId=c, **kw,
        )
        pb.changeDynamics(uid, -1, lateralFriction=m.friction, rollingFriction=m.rolling_friction,
                          spinningFriction=0.002, physicsClientId=c)
        if m.drawer is not None:
            pb.changeDynamics(uid, 0, lateralFriction=0.6, linearDamping=0.5, physicsClientId=c)
            # Limits must be set in a call of their own (bullet3 issue #4133).
            pb.changeDynamics(uid, 0, jointLowerLimit=0.0, jointUpperLimit=m.drawer.travel,
                              jointLimitForce=500.0, physicsClientId=c)
            # A weak motor with zero velocity acts as sliding friction for the drawer.
            pb.setJointMotorControl2(uid, 0, pb.VELOCITY_CONTROL, targetVelocity=0, force=2.0, physicsClientId=c)
        return uid

    # ----- the arm -----
    def _arm_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        c = self._cid
        ls = pb.getLinkState(self._panda, EE_LINK, computeForwardKinematics=True, physicsClientId=c)
        js = pb.getJointStates(self._panda, list(ARM_JOINTS) + list(FINGERS), physicsClientId=c)
        joints = np.array([s[0] for s in js[:7]])
        width = float(js[7][0] + js[8][0])
        quat = np.array(ls[5])
        return np.array(ls[4]), (quat if quat[3] >= 0 else -quat), width, joints

    def _command(self, pos: np.ndarray, quat: np.ndarray, finger_width: float) -> None:
        c = self._cid
        q = pb.calculateInverseKinematics(
            self._panda, EE_LINK, pos.tolist(), quat.tolist(),
            lowerLimits=self._lower.tolist(), upperLimits=self._upper.tolist(),
            jointRanges=(self._upper - self._lower).tolist(), restPoses=list(HOME_JOINTS) + [0.04, 0.04],
            maxNumIterations=60, residualThreshold=1e-5, physicsClientId=c,
        )
        target = np.clip(np.asarray(q[:7]), self._lower, self._upper)  # joint limits
        pb.setJointMotorControlArray(
            self._panda, list(ARM_JOINTS), pb.POSITION_CONTROL, targetPositions=target.tolist(),
            forces=self._max_force.tolist(), positionGains=[0.2] * 7, physicsClientId=c,
        )
        half = min(max(finger_width / 2, 0.0), FINGER_MAX_WIDTH / 2)
        pb.setJointMotorControlArray(
            self._panda, list(FINGERS), pb.POSITION_CONTROL, targetPositions=[half, half],
            forces=[40.0, 40.0], positionGains=[0.05, 0.05], physicsClientId=c,
        )

    def _step(self, n: int) -> None:
        for _ in range(n):
            pb.stepSimulation(physicsClientId=self._cid)

    # ----- objects -----
    def _object_pose(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        uid, m = self._uids[k], self._models[k]
        com, quat = pb.getBasePositionAndOrientation(uid, physicsClientId=self._cid)
        quat = np.array(quat)
        origin = np.array(com) - rotate(quat, np.asarray(m.body.com))
        return origin, (quat if quat[3] >= 0 else -quat)

    def _drawer_opening(self) -> float:
        if self._drawer_uid is None:
            return 0.0
        return float(pb.getJointState(self._drawer_uid, 0, physicsClientId=self._cid)[0])

    # ----- cameras -----
    def _render(self, cam: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c, cc = self._cid, self.config.camera
        eye, target, up = self.camera_pose(cam)
        view = pb.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist(), physicsClientId=c)
        proj = pb.computeProjectionMatrixFOV(cc.fov_deg, cc.width / cc.height, cc.near, cc.far, physicsClientId=c)
        _, _, rgba, depth, seg = pb.getCameraImage(
            cc.width, cc.height, view, proj, renderer=pb.ER_TINY_RENDERER, physicsClientId=c,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(cc.height, cc.width, 4)[:, :, :3].copy()
        depth_m = self.depth_from_buffer(np.asarray(depth, dtype=np.float32).reshape(cc.height, cc.width))
        raw = np.asarray(seg, dtype=np.int64).reshape(cc.height, cc.width)
        out = np.zeros_like(raw, dtype=np.int32)
        out[raw == self._panda] = 1
        for k, uid in enumerate(self._uids):
            out[raw == uid] = k + 2
        return rgb, depth_m, out


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
