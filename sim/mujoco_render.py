"""Offscreen RGB, depth and segmentation from MuJoCo fixed cameras.

One GL context lives as long as the arm; the MjrContext (uploaded meshes) is
rebuilt when the model is, i.e. at every reset, and only if a camera is used.
Each camera costs two render passes: colour+depth together, then segmentation.
"""
from __future__ import annotations

import numpy as np

from sim.mujoco_gl import mujoco


def _owned_gl_context() -> type:
    """GLContext whose own __del__ does nothing: we free it in `close()`, and freeing it
    from the garbage collector at interpreter exit raises inside PyOpenGL."""
    return type("_OwnedGLContext", (mujoco.GLContext,), {"__del__": lambda self: None})


def look_at_quat(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """wxyz orientation of a MuJoCo camera (looks along its -z, +y up) at `eye` facing `target`."""
    fwd = np.asarray(target, float) - np.asarray(eye, float)
    fwd /= np.linalg.norm(fwd)
    z = -fwd
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-9:  # up parallel to the view direction: any perpendicular will do
        x = np.cross(np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x, y, z]).reshape(-1))
    return quat


class CameraRenderer:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._gl: mujoco.GLContext | None = None
        self._ctx: mujoco.MjrContext | None = None
        self._scene: mujoco.MjvScene | None = None
        self._model: mujoco.MjModel | None = None
        self._option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, width, height)

    def set_model(self, model: mujoco.MjModel) -> None:
        """A new world was compiled; its GPU resources are made on the next render."""
        self._free_context()
        self._model = model

    def _ensure(self) -> tuple[mujoco.MjModel, mujoco.MjrContext, mujoco.MjvScene]:
        if self._model is None:
            raise RuntimeError("no model to render")
        if self._gl is None:
            self._gl = _owned_gl_context()(self.width, self.height)
        self._gl.make_current()
        if self._ctx is None:
            self._ctx = mujoco.MjrContext(self._model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._ctx)
            self._ctx.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
            self._scene = mujoco.MjvScene(self._model, maxgeom=max(1000, 2 * self._model.ngeom))
        assert self._scene is not None
        return self._model, self._ctx, self._scene

    def render(self, data: mujoco.MjData, cam_id: int, geom_label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb uint8 HxWx3, depth float32 HxW metres, labels int32 HxW) for a fixed camera."""
        model, ctx, scene = self._ensure()
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = cam_id
        mujoco.mjv_updateScene(model, data, self._option, None, cam, mujoco.mjtCatBit.mjCAT_ALL.value, scene)
        h, w = self.height, self.width
        rgb = np.empty((h, w, 3), np.uint8)
        zbuf = np.empty((h, w), np.float32)
        mujoco.mjr_render(self._rect, scene, ctx)
        mujoco.mjr_readPixels(rgb, zbuf, self._rect, ctx)
        depth = self._metric_depth(model, zbuf)
        seg, background = self._segmentation(scene, ctx, geom_label)
        depth[background] = np.float32(model.vis.map.zfar * model.stat.extent)  # the skybox is not a surface
        # OpenGL rows start at the bottom.
        return np.ascontiguousarray(rgb[::-1]), np.ascontiguousarray(depth[::-1]), np.ascontiguousarray(seg[::-1])

    def _metric_depth(self, model: mujoco.MjModel, zbuf: np.ndarray) -> np.ndarray:
        # Reverse-Z buffer (mjDEPTH_ZEROFAR) to metres, as mujoco.Renderer does.
        near = np.float32(model.vis.map.znear * model.stat.extent)
        far = np.float32(model.vis.map.zfar * model.stat.extent)
        c = np.float32(-0.5) * (-(far + near) / (far - near)) - np.float32(0.5)
        d = np.float32(-0.5) * (-(np.float32(2) * far * near) / (far - near))
        depth = d / (zbuf.astype(np.float64) + c)
        return np.clip(depth, float(near), float(far)).astype(np.float32)

    def _segmentation(
        self, scene: mujoco.MjvScene, ctx: mujoco.MjrContext, geom_label: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(label per pixel, mask of pixels that show no geom)."""
        flags = scene.flags.copy()
        scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = True
        scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        try:
            buf = np.empty((self.height, self.width, 3), np.uint8)
            mujoco.mjr_render(self._rect, scene, ctx)
            mujoco.mjr_readPixels(buf, None, self._rect, ctx)
        finally:
            np.copyto(scene.flags, flags)
        segid = buf[..., 0].astype(np.int64) + (buf[..., 1].astype(np.int64) << 8) + (buf[..., 2].astype(np.int64) << 16)
        # segid 0 is the background; visible geom g is drawn with segid g.segid + 1.
        lut = np.zeros(scene.ngeom + 1, np.int32)
        for g in scene.geoms[: scene.ngeom]:
            if g.segid >= 0 and g.objtype == mujoco.mjtObj.mjOBJ_GEOM and 0 <= g.objid < len(geom_label):
                lut[g.segid + 1] = geom_label[g.objid]
        return lut[np.clip(segid, 0, scene.ngeom)], segid == 0

    def _free_context(self) -> None:
        if self._ctx is not None and self._gl is not None:
            self._gl.make_current()
            self._ctx.free()
        self._ctx, self._scene = None, None

    def close(self) -> None:
        self._free_context()
        if self._gl is not None:
            self._gl.free()
            self._gl = None
        self._model = None
