"""Options in a robot address: `mock:arm?hz=50&size=96`, `zmq://host:5555?timeout=2`."""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs

from robot.errors import RobotError


def spec_options(spec: str, query: str, options: Mapping[str, tuple[str, Callable[[str], Any]]]) -> dict[str, Any]:
    """The query of `spec` as keyword arguments: option name -> (keyword, converter from text).
    An unknown option or a value the converter refuses gives a one-line RobotError."""
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = sorted(set(q) - set(options))
    if unknown:
        raise RobotError(f"unknown option(s) {', '.join(unknown)} in {spec!r} (known: {', '.join(options)})")
    out: dict[str, Any] = {}
    for name, text in q.items():
        key, convert = options[name]
        try:
            out[key] = convert(text)
        except ValueError:
            raise RobotError(f"bad value {text!r} for option {name!r} in {spec!r}") from None
        if isinstance(out[key], float) and not math.isfinite(out[key]):  # float() takes nan, inf, 1e999
            raise RobotError(f"option {name!r} in {spec!r} must be a finite number, got {text!r}")
    return out


def truthy(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")
