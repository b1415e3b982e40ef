"""The fault-injection harness: CI-sized rounds by default, thousands under `make soak`.

Each fault test asks `rounds(ci, soak)` how many rounds to run and adds what it saw to the
session tally (`tally.add("store kill -9", rounds=1, kills=1, lost_items=0)`). The tally is
printed at the end of the run as the soak figures: rounds, kills, flips, lost items, corrupt
writes, tracebacks. `CORRIGO_SOAK=1` (set by `make soak`) selects the long versions.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Iterator

import pytest

SOAK = os.environ.get("CORRIGO_SOAK", "") not in ("", "0")


def rounds(ci: int, soak: int) -> int:
    """How many rounds a fault test runs: `ci` in the normal suite, `soak` under `make soak`."""
    return soak if SOAK else ci


class Tally:
    """Counts per fault kind, summed over the session."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, fault: str, **counts: int) -> None:
        self.counts[fault].update(counts)

    def lines(self) -> list[str]:
        out = []
        for fault, c in sorted(self.counts.items()):
            out.append(f"{fault:32} " + "  ".join(f"{k}={v}" for k, v in sorted(c.items())))
        return out


_TALLY = Tally()


@pytest.fixture
def tally() -> Iterator[Tally]:
    yield _TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = _TALLY.lines()
    if not lines:
        return
    terminalreporter.section("fault injection figures" + (" (soak)" if SOAK else " (CI-sized; make soak runs the long versions)"))
    for line in lines:
        terminalreporter.write_line(line)
