"""Damped-least-squares inverse kinematics on a MuJoCo site, on its own MjData.

Like PyBullet's `calculateInverseKinematics` with rest poses: a 6-D pose task,
a nullspace pull toward the home configuration, and joint limits. It warm-starts
from its previous solution, so successive commands along a path stay on one
branch of the arm's redundancy.
"""
from __future__ import annotations

import numpy as np

from sim.mujoco_gl import mujoco


class SiteIK:
    def __init__(
        self, model: mujoco.MjModel, site: int, qpos_adr: np.ndarray, dof_adr: np.ndarray,
        lower: np.ndarray, upper: np.ndarray, rest: np.ndarray,
    ) -> None:
        self.model, self.site = model, site
        self.data = mujoco.MjData(model)  # never the live data: solving must not disturb physics
        self.qpos_adr, self.dof_adr = qpos_adr, dof_adr
        self.lower, self.upper, self.rest = lower, upper, rest
        self.q = np.clip(rest.copy(), lower, upper)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._cur = np.zeros(4)
        self._dq = np.zeros(4)
        self._neg = np.zeros(4)
        self._err_r = np.zeros(3)
        self.last_error = (0.0, 0.0)  # (metres, radians) of the last solve

    def seed(self, q: np.ndarray) -> None:
        """Restart from a measured configuration (after a reset)."""
        self.q = np.clip(np.asarray(q, float).copy(), self.lower, self.upper)

    def _pose_error(self, pos: np.ndarray, quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        err_p = pos - d.site_xpos[self.site]
        mujoco.mju_mat2Quat(self._cur, d.site_xmat[self.site])
        mujoco.mju_negQuat(self._neg, self._cur)
        mujoco.mju_mulQuat(self._dq, quat_wxyz, self._neg)  # world-frame rotation current -> goal
        if self._dq[0] < 0:
            self._dq *= -1
        mujoco.mju_quat2Vel(self._err_r, self._dq, 1.0)
        return err_p, self._err_r

    def solve(
        self, pos: np.ndarray, quat_wxyz: np.ndarray, max_iter: int = 60, tol_pos: float = 2e-5,
        tol_rot: float = 2e-4, damping: float = 0.02, null_gain: float = 0.2, max_step: float = 0.3,
    ) -> np.ndarray:
        m, d, q = self.model, self.data, self.q.copy()
        eye6 = np.eye(6) * damping**2
        for _ in range(max_iter):
            d.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err_p, err_r = self._pose_error(pos, quat_wxyz)
            ep, er = float(np.linalg.norm(err_p)), float(np.linalg.norm(err_r))
            if ep < tol_pos and er < tol_rot:
                break
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.site)
            jac = np.vstack([self._jacp[:, self.dof_adr], self._jacr[:, self.dof_adr]])
            j_pinv = jac.T @ np.linalg.inv(jac @ jac.T + eye6)
            dq = j_pinv @ np.concatenate([err_p, err_r])
            # The damped inverse leaves a residual in the projector; the exact one keeps the
            # home pull from biasing the pose at convergence.
            proj = np.eye(len(q)) - np.linalg.pinv(jac, rcond=1e-4) @ jac
            dq += proj @ (null_gain * (self.rest - q))
            n = float(np.linalg.norm(dq))
            if n > max_step:  # big jumps overshoot on a nonlinear map
                dq *= max_step / n
            q = np.clip(q + dq, self.lower, self.upper)
        else:
            d.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(m, d)
            err_p, err_r = self._pose_error(pos, quat_wxyz)
            ep, er = float(np.linalg.norm(err_p)), float(np.linalg.norm(err_r))
        self.last_error = (ep, er)
        self.q = q
        return q.copy()
