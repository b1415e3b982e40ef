"""Shared fixtures. Caches that model packages write under HOME stay in the build tree."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("XDG_CACHE_HOME", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def pybullet_arm():
    from sim import make_sim_arm

    arm = make_sim_arm("pybullet", scene="pick_place", seed=0)
    arm.connect()
    yield arm
    arm.disconnect()
