"""Kill -9 the process writing the knowledge base at each step of each write.

A forked child opens a real store, arms a counter on its SQLite connection, and runs one
write (add, add_many, update, disable, enable, undo, record_use); at the N-th SQL statement
(`set_trace_callback`, for N over every statement the write runs) or after M SQLite VM
steps (`set_progress_handler`, mid-statement) it SIGKILLs itself. It reports on a pipe each
write that returned. Then: every write that returned is there and intact, `check()` is
clean, nothing half-written is visible (a write is all there or not at all). Plus two
writers killed at random times.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore
from tests.faults.conftest import rounds

DIM = 384


def _vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _item(tag: str, seed: int) -> Knowledge:
    return Knowledge(kind="skill", statement=f"{tag}: grasp mugs by the handle", scope={"skill": "pick"},
                     effect={"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.01, 0]},
                     text_embedding=_vec(seed))


def _base(tmp: Path) -> Path:
    p = tmp / "base.sqlite"
    with SqliteKnowledgeStore(p, persist_index=False) as s:
        s.add_many([_item(f"base {i}", i) for i in range(4)])
        s.update(1, statement="base 0, edited")  # item 1 has something to undo
        s.disable(3)
    return p


# Each write: what to do, and what the store must show for it once it returned.
def _writes() -> dict[str, Callable[[SqliteKnowledgeStore], dict[str, Any]]]:
    def add(s: SqliteKnowledgeStore) -> dict[str, Any]:
        i = s.add(_item("added", 100))
        return {"id": i, "version": 1, "statement": "added: grasp mugs by the handle", "active": True}

    def add_many(s: SqliteKnowledgeStore) -> dict[str, Any]:
        ids = s.add_many([_item(f"batch {j}", 200 + j) for j in range(3)])
        return {"ids": ids}

    def update(s: SqliteKnowledgeStore) -> dict[str, Any]:
        k = s.update(2, statement="base 1, edited now", text_embedding=_vec(300))
        return {"id": 2, "version": k.version, "statement": k.statement, "active": True}

    def disable(s: SqliteKnowledgeStore) -> dict[str, Any]:
        k = s.disable(4)
        return {"id": 4, "version": k.version, "statement": k.statement, "active": False}

    def enable(s: SqliteKnowledgeStore) -> dict[str, Any]:
        k = s.enable(3)
        return {"id": 3, "version": k.version, "statement": k.statement, "active": True}

    def undo(s: SqliteKnowledgeStore) -> dict[str, Any]:
        k = s.undo(1)
        return {"id": 1, "version": k.version, "statement": k.statement, "active": True}

    def record_use(s: SqliteKnowledgeStore) -> dict[str, Any]:
        k = s.record_use(2, "success")
        return {"id": 2, "uses": k.uses}

    return {"add": add, "add_many": add_many, "update": update, "disable": disable, "enable": enable,
            "undo": undo, "record_use": record_use}


def _child(path: Path, op: str, stmt_kill: int | None, vm_kill: int | None, w: int) -> None:
    """In the forked child: open, arm the kill, write, report, exit. Never returns."""
    try:
        s = SqliteKnowledgeStore(path, create=False, persist_index=False)
        conn = s._conn
        assert conn is not None
        n = [0]

        def on_statement(_sql: str) -> None:
            n[0] += 1
            if stmt_kill is not None and n[0] >= stmt_kill:
                os.kill(os.getpid(), signal.SIGKILL)

        def on_progress() -> int:
            os.kill(os.getpid(), signal.SIGKILL)
            return 0

        conn.set_trace_callback(on_statement)
        if vm_kill is not None:
            conn.set_progress_handler(on_progress, vm_kill)
        done = _writes()[op](s)
        os.write(w, (json.dumps({"op": op, "statements": n[0], **done}) + "\n").encode())
        conn.set_trace_callback(None)
        conn.set_progress_handler(None, 0)
        s.close()
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - reported to the parent as a traceback
        os.write(w, (json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n").encode())
        os._exit(3)


def _run_child(path: Path, op: str, stmt_kill: int | None = None, vm_kill: int | None = None
               ) -> tuple[bool, list[dict[str, Any]]]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(path, op, stmt_kill, vm_kill, w)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    reports = [json.loads(x) for x in b"".join(chunks).decode().splitlines() if x.strip()]
    return killed, reports


def _verify(path: Path, before: dict[int, Knowledge], reports: list[dict[str, Any]], one_write: bool = False
            ) -> tuple[int, int]:
    """(lost items, corrupt writes): what returned must be there; what did not is all or nothing."""
    lost = corrupt = 0
    with SqliteKnowledgeStore(path, create=False, persist_index=False) as s:
        if s.corrupt or s.check():
            corrupt += 1
        items = {k.id: k for k in s.list(active_only=False)}
        for i, old in before.items():  # nothing committed before is lost or damaged
            if i not in items or items[i].version < old.version or items[i].uses < old.uses:
                lost += 1
        for rep in reports:
            if "error" in rep:
                continue
            ids = rep.get("ids") or [rep["id"]]
            for i in ids:
                k = items.get(i)
                if k is None:
                    lost += 1
                    continue
                if "uses" in rep and k.uses < rep["uses"]:
                    lost += 1
                if "version" in rep:
                    h = {e.version: e.item for e in s.history(i)}
                    if rep["version"] not in h or h[rep["version"]].statement != rep["statement"] \
                            or h[rep["version"]].active != rep["active"]:
                        lost += 1
        for k in items.values():  # nothing half-written: every item whole
            hist = s.history(k.id)
            if hist[-1].version != k.version or (k.text_embedding is not None and k.text_embedding.size != DIM):
                corrupt += 1
        new = [i for i in items if i not in before]
        if one_write and len(new) not in (0, 1, 3):  # add: 1, add_many: 3 (all or none)
            corrupt += 1
    return lost, corrupt


def test_kill_at_each_statement_of_each_write(tmp_path, tally):
    base = _base(tmp_path)
    with SqliteKnowledgeStore(base, create=False, persist_index=False) as s:
        before = {k.id: k for k in s.list(active_only=False)}
    work = tmp_path / "kb.sqlite"
    totals = {"rounds": 0, "kills": 0, "lost_items": 0, "corrupt_writes": 0, "tracebacks": 0}
    rng = random.Random(0)
    repeats = rounds(1, 40)
    for rep in range(repeats):
        for op in _writes():
            n = 1
            while True:
                for x in tmp_path.glob("kb.sqlite*"):
                    x.unlink()
                shutil.copy(base, work)
                # by statement; in soak also mid-statement at a random VM step
                vm = rng.randint(1, 400) if rep and rng.random() < 0.5 else None
                killed, reports = _run_child(work, op, stmt_kill=n, vm_kill=vm)
                totals["rounds"] += 1
                totals["kills"] += int(killed)
                totals["tracebacks"] += sum("error" in r for r in reports)
                assert not any("error" in r for r in reports), reports
                lost, corrupt = _verify(work, before, reports, one_write=True)
                totals["lost_items"] += lost
                totals["corrupt_writes"] += corrupt
                assert (lost, corrupt) == (0, 0), (op, n, reports)
                if not killed:  # the write ran to its end: every statement of it was a kill point
                    assert reports and reports[0]["op"] == op
                    break
                n += 1
            assert n > 3, (op, n)  # BEGIN, the writes, COMMIT at least
    tally.add("store kill -9 at each statement", **totals)


_LOOP_OPS = ("add", "update", "record_use", "disable", "enable")


def _writer_loop(path: Path, tag: str, w: int) -> None:
    try:
        s = SqliteKnowledgeStore(path, create=False, persist_index=False)
        rng = random.Random(tag)
        mine: list[int] = []
        i = 0
        while True:
            op = "add" if len(mine) < 2 else rng.choice(_LOOP_OPS)
            if op == "add":
                k = s.get(s.add(_item(f"{tag} {i}", i)))
                mine.append(int(k.id or 0))
            else:
                target = rng.choice(mine)
                if op == "update":
                    k = s.update(target, statement=f"{tag} {i} edited")
                elif op == "record_use":
                    k = s.record_use(target, "success")
                elif op == "disable":
                    k = s.disable(target)
                else:
                    k = s.enable(target)
            os.write(w, (json.dumps({"id": k.id, "version": k.version, "statement": k.statement,
                                     "active": k.active, "uses": k.uses}) + "\n").encode())
            i += 1
    except BaseException as e:  # noqa: BLE001
        os.write(w, (json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n").encode())
        os._exit(3)


def test_two_writers_killed_at_random_times(tmp_path, tally):
    base = _base(tmp_path)
    work = tmp_path / "kb.sqlite"
    shutil.copy(base, work)
    rng = random.Random(1)
    totals = {"rounds": 0, "kills": 0, "lost_items": 0, "corrupt_writes": 0, "tracebacks": 0}
    for rnd in range(rounds(4, 400)):
        if rnd and rnd % 10 == 0:  # start again now and then: a round's check reads every item
            for x in tmp_path.glob("kb.sqlite*"):
                x.unlink()
            shutil.copy(base, work)
        with SqliteKnowledgeStore(work, create=False, persist_index=False) as s:
            before = {k.id: k for k in s.list(active_only=False)}
        pipes, pids = [], []
        for tag in ("A", "B"):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _writer_loop(work, f"{tag}{totals['rounds']}", w)
            os.close(w)
            pipes.append(r)
            pids.append(pid)
        time.sleep(rng.uniform(0.05, 0.4))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            time.sleep(rng.uniform(0, 0.02))
        reports: list[dict[str, Any]] = []
        for r, pid in zip(pipes, pids):
            data = b""
            while chunk := os.read(r, 65536):
                data += chunk
            os.close(r)
            _, status = os.waitpid(pid, 0)
            totals["kills"] += int(os.WIFSIGNALED(status))
            lines = data.decode().splitlines()
            reports += [json.loads(x) for x in lines[:-1]]  # the last line may be cut by the kill
            if lines:
                try:
                    reports.append(json.loads(lines[-1]))
                except ValueError:
                    pass
        totals["rounds"] += 1
        totals["tracebacks"] += sum("error" in r for r in reports)
        assert not any("error" in r for r in reports), [r for r in reports if "error" in r]
        # a later write to the same item may have committed after its report: _verify compares at the
        # reported version, in the item's history
        lost, corrupt = _verify(work, before, reports)
        totals["lost_items"] += lost
        totals["corrupt_writes"] += corrupt
        assert (lost, corrupt) == (0, 0)
    tally.add("store kill -9, two writers", **totals)
