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
# Knowledge bases and other user data go to a throwaway directory, never the real one.
_DATA = Path(os.environ.get("PYTEST_DATA_HOME") or (ROOT / ".cache" / "test-data-home"))
if _DATA.exists():
    import shutil

    shutil.rmtree(_DATA, ignore_errors=True)
_DATA.mkdir(parents=True, exist_ok=True)
os.environ["XDG_DATA_HOME"] = str(_DATA)
os.environ["CORRIGO_KB"] = "none"  # CLI runs learn nothing unless a test gives --kb


@pytest.fixture
def pybullet_arm():
    from sim import make_sim_arm

    arm = make_sim_arm("pybullet", scene="pick_place", seed=0)
    arm.connect()
    yield arm
    arm.disconnect()
