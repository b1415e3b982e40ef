"""Import `mujoco` with a headless OpenGL backend chosen first.

MuJoCo reads MUJOCO_GL when it is first imported, so every MuJoCo module of the
backend imports it from here. The project's Makefile exports osmesa; when nothing
is set we take OSMesa if its library is present, else EGL.
"""
from __future__ import annotations

import ctypes.util
import os


def _choose_gl() -> None:
    if "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = "osmesa" if ctypes.util.find_library("OSMesa") else "egl"
    if os.environ["MUJOCO_GL"] in ("osmesa", "egl"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


_choose_gl()

import mujoco  # noqa: E402

__all__ = ["mujoco"]
