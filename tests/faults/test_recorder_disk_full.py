"""A full disk while recording: RLIMIT_FSIZE in a child (SIGXFSZ ignored, so writes fail with EFBIG).

Swept over file-size limits, so the failing write is at different places (the episode's
stream, its data file, the metadata). Each time: exactly one DatasetError naming the
directory and the cause (not an OSError or a pyarrow error from deep inside), the episodes
finished before are intact, no temporary file is left behind, and once there is room again
reopening the directory recovers what can be and recording goes on. Through `corrigo run`:
the run ends with one line naming the directory, no traceback.
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.faults import recorder_child as C
from tests.faults.conftest import Tally, rounds
from tests.faults.recorder_check import check, finished
from tests.faults.test_recorder_kill import PRELOAD, in_child, reopen_and_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ctx() -> Any:
    c = mp.get_context("forkserver")
    c.set_forkserver_preload(PRELOAD)
    return c


def test_a_full_disk_gives_one_error_and_keeps_earlier_episodes(ctx: Any, tmp_path: Path, tally: Tally) -> None:
    base = tmp_path / "base"
    assert in_child(ctx, C.session_main, str(base), 0, [0, 1], [30, 20], str(tmp_path / "base.done"))[0] == 0
    base_done = finished(tmp_path / "base.done")
    biggest = max(p.stat().st_size for p in base.rglob("*") if p.is_file())
    n = rounds(4, 60)
    # from "the stream no longer fits", through "the finished episode's files do not", to "only a
    # long episode's stream does not" (0.8 x: the 2-frame episode's stream fits, its metadata not)
    fracs = [0.4, 0.8, 1.6, 2.4] if n == 4 else [0.3 + 2.4 * k / (n - 1) for k in range(n)]
    limits = sorted({int(biggest * f) for f in fracs})
    errors = lost = 0
    kinds: set[str] = set()
    for limit in limits:
        d = tmp_path / f"full-{limit}"
        shutil.copytree(base, d)
        log = tmp_path / f"full-{limit}.done"
        code, (kind, msg) = in_child(ctx, C.disk_full_main, str(d), limit, [2, 3], [2, 400], str(log))
        assert code == 0
        assert kind == "DatasetError", f"limit {limit}: {kind}: {msg}"
        assert str(d) in msg and "disk full" in msg and "\n" not in msg, msg
        errors += 1
        kinds.add(msg.split("cannot write ")[1].split(" (")[0])
        done = base_done + finished(log)
        lo, _ = check(d, done, strict=False)
        lost += lo
        assert lo == 0, f"limit {limit}: {lo} earlier episodes lost"
        assert not list(d.rglob("*.tmp")), "a half-written temporary file was left behind"
        reopen_and_record(d, done, tag=4)  # room again: recovers the cut episode, records more
    print(f"{len(limits)} file-size limits ({limits[0]}..{limits[-1]} bytes): one DatasetError each, while writing "
          f"{sorted(kinds)}; 0 earlier episodes lost")
    assert len(kinds) >= 2, kinds  # the sweep hit more than one kind of write
    tally.add("recorder disk full", rounds=len(limits), errors=errors, lost_episodes=lost, tracebacks=0)


def test_corrigo_run_on_a_full_disk_ends_in_one_line(tmp_path: Path, tally: Tally) -> None:
    rec = tmp_path / "rec"

    def limit_file_size() -> None:  # in the child, before exec: ignored signals stay ignored across exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "--env", "corrigo/PickPlace-v0", "--seed", "0", "--kb", "none",
         "--no-realtime", "--no-interactive", "--max-time", "8", "--record", str(rec)],
        cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, preexec_fn=limit_file_size)
    text = out.stdout + out.stderr
    print(text[-800:])
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if "cannot write" in ln]
    assert lines and all(str(rec) in ln and "disk full" in ln for ln in lines), text
    assert out.returncode in (1, 2), text
    tally.add("recorder disk full (corrigo run)", rounds=1, errors=1, tracebacks=0)
