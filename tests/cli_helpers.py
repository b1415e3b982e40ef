"""Running the real `corrigo` command line in a subprocess, for tests."""
from __future__ import annotations

import subprocess
import sys
from typing import Mapping


def cli(*args: str, timeout: float = 240, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=None if env is None else dict(env))


def assert_one_line_error(out: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, one `corrigo: error:` line on stderr containing every needle, no traceback; returns the line."""
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("corrigo: error:") and "Traceback" not in out.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
