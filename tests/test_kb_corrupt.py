"""Issue 14, "what was seen" 2: a store with page-level corruption is never written.

Each test runs the real `corrigo` command line on a real, damaged SQLite file:
- byte flips that `corrigo kb check` calls malformed: `kb add` / `kb disable` are refused
  (exit 2, one line naming the file and `corrigo kb check`) and the file's bytes are unchanged;
- a flipped byte in a schema name: one line naming the file from `run`, `collect` and `kb`, no traceback;
- a 0-byte file is refused, not re-initialised, unless `--kb new:PATH` / `corrigo kb init` asks;
- `--kb sqlite:` (no path) is refused instead of opening the default store.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from corrections_kb.errors import KnowledgeStoreError
from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore, open_store
from tests.cli_helpers import assert_one_line_error, cli
from tests.store_files import digest, flip, integrity, root_pages

ROOT = Path(__file__).resolve().parents[1]


def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "CORRIGO_KB"}
    e.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    return e


def kb(tmp_path: Path, *args: str) -> "object":
    return cli("kb", *args, env=env(tmp_path))


def make_store(p: Path) -> None:
    rng = np.random.default_rng(0)
    with SqliteKnowledgeStore(p) as s:
        for i in range(6):
            s.add(Knowledge(kind="skill" if i % 2 else "task", statement=f"statement {i}: grasp mugs by the handle",
                            scope={"skill": "pick", "object_category": "mug"} if i % 2 else {},
                            text_embedding=rng.standard_normal(384).astype(np.float32)))
        s.disable(2)
        s.record_use(1, "success")


# Variants where, before the fix, SQLite called the file malformed yet `kb add` and `kb disable`
# exited 0 and wrote to it: a flipped byte in the header of an index's or a table's root page
# (page type, first free block, cell pointer).
FLIPS = [("sqlite_autoindex_embeddings_1", 1), ("uses", 0), ("item_history", 8), ("sqlite_autoindex_meta_1", 0)]

@pytest.mark.parametrize("index,offset", FLIPS)
def test_writes_to_a_malformed_store_are_refused_and_leave_it_unchanged(tmp_path, index, offset):
    p = tmp_path / "kb.sqlite"
    make_store(p)
    page_size = sqlite3.connect(p).execute("PRAGMA page_size").fetchone()[0]
    flip(p, (root_pages(p)[index] - 1) * page_size + offset)
    assert integrity(p) != "ok"  # the premise: SQLite itself calls it damaged
    before = digest(p)

    for args in (["add", "always put fruit in the basket", "--kind", "task", "--no-embed"], ["disable", "1"],
                 ["edit", "3", "--effect", '{"type": "preference", "target": "bowl"}'], ["undo", "--last"]):
        out = kb(tmp_path, *args, "--kb", str(p))
        assert_one_line_error(out, str(p), "corrigo kb check")
        assert digest(p) == before, args
    check = kb(tmp_path, "check", "--kb", str(p))  # lists what is wrong, exit 1
    assert check.returncode == 1 and "problem" in check.stdout, check.stdout + check.stderr
    # reads still work, so what is readable can be rescued
    listed = kb(tmp_path, "list", "--all", "--kb", str(p))
    assert listed.returncode in (0, 2) and "Traceback" not in listed.stderr
    assert digest(p) == before


def test_api_refuses_every_write_but_still_reads(tmp_path):
    p = tmp_path / "kb.sqlite"
    make_store(p)
    page_size = sqlite3.connect(p).execute("PRAGMA page_size").fetchone()[0]
    flip(p, (root_pages(p)["items_kind_active"] - 1) * page_size)  # an index that reading by id does not use
    before = digest(p)
    with SqliteKnowledgeStore(p, create=False) as s:
        assert s.corrupt and str(p) in s.corrupt and "corrigo kb check" in s.corrupt
        for write in (lambda: s.add(Knowledge(kind="task", statement="new")), lambda: s.disable(1),
                      lambda: s.update(1, statement="changed"), lambda: s.record_use(1, "success"),
                      lambda: s.undo(1), lambda: s.enable(2)):
            with pytest.raises(KnowledgeStoreError, match="corrigo kb check"):
                write()
        assert s.get(1).statement.startswith("statement 0")
        assert len(s.list(active_only=False)) == 6
        assert s.check()
        assert s.export_jsonl(tmp_path / "rescued.jsonl") == 6
    assert digest(p) == before
    with SqliteKnowledgeStore(tmp_path / "fresh.sqlite") as fresh:  # the rescue path: import into a new store
        fresh.import_jsonl(tmp_path / "rescued.jsonl", mode="replace")
        assert len(fresh.list(active_only=False)) == 6 and fresh.check() == []


def _flip_schema_name(p: Path) -> None:
    b = bytearray(p.read_bytes())
    i = b.find(b"sqlite_autoindex_embeddings_1")
    assert i > 0
    b[i + 2] ^= 0x80  # 'l' becomes a byte that is not UTF-8
    p.write_bytes(bytes(b))


def test_a_flipped_byte_in_a_schema_name_gives_one_line_naming_the_file(tmp_path):
    p = tmp_path / "kb.sqlite"
    make_store(p)
    _flip_schema_name(p)
    before = digest(p)
    for args in (["list"], ["check"], ["add", "x", "--kind", "task", "--no-embed"], ["disable", "1"]):
        assert_one_line_error(kb(tmp_path, *args, "--kb", str(p)), str(p))
    e = env(tmp_path)
    assert_one_line_error(cli("collect", "--env", "corrigo/PickPlace-v0", "--episodes", "1", "--out",
                              str(tmp_path / "out"), "--kb", str(p), "--no-progress", env=e), str(p))
    assert_one_line_error(cli("run", "--env", "corrigo/PickPlace-v0", "--seed", "3", "--kb", str(p), "--no-realtime",
                              "--no-interactive", "--max-time", "5", env=e), str(p))
    assert digest(p) == before


def test_run_refuses_a_corrupt_store_before_the_arm_moves(tmp_path):
    p = tmp_path / "kb.sqlite"
    make_store(p)
    page_size = sqlite3.connect(p).execute("PRAGMA page_size").fetchone()[0]
    flip(p, (root_pages(p)["items_kind_active"] - 1) * page_size)
    before = digest(p)
    out = cli("run", "--env", "corrigo/PickPlace-v0", "--seed", "3", "--kb", str(p), "--no-realtime",
              "--no-interactive", "--max-time", "5", env=env(tmp_path))
    assert_one_line_error(out, str(p), "corrigo kb check")
    assert "status" not in out.stdout and "outcome" not in out.stdout.lower()  # no episode ran
    assert digest(p) == before


def test_a_zero_byte_file_is_refused_unless_new_is_asked_for(tmp_path):
    p = tmp_path / "kb.sqlite"
    p.write_bytes(b"")
    for args in (["add", "x", "--kind", "task", "--no-embed"], ["list"], ["import", str(p)]):
        assert_one_line_error(kb(tmp_path, *args, "--kb", str(p)), str(p), "0 bytes", f"new:{p}")
        assert p.stat().st_size == 0
    assert_one_line_error(cli("collect", "--env", "corrigo/PickPlace-v0", "--episodes", "1", "--out",
                              str(tmp_path / "out"), "--kb", str(p), "--no-progress", env=env(tmp_path)), str(p))
    assert p.stat().st_size == 0
    with pytest.raises(KnowledgeStoreError, match="0 bytes"):
        SqliteKnowledgeStore(p)
    # asked for explicitly: `--kb new:PATH`
    out = kb(tmp_path, "add", "x", "--kind", "task", "--no-embed", "--kb", f"new:{p}")
    assert out.returncode == 0 and "added item 1" in out.stdout, out.stderr
    with SqliteKnowledgeStore(p, create=False) as s:
        assert [k.statement for k in s.list()] == ["x"] and s.check() == [] and s.corrupt is None
    # new: on an existing store is refused (it is not new), and leaves it as it was
    before = digest(p)
    assert_one_line_error(kb(tmp_path, "list", "--kb", f"new:{p}"), str(p), "already exists")
    assert digest(p) == before


def test_kb_init(tmp_path):
    p = tmp_path / "kb.sqlite"
    p.write_bytes(b"")
    out = kb(tmp_path, "init", str(p))
    assert out.returncode == 0 and str(p) in out.stdout, out.stderr
    with SqliteKnowledgeStore(p, create=False) as s:
        assert s.count() == 0 and s.check() == []
    assert_one_line_error(kb(tmp_path, "init", str(p)), str(p), "already exists")
    q = tmp_path / "sub" / "other.sqlite"
    assert kb(tmp_path, "init", "--kb", str(q)).returncode == 0 and q.exists()


def test_default_store_is_made_on_first_use_but_a_zero_byte_one_is_refused(tmp_path):
    default = tmp_path / "data" / "corrigo" / "kb.sqlite"
    out = kb(tmp_path, "add", "x", "--kind", "task", "--no-embed")
    assert out.returncode == 0, out.stderr
    assert default.stat().st_size > 0
    default.unlink()
    default.write_bytes(b"")
    assert_one_line_error(kb(tmp_path, "add", "y", "--kind", "task", "--no-embed"), str(default), "0 bytes")
    assert default.stat().st_size == 0


def test_empty_sqlite_path_is_refused_not_the_default_store(tmp_path):
    default = tmp_path / "data" / "corrigo" / "kb.sqlite"
    for spec in ("sqlite:", "new:"):
        assert_one_line_error(kb(tmp_path, "add", "x", "--kind", "task", "--no-embed", "--kb", spec), spec)
        assert_one_line_error(cli("collect", "--env", "corrigo/PickPlace-v0", "--episodes", "1", "--out",
                                  str(tmp_path / "out"), "--kb", spec, "--no-progress", env=env(tmp_path)), spec)
    assert_one_line_error(kb(tmp_path, "list", "--kb", ""), "--kb is empty")
    assert not default.exists()
    for spec in ("sqlite:", "new:", "", "  "):
        with pytest.raises(KnowledgeStoreError):
            open_store(spec)


def test_a_store_made_by_two_processes_at_once_is_one_store(tmp_path):
    """Creation builds the file beside its name and links it in: no process sees a 0-byte store."""
    import multiprocessing as mp

    p = tmp_path / "kb.sqlite"
    ctx = mp.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.map(_create_and_add, [(str(p), i) for i in range(8)])
    assert all(r == "ok" for r in results), results
    with SqliteKnowledgeStore(p, create=False) as s:
        assert sorted(k.statement for k in s.list()) == [f"made by {i}" for i in range(8)]
        assert s.check() == []
    assert [x.name for x in tmp_path.iterdir() if x.name.endswith(".new")] == []


def _create_and_add(arg: tuple[str, int]) -> str:
    path, i = arg
    try:
        with SqliteKnowledgeStore(path) as s:
            s.add(Knowledge(kind="task", statement=f"made by {i}"))
        return "ok"
    except Exception as e:  # reported to the parent, which fails the test
        return f"{type(e).__name__}: {e}"


def test_export_rescues_every_readable_item_and_names_the_rest(tmp_path):
    """`kb export` is the way out of a damaged store: an item that cannot be read (here bad UTF-8 in
    its statement, which SQLite's own check does not see) is skipped and named, not the end of it."""
    p, out, good = tmp_path / "kb.sqlite", tmp_path / "rescued.jsonl", tmp_path / "good.sqlite"
    make_store(p)
    with sqlite3.connect(p) as conn:
        conn.execute("UPDATE items SET statement = CAST(X'FF6D7567' AS TEXT) WHERE id = 3")
    conn.close()
    before = digest(p)
    res = kb(tmp_path, "export", str(out), "--kb", str(p))
    assert res.returncode == 1 and "exported 5 items" in res.stdout, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "items 3 could not be read" in lines[0] and "Traceback" not in res.stderr
    assert digest(p) == before
    with SqliteKnowledgeStore(p, create=False) as s, pytest.raises(KnowledgeStoreError, match="items 3 cannot be read"):
        s.export_jsonl(tmp_path / "strict.jsonl")  # without a list for the skipped ids, a partial export is an error
    assert not (tmp_path / "strict.jsonl").exists()
    res = kb(tmp_path, "import", str(out), "--kb", f"new:{good}")
    assert res.returncode == 0, res.stderr
    with SqliteKnowledgeStore(good, create=False) as s:
        assert sorted(k.id for k in s.list(active_only=False)) == [1, 2, 4, 5, 6] and s.check() == []
        assert s.get(1).successes == 1 and not s.get(2).active  # history and use log came along


def test_export_of_a_malformed_store_reads_item_by_item(tmp_path):
    p, out = tmp_path / "kb.sqlite", tmp_path / "rescued.jsonl"
    make_store(p)
    page_size = sqlite3.connect(p).execute("PRAGMA page_size").fetchone()[0]
    flip(p, (root_pages(p)["items_kind_active"] - 1) * page_size)  # an index that reading by id does not use
    assert integrity(p) != "ok"
    res = kb(tmp_path, "export", str(out), "--kb", str(p))
    assert res.returncode == 0 and "exported 6 items" in res.stdout, res.stdout + res.stderr
    assert len(out.read_text().splitlines()) == 7
