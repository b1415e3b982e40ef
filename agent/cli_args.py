"""Validated option values for every `corrigo` subcommand: numbers are finite and in range or
refused, output paths are checked before any slow work starts.

The argparse types raise `argparse.ArgumentTypeError`, which `agent.cli`'s parser reports as one
line (`corrigo: error: argument --max-time: ...`); the path checks raise `CorrigoError`.
`float("nan")`, `float("inf")` and `float("1e999")` all parse, so every float goes through here.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

from robot.errors import CorrigoError

_NUMBER_HINT = "a finite number"


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {_NUMBER_HINT}, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected {_NUMBER_HINT}, got {text!r}")
    return v


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def float_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             unit: str = "") -> Callable[[str], float]:
    """A finite float in [lo, hi] (lo excluded when `lo_open`); either bound may be None."""
    u = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        v = _float(text)
        too_low = lo is not None and (v <= lo if lo_open else v < lo)
        if too_low or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be {_describe(lo, hi, lo_open)}{u}, got {text}")
        return v

    parse.__name__ = "number"
    return parse


def int_in(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        v = _int(text)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be a whole number {_describe(lo, hi, False)}, got {text}")
        return v

    parse.__name__ = "whole number"
    return parse


def _describe(lo: float | None, hi: float | None, lo_open: bool) -> str:
    def n(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{n(lo)}, {n(hi)}]"
    if lo is not None:
        if lo_open:
            return "positive" if lo == 0 else f"above {n(lo)}"
        return f"at least {n(lo)}"
    return f"at most {n(hi)}" if hi is not None else "finite"


finite_float = float_in()
positive_float = float_in(0.0, lo_open=True)
fraction = float_in(0.0, 1.0)  # a share or probability
seed = int_in(0, 2**32 - 1)  # numpy's seed range
positive_int = int_in(1)
nonneg_int = int_in(0)


def vec3(limit: float) -> Callable[[str], tuple[float, float, float]]:
    """`x,y,z`: three finite numbers, each within ±`limit` (metres in the robot base frame)."""

    def parse(text: str) -> tuple[float, float, float]:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"expected three comma-separated numbers x,y,z, got {text!r}")
        vals = tuple(_float(p) for p in parts)
        if any(abs(v) > limit for v in vals):
            raise argparse.ArgumentTypeError(f"each of x,y,z must be within ±{limit:g} m of the base, got {text}")
        return vals  # type: ignore[return-value]

    parse.__name__ = "x,y,z"
    return parse


# ----- output paths: refused before anything slow runs, naming the path -----
def _blocking_file(p: Path) -> Path | None:
    """The first existing ancestor of `p` (or `p` itself) that is not a directory."""
    for q in [p, *p.parents]:
        if q.exists():
            return None if q.is_dir() else q
    return None


def check_out_dir(path: str | Path, flag: str) -> Path:
    """A directory this command will create or add to: nothing on the way may be a file."""
    p = Path(path)
    if not str(path):
        raise CorrigoError(f"{flag} is empty; give a directory")
    blocker = _blocking_file(p)
    if blocker == p:
        raise CorrigoError(f"{flag} {p} is a file, not a directory")
    if blocker is not None:
        raise CorrigoError(f"{flag} {p}: {blocker} is a file, not a directory")
    return p


def check_out_file(path: str | Path, flag: str) -> Path:
    """A file this command will write at the end: its directory must exist and it must not be a directory."""
    p = Path(path)
    if not str(path):
        raise CorrigoError(f"{flag} is empty; give a file name")
    if p.is_dir():
        raise CorrigoError(f"{flag} {p} is a directory, not a file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise CorrigoError(f"{flag} {p}: no such directory {parent}")
    return p
