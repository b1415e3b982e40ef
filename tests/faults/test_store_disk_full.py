"""Fill the disk under the knowledge base: RLIMIT_FSIZE in a forked child (Python ignores
SIGXFSZ, so a write past the limit gets EFBIG, which SQLite reports as an I/O error, or a
short write, which it reports as SQLITE_FULL).

Writes must fail with one clear KnowledgeStoreError ("disk full ..." naming the file),
what was committed before must be intact, and once the limit is lifted the store passes
`check()` and takes writes again.
"""
from __future__ import annotations

import json
import os
import random
import resource
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from corrections_kb.errors import KnowledgeStoreError
from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore
from tests.faults.conftest import rounds


def _item(tag: str, seed: int) -> Knowledge:
    rng = np.random.default_rng(seed)
    return Knowledge(kind="skill", statement=f"{tag}: grasp mugs by the handle", scope={"skill": "pick"},
                     text_embedding=rng.standard_normal(384).astype(np.float32),
                     visual_embedding=rng.standard_normal(1280).astype(np.float32))


def _child(path: Path, limit: int, seed: int, w: int) -> None:
    """Write under a file size limit until writes fail; report each outcome. Never returns."""
    def say(**rec: Any) -> None:
        os.write(w, (json.dumps(rec) + "\n").encode())

    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        s = SqliteKnowledgeStore(path, create=False, persist_index=False)
        rng = random.Random(seed)
        failures = 0
        for i in range(400):
            op = rng.choice(("add", "add", "update", "record_use", "disable"))
            try:
                if op == "add":
                    k = s.get(s.add(_item(f"full {seed} {i}", seed * 1000 + i)))
                elif op == "update":
                    k = s.update(1 + rng.randrange(3), statement=f"edited {seed} {i}",
                                 text_embedding=np.random.default_rng(i).standard_normal(384).astype(np.float32))
                elif op == "record_use":
                    k = s.record_use(1 + rng.randrange(3), "success")
                else:
                    k = s.disable(1 + rng.randrange(3))
                say(ok=op, id=k.id, version=k.version, statement=k.statement, uses=k.uses)
            except KnowledgeStoreError as e:
                say(refused=op, message=str(e))
                failures += 1
                if failures >= 4:
                    break
        try:
            s.close()
        except KnowledgeStoreError as e:
            say(refused="close", message=str(e))
        os._exit(0)
    except KnowledgeStoreError as e:  # at open: the limit is below the file itself
        say(refused="open", message=str(e))
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - a traceback, reported to the parent
        say(error=f"{type(e).__name__}: {e}")
        os._exit(3)


def _run(path: Path, limit: int, seed: int) -> list[dict[str, Any]]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(path, limit, seed, w)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return [json.loads(x) for x in data.decode().splitlines() if x.strip()]


def test_writes_on_a_full_disk_fail_cleanly_and_lose_nothing(tmp_path, tally):
    base = tmp_path / "base.sqlite"
    with SqliteKnowledgeStore(base, persist_index=False) as s:
        s.add_many([_item(f"kept {i}", i) for i in range(3)])
    work = tmp_path / "kb.sqlite"
    rng = random.Random(0)
    totals = {"rounds": 0, "refused_writes": 0, "lost_items": 0, "corrupt_writes": 0, "tracebacks": 0,
              "unclear_messages": 0}
    for rnd in range(rounds(6, 600)):
        for x in tmp_path.glob("kb.sqlite*"):
            x.unlink()
        shutil.copy(base, work)
        with SqliteKnowledgeStore(work, create=False, persist_index=False) as s:  # what was there before
            before = {k.id: k for k in s.list(active_only=False)}
        limit = work.stat().st_size + rng.randrange(0, 120_000)
        reports = _run(work, limit, rnd)
        totals["rounds"] += 1
        errors = [r for r in reports if "error" in r]
        refused = [r for r in reports if "refused" in r]
        totals["tracebacks"] += len(errors)
        totals["refused_writes"] += len(refused)
        unclear = [r["message"] for r in refused if not (r["message"].startswith("disk full") and str(work) in r["message"]
                                                         and "\n" not in r["message"])]
        totals["unclear_messages"] += len(unclear)
        # the limit is lifted: everything committed is there and the store is sound and writable
        lost = corrupt = 0
        with SqliteKnowledgeStore(work, create=False, persist_index=False) as s:
            if s.corrupt or s.check():
                corrupt += 1
            items = {k.id: k for k in s.list(active_only=False)}
            for i, old in before.items():
                lost += int(i not in items or items[i].version < old.version)
            for r in reports:
                if "ok" in r:
                    k = items.get(r["id"])
                    if k is None or k.version < r["version"] or k.uses < r["uses"]:
                        lost += 1
                    elif r["version"] not in {h.version: h for h in s.history(k.id)}:
                        lost += 1
            s.add(_item("after the disk was freed", 9999))
            corrupt += int(bool(s.check()))
        totals["lost_items"] += lost
        totals["corrupt_writes"] += corrupt
        assert not errors, errors
        assert not unclear, unclear
        assert (lost, corrupt) == (0, 0), reports
    assert totals["refused_writes"] > 0  # the limit was hit
    tally.add("store disk full", **totals)
