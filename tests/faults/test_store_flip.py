"""Flip bytes in each page of a small real store, then open it and try to write.

For every variant one of two things must happen: the write is refused with a
KnowledgeStoreError and the file's bytes are unchanged, or the file was sound (SQLite's
own integrity_check, run on a copy, says ok) and the write succeeded and `check()` is
still clean. Never a write into a file SQLite calls malformed, never an exception other
than KnowledgeStoreError (reads included: list, get, search, history, export).
"""
from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np

from corrections_kb.errors import KnowledgeStoreError
from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore
from tests.faults.conftest import rounds
from tests.store_files import digest, integrity




def _base(tmp: Path) -> Path:
    p = tmp / "base.sqlite"
    rng = np.random.default_rng(0)
    with SqliteKnowledgeStore(p, persist_index=False) as s:
        for i in range(8):
            s.add(Knowledge(kind="skill" if i % 2 else "task", statement=f"statement {i}: grasp mugs by the handle",
                            effect={"type": "preference", "target": "basket", "applies_to": "fruit"} if i % 2 == 0
                            else {"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.01, 0]},
                            scope={"skill": "pick", "object_category": "mug"} if i % 2 else {"object_category": "fruit"},
                            text_embedding=rng.standard_normal(384).astype(np.float32),
                            provenance={"utterances": [f"more to the left {i}"]}))
        s.update(1, statement="statement 0, edited")
        s.disable(3)
        s.record_use(2, "success")
    return p




def _attempt(p: Path) -> tuple[int, int, list[str]]:
    """Open, read, write. Returns (writes that succeeded, writes refused, unexpected exceptions)."""
    ok = refused = 0
    unexpected: list[str] = []
    try:
        s = SqliteKnowledgeStore(p, create=False, persist_index=False)
    except KnowledgeStoreError as e:
        assert "\n" not in str(e) and str(p) in str(e), str(e)
        return 0, 1, []
    except Exception as e:  # noqa: BLE001 - counted and reported
        return 0, 0, [f"open: {type(e).__name__}: {e}"]
    try:
        for read in (lambda: s.list(active_only=False), lambda: s.get(1), lambda: s.history(2),
                     lambda: s.search(query_text_emb=np.ones(384, np.float32), k=3),
                     lambda: s.export_jsonl(p.with_name("export.jsonl")), s.stats, s.check):
            try:
                read()
            except KnowledgeStoreError as e:
                assert "\n" not in str(e) and str(p) in str(e), str(e)
            except Exception as e:  # noqa: BLE001
                unexpected.append(f"read: {type(e).__name__}: {e}")
        for write in (lambda: s.add(Knowledge(kind="task", statement="a new lesson")), lambda: s.disable(5),
                      lambda: s.update(4, statement="statement 3, edited"), lambda: s.record_use(6, "failure"),
                      lambda: s.undo(1)):
            try:
                write()
                ok += 1
            except KnowledgeStoreError as e:
                assert "\n" not in str(e), str(e)
                refused += 1
            except Exception as e:  # noqa: BLE001
                unexpected.append(f"write: {type(e).__name__}: {e}")
    finally:
        try:
            s.close()
        except Exception as e:  # noqa: BLE001
            unexpected.append(f"close: {type(e).__name__}: {e}")
    return ok, refused, unexpected


def test_flip_bytes_in_every_page(tmp_path, tally):
    base = _base(tmp_path)
    conn = sqlite3.connect(base)
    page_size, pages = conn.execute("PRAGMA page_size").fetchone()[0], conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    data = base.read_bytes()
    assert len(data) == page_size * pages
    rng = random.Random(0)
    work = tmp_path / "kb.sqlite"
    totals = {"flips": 0, "refused": 0, "written": 0, "malformed_variants": 0, "corrupt_writes": 0, "tracebacks": 0}
    per_page = rounds(3, 150)
    for page in range(pages):
        for n in range(per_page):
            # the b-tree page header first (page type, free block, cell count: one byte breaks the
            # page), then anywhere in the page (page 1 starts with the file header)
            lo = 100 if page == 0 and n % 2 else 0
            fixed = (0, 1, 5, 8)
            off = lo + fixed[n] if n < min(len(fixed), per_page - 1) else rng.randrange(page_size)
            b = bytearray(data)
            b[page * page_size + off] ^= rng.choice((0xFF, 0x80, 0x01, rng.randrange(1, 256)))
            for x in tmp_path.glob("kb.sqlite*"):
                x.unlink()
            work.write_bytes(bytes(b))
            verdict = integrity(work)
            before = digest(work)
            ok, refused, unexpected = _attempt(work)
            changed = digest(work) != before
            totals["flips"] += 1
            totals["refused"] += refused
            totals["written"] += ok
            totals["tracebacks"] += len(unexpected)
            malformed = verdict != "ok"
            totals["malformed_variants"] += int(malformed)
            bad = False
            if malformed and (ok or changed):
                bad = True  # a write into a file SQLite calls malformed
            if not ok and changed:
                bad = True  # refused, yet the bytes changed
            if ok and not malformed:
                with SqliteKnowledgeStore(work, create=False, persist_index=False) as s:
                    bad = bad or bool(s.check()) or s.corrupt is not None
                bad = bad or integrity(work) != "ok"
            totals["corrupt_writes"] += int(bad)
            assert not bad, (page, off, verdict, ok, refused, changed)
            assert not unexpected, (page, off, verdict, unexpected)
    assert totals["malformed_variants"] > 0 and totals["written"] > 0  # both branches were exercised
    tally.add("store byte flips", **totals)
