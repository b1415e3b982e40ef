"""SqliteKnowledgeStore on real files: CRUD, history, undo, filters, search, export/import,
schema versions, foreign and corrupt files, several processes, a process killed mid-write."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from corrections_kb import store as store_mod
from corrections_kb.errors import InvalidKnowledge, KnowledgeNotFound, KnowledgeStoreError
from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore, default_kb_path, open_store

ROOT = Path(__file__).resolve().parents[1]


def vec(seed: int, dim: int = 384) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def item(i: int = 0, **kw) -> Knowledge:
    base = dict(kind="skill", statement=f"grasp item {i} 2 cm further along +y",
                effect={"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.02, 0]},
                scope={"skill": "pick", "object_category": "mug"}, text_embedding=vec(i),
                provenance={"episode": f"ep{i}", "operator": "ann", "utterances": ["a bit more to the left"]})
    base.update(kw)
    return Knowledge(**base)


@pytest.fixture
def kb(tmp_path):
    with SqliteKnowledgeStore(tmp_path / "kb.sqlite") as s:
        yield s


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# ----- CRUD, history, undo -----
def test_add_get_round_trip(kb):
    k = item(1, visual_embedding=vec(2, 1280))
    i = kb.add(k)
    got = kb.get(i)
    assert got.id == i and got.version == 1
    assert got == k.replace(id=i)  # every field, embeddings bit-exact
    with pytest.raises(KnowledgeNotFound, match="no knowledge item 999"):
        kb.get(999)
    assert kb.get_many([i, 999, i]) == [got, got]
    assert i in kb and 999 not in kb


def test_add_checks(kb):
    with pytest.raises(InvalidKnowledge, match="384"):
        kb.add(item(1, text_embedding=np.ones(10)))
    k = item(1)
    kb.add(k)
    with pytest.raises(KnowledgeStoreError, match="same uid"):
        kb.add(k)
    ids = kb.add_many([item(i) for i in range(2, 6)])
    assert ids == [2, 3, 4, 5]
    with pytest.raises(KnowledgeStoreError):  # one bad item: none of the batch is stored
        kb.add_many([item(7), k])
    assert kb.count(active_only=False) == 5


def test_update_history_undo(kb):
    i = kb.add(item(1))
    v2 = kb.update(i, statement="grasp mugs 3 cm further along +y", reason="operator: 3 cm")
    assert v2.version == 2 and v2.statement.startswith("grasp mugs 3")
    assert kb.update(i, statement=v2.statement).version == 2  # no change: no new version
    v3 = kb.update(i, text_embedding=vec(50), effect={"type": "param", "delta": [0, 0.03, 0]})
    kb.disable(i, reason="contradicted twice")
    assert not kb.get(i).active
    assert kb.disable(i).version == 4  # already disabled: no-op
    assert [h.action for h in kb.history(i)] == ["add", "edit", "edit", "disable"]
    kb.enable(i)
    assert kb.get(i).active and kb.get(i).version == 5
    # undo walks back: enable -> disable -> edit(v3) -> edit(v2) -> add(v1)
    assert not kb.undo(i).active
    assert kb.undo(i).active
    back = kb.undo(i)
    assert back.text_embedding.tobytes() == vec(1).tobytes() or back.statement == v2.statement
    assert back.content_equal(v2)  # the embedding from v2's time is restored too
    back = kb.undo(i)
    assert back.content_equal(item(1)) and back.version == 9
    with pytest.raises(KnowledgeStoreError, match="nothing to undo"):
        kb.undo(i)
    hist = kb.history(i)
    assert [h.version for h in hist] == list(range(1, 10))
    assert [h.action for h in hist] == ["add", "edit", "edit", "disable", "enable", "undo", "undo", "undo", "undo"]
    assert hist[1].reason == "operator: 3 cm" and hist[1].item.statement == v2.statement
    assert hist[2].item.text_embedding.tobytes() == v3.text_embedding.tobytes()
    # an edit after an undo is undone back to the undone state
    kb.update(i, statement="grasp mugs 1 cm further along +y")
    assert kb.undo(i).content_equal(item(1))
    # history is append-only at the SQL level too
    conn = sqlite3.connect(kb.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM item_history")
    with pytest.raises(sqlite3.DatabaseError, match="never deleted"):
        conn.execute("DELETE FROM items")
    conn.close()


def test_update_rejects_bookkeeping_fields(kb):
    i = kb.add(item(1))
    with pytest.raises(InvalidKnowledge, match="cannot update uses"):
        kb.update(i, uses=10)
    with pytest.raises(InvalidKnowledge):
        kb.update(i, kind="plan")
    with pytest.raises(KnowledgeNotFound):
        kb.update(42, statement="x")


def test_record_use(kb):
    i = kb.add(item(1))
    kb.record_use(i, "success", context={"episode": "ep9"})
    kb.record_use(i, "success")
    kb.record_use(i, "failure")
    k = kb.record_use(i, "contradicted")
    kb.record_use(i)
    k = kb.get(i)
    assert (k.uses, k.successes, k.contradictions, k.score) == (5, 2, 1, 0)
    assert k.version == 1  # counts are not versions
    with pytest.raises(InvalidKnowledge):
        kb.record_use(i, "great")
    with pytest.raises(KnowledgeNotFound):
        kb.record_use(99, "success")
    s = kb.stats()
    assert s["uses"] == 5 and s["use_log_rows"] == 5


# ----- filters and search -----
@pytest.fixture
def populated(kb):
    rows = [
        ("skill", {"skill": "pick", "object_category": "mug"}),
        ("skill", {"skill": "pick", "object_category": "bowl"}),
        ("skill", {"skill": "pick"}),  # any object
        ("skill", {"skill": "open", "object_category": "drawer"}),
        ("task", {"object_category": "fruit"}),
        ("task", {}),  # anywhere
    ]
    ids = kb.add_many([item(i, kind=kind, scope=scope) for i, (kind, scope) in enumerate(rows)])
    kb.disable(ids[1])
    return kb, ids


def test_list_filters(populated):
    kb, ids = populated
    assert [k.id for k in kb.list()] == [ids[0], ids[2], ids[3], ids[4], ids[5]]
    assert len(kb.list(active_only=False)) == 6
    assert [k.id for k in kb.list(kind="task")] == ids[4:]
    assert [k.id for k in kb.list(skill="pick")] == [ids[0], ids[2], ids[4], ids[5]]  # None applies anywhere
    assert [k.id for k in kb.list(skill="pick", scope_match="exact")] == [ids[0], ids[2]]
    assert [k.id for k in kb.list(object_category=["mug", "drawer"], scope_match="exact")] == [ids[0], ids[3]]
    assert [k.id for k in kb.list(active_only=False, skill="pick", object_category="bowl",
                                  scope_match="exact")] == [ids[1]]
    assert kb.count(skill="open") == 3
    assert [k.id for k in kb.list(limit=2, offset=1)] == [ids[2], ids[3]]
    assert kb.list(with_embeddings=False)[0].text_embedding is None
    with pytest.raises(ValueError, match="unknown filter"):
        kb.list(colour="red")


def test_search_text_and_filters(populated):
    kb, ids = populated
    hits = kb.search(query_text_emb=vec(3), k=3)
    assert hits[0].knowledge.id == ids[3] and hits[0].text_sim == pytest.approx(1.0, abs=1e-5)
    k, ts, vs = hits[0]  # unpacks as (knowledge, text_sim, visual_sim)
    assert vs is None and ts == hits[0].score
    assert all(h.knowledge.active for h in kb.search(query_text_emb=vec(1), k=10))
    assert ids[1] not in [h.knowledge.id for h in kb.search(query_text_emb=vec(1), k=10)]
    assert kb.search(query_text_emb=vec(1), k=1, filters={"active": None})[0].knowledge.id == ids[1]
    assert kb.search(query_text_emb=vec(1), k=1, filters={"active": False})[0].knowledge.id == ids[1]
    got = {h.knowledge.id for h in kb.search(query_text_emb=vec(3), k=10, filters={"skill": "pick"})}
    assert got == {ids[0], ids[2], ids[4], ids[5]}
    got = {h.knowledge.id for h in kb.search(query_text_emb=vec(3), k=10,
                                             filters={"skill": "pick", "object_category": "mug", "kind": "skill"})}
    assert got == {ids[0], ids[2]}
    assert kb.search(query_text_emb=vec(3), k=10, min_score=0.9)[0].knowledge.id == ids[3]
    assert len(kb.search(query_text_emb=vec(3), k=10, min_score=0.9)) == 1
    with pytest.raises(InvalidKnowledge):
        kb.search(query_text_emb=np.ones(5))
    with pytest.raises(ValueError):
        kb.search(query_text_emb=vec(3), filters={"colour": "red"})


def test_search_visual_and_combined(kb):
    a = kb.add(item(1, visual_embedding=vec(10, 1280)))
    b = kb.add(item(2, visual_embedding=vec(11, 1280)))
    c = kb.add(item(3))  # no visual embedding
    hits = kb.search(query_visual_emb=vec(11, 1280), k=5)
    assert [h.knowledge.id for h in hits][:1] == [b] and c not in [h.knowledge.id for h in hits]
    # text says item 1, vision says item 2: equal weights -> a tie broken by... weights decide
    hits = kb.search(query_text_emb=vec(1), query_visual_emb=vec(11, 1280), k=3, weights=(1.0, 3.0))
    assert hits[0].knowledge.id == b
    hits = kb.search(query_text_emb=vec(1), query_visual_emb=vec(11, 1280), k=3, weights=(3.0, 1.0))
    assert hits[0].knowledge.id == a and hits[0].text_sim == pytest.approx(1, abs=1e-5)
    assert hits[0].visual_sim is not None
    no_vis = [h for h in hits if h.knowledge.id == c]
    assert not no_vis or no_vis[0].visual_sim is None


def test_search_without_query_ranks_by_evidence(kb):
    ids = kb.add_many([item(i) for i in range(3)])
    kb.record_use(ids[1], "success")
    kb.record_use(ids[2], "contradicted")
    assert [h.knowledge.id for h in kb.search(k=3)] == [ids[1], ids[0], ids[2]]


def test_index_follows_writes_of_this_and_other_connections(tmp_path):
    p = tmp_path / "kb.sqlite"
    a, b = SqliteKnowledgeStore(p), SqliteKnowledgeStore(p)
    i1 = a.add(item(1))
    assert a.search(query_text_emb=vec(1), k=1)[0].knowledge.id == i1  # builds a's index
    i2 = a.add(item(2))  # own write: indexed directly
    assert a.search(query_text_emb=vec(2), k=1)[0].knowledge.id == i2
    i3 = b.add(item(3))  # another connection (same as another process)
    assert a.search(query_text_emb=vec(3), k=1)[0].knowledge.id == i3
    b.update(i3, text_embedding=vec(33))
    assert a.search(query_text_emb=vec(33), k=1)[0].knowledge.id == i3
    b.disable(i1)
    assert i1 not in [h.knowledge.id for h in a.search(query_text_emb=vec(1), k=5)]
    b.export_jsonl(tmp_path / "x.jsonl")
    b.import_jsonl(tmp_path / "x.jsonl", mode="replace")  # a whole-store replace: a rebuilds
    assert a.search(query_text_emb=vec(2), k=1)[0].knowledge.id == i2
    a.close(), b.close()


def test_hnsw_index_is_cached_and_caught_up(tmp_path):
    p = tmp_path / "kb.sqlite"
    with SqliteKnowledgeStore(p, index="hnsw") as s:
        ids = s.add_many([item(i) for i in range(200)])
        assert s.build_index() == {"text": "hnsw", "visual": "hnsw"}
        assert s.search(query_text_emb=vec(5), k=1)[0].knowledge.id == ids[5]
    stamp = json.loads(Path(f"{p}.text.usearch.json").read_text())
    first_file = tmp_path / stamp["file"]
    assert first_file.exists() and stamp["vectors"] == 200
    with SqliteKnowledgeStore(p, persist_index=False) as s:  # changes the cache does not know about
        new = s.add(item(500))
        s.update(ids[7], text_embedding=vec(777))
    with SqliteKnowledgeStore(p, index="hnsw") as s:
        s.build_index()  # loaded from the cache, then caught up with the two changes
        assert s.search(query_text_emb=vec(500), k=1)[0].knowledge.id == new
        assert s.search(query_text_emb=vec(777), k=1)[0].knowledge.id == ids[7]
        assert s.search(query_text_emb=vec(7), k=1)[0].knowledge.id != ids[7]
    stamp = json.loads(Path(f"{p}.text.usearch.json").read_text())
    assert not first_file.exists() and (tmp_path / stamp["file"]).exists()  # replaced, old file removed
    # a damaged cache is ignored, never trusted
    (tmp_path / stamp["file"]).write_bytes(b"garbage")
    with SqliteKnowledgeStore(p, index="hnsw") as s:
        assert s.search(query_text_emb=vec(9), k=1)[0].knowledge.id == ids[9]
        assert s.search(query_text_emb=vec(500), k=1)[0].knowledge.id == new


# ----- export / import -----
def _rich_store(path: Path) -> SqliteKnowledgeStore:
    s = SqliteKnowledgeStore(path)
    ids = s.add_many([item(i, visual_embedding=vec(100 + i, 1280) if i % 2 else None) for i in range(6)])
    s.add(Knowledge(kind="task", statement="always put fruit in the basket ✓",
                    effect={"type": "preference", "target": "basket", "applies_to": "fruit"},
                    scope={"object_category": "fruit", "user": "ann"}))  # no embeddings at all
    s.update(ids[0], statement="grasp mugs 3 cm further", text_embedding=vec(42), reason="more")
    s.update(ids[1], visual_embedding=None)
    s.disable(ids[2], reason="wrong")
    s.undo(ids[0])
    s.record_use(ids[3], "success", context={"episode": "ep7", "score": 0.5})
    s.record_use(ids[3], "contradicted")
    return s


def _dump(s: SqliteKnowledgeStore) -> dict:
    items = s.list(active_only=False)
    conn = sqlite3.connect(s.path)
    uses = conn.execute("SELECT item_id, at, outcome, context FROM uses ORDER BY id").fetchall()
    embs = conn.execute("SELECT item_id, space, version, vec FROM embeddings ORDER BY 1, 2, 3").fetchall()
    conn.close()
    return {"items": items, "history": {k.id: s.history(k.id) for k in items}, "uses": uses, "embeddings": embs}


def test_export_import_round_trip_exact(tmp_path):
    src = _rich_store(tmp_path / "a.sqlite")
    n = src.export_jsonl(tmp_path / "a.jsonl")
    assert n == 7
    for mode in ("replace", "merge"):
        with SqliteKnowledgeStore(tmp_path / f"b-{mode}.sqlite") as dst:
            report = dst.import_jsonl(tmp_path / "a.jsonl", mode=mode)
            assert report.added == 7 and not report.remapped
            a, b = _dump(src), _dump(dst)
            assert a["items"] == b["items"]  # every field; embeddings bit-exact
            assert a["history"] == b["history"]  # every version, snapshots, reasons, times
            assert a["uses"] == b["uses"] and a["embeddings"] == b["embeddings"]
            dst.export_jsonl(tmp_path / f"b-{mode}.jsonl")
        lines_a = (tmp_path / "a.jsonl").read_text().splitlines()
        lines_b = (tmp_path / f"b-{mode}.jsonl").read_text().splitlines()
        assert lines_a[1:] == lines_b[1:]  # byte-identical apart from the header's export time
        assert json.loads(lines_a[0])["count"] == 7
    src.close()


def test_import_merge(tmp_path):
    src = _rich_store(tmp_path / "a.sqlite")
    src.export_jsonl(tmp_path / "a.jsonl")
    # importing into the same store: everything is already there
    r = src.import_jsonl(tmp_path / "a.jsonl")
    assert (r.added, r.unchanged) == (0, 7)
    # a store with its own items: incoming ids are taken, so they are remapped
    with SqliteKnowledgeStore(tmp_path / "c.sqlite") as c:
        c.add_many([item(1000 + i) for i in range(3)])
        r = c.import_jsonl(tmp_path / "a.jsonl")
        assert r.added == 7 and len(r.remapped) == 3
        assert c.count(active_only=False) == 10 and c.check() == []
        moved = c.get(r.remapped[1])
        assert moved.uid == src.get(1).uid and len(c.history(moved.id)) == len(src.history(1))
        # the source changes an item later: merge brings the newer version in as a new local version
        time.sleep(0.01)
        src.update(4, statement="grasp item 3 a lot further")
        src.export_jsonl(tmp_path / "a2.jsonl")
        local_id = r.remapped.get(4, 4)
        before = c.get(local_id).version
        r2 = c.import_jsonl(tmp_path / "a2.jsonl")
        assert (r2.updated, r2.unchanged) == (1, 6)
        k = c.get(local_id)
        assert k.statement == "grasp item 3 a lot further" and k.version == before + 1
        assert c.history(local_id)[-1].action == "import"
        c.update(local_id, statement="local edit, newer")  # local newer: the file does not win
        assert c.import_jsonl(tmp_path / "a2.jsonl").skipped == 1
    src.close()


def test_import_errors_import_nothing(tmp_path, kb):
    kb.add(item(1))
    bad = tmp_path / "bad.jsonl"
    src = _rich_store(tmp_path / "a.sqlite")
    src.export_jsonl(tmp_path / "a.jsonl")
    src.close()
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    bad.write_text("\n".join(lines[:3] + ["{not json"] + lines[3:]) + "\n")
    with pytest.raises(KnowledgeStoreError, match=r"bad.jsonl:4: not valid JSON"):
        kb.import_jsonl(bad, mode="replace")
    assert kb.count(active_only=False) == 1  # rolled back: the replace did not happen
    rec = json.loads(lines[1])
    rec["item"]["kind"] = "plan"
    bad.write_text("\n".join([lines[0], json.dumps(rec)]) + "\n")
    with pytest.raises(KnowledgeStoreError, match=r":2: kind must be"):
        kb.import_jsonl(bad)
    bad.write_text('{"format": "something else"}\n')
    with pytest.raises(KnowledgeStoreError, match="not a corrigo knowledge base export"):
        kb.import_jsonl(bad)
    with pytest.raises(KnowledgeStoreError, match="cannot read"):
        kb.import_jsonl(tmp_path / "missing.jsonl")
    header = json.loads(lines[0])
    header["text_dim"] = 512
    bad.write_text(json.dumps(header) + "\n")
    with pytest.raises(KnowledgeStoreError, match="512-d text"):
        kb.import_jsonl(bad)
    assert kb.count(active_only=False) == 1


# ----- files: default path, schema versions, foreign and corrupt files -----
def test_default_path_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_kb_path() == tmp_path / "data" / "corrigo" / "kb.sqlite"
    with open_store("default") as s:
        s.add(item(1))
    assert (tmp_path / "data" / "corrigo" / "kb.sqlite").exists()
    with open_store(f"sqlite:{tmp_path / 'x.sqlite'}") as s:
        assert s.path == tmp_path / "x.sqlite"
    with pytest.raises(KnowledgeStoreError, match="no knowledge base at"):
        open_store(tmp_path / "nope.sqlite", create=False)
    assert not (tmp_path / "nope.sqlite").exists()


def test_wal_mode_and_pragmas(kb):
    conn = sqlite3.connect(kb.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == store_mod.APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_refused_untouched(tmp_path):
    p = tmp_path / "kb.sqlite"
    SqliteKnowledgeStore(p).close()
    conn = sqlite3.connect(p)
    conn.execute(f"PRAGMA user_version = {store_mod.SCHEMA_VERSION + 1}")
    conn.close()
    before = digest(p)
    with pytest.raises(KnowledgeStoreError, match="newer corrigo"):
        SqliteKnowledgeStore(p)
    assert digest(p) == before


def test_migrations_run_in_order(tmp_path, monkeypatch):
    p = tmp_path / "kb.sqlite"
    with SqliteKnowledgeStore(p) as s:
        i = s.add(item(1))

    def m2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE items ADD COLUMN note TEXT")
        conn.execute("UPDATE items SET note = 'migrated'")

    n = store_mod.SCHEMA_VERSION + 1  # the version m2 brings the file to
    monkeypatch.setattr(store_mod.schema, "MIGRATIONS", [*store_mod.schema.MIGRATIONS, m2])
    monkeypatch.setattr(store_mod.schema, "SCHEMA_VERSION", n)
    with SqliteKnowledgeStore(p) as s:
        assert s.get(i).statement == item(1).statement
    conn = sqlite3.connect(p)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == n
    assert conn.execute("SELECT note FROM items").fetchone()[0] == "migrated"
    conn.close()


def _png() -> bytes:
    import struct
    import zlib

    raw = b"".join(b"\x00" + bytes([255, 0, 0]) * 4 for _ in range(4))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("case", ["png", "random", "other_app_db", "truncated", "empty_sqlite_of_other_app",
                                  "garbled_pages"])
def test_foreign_or_corrupt_files_are_refused_untouched(tmp_path, case):
    p = tmp_path / "kb.sqlite"
    if case == "png":
        p.write_bytes(_png())
    elif case == "random":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif case == "other_app_db":
        conn = sqlite3.connect(p)
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
        conn.commit()
        conn.close()
    elif case == "empty_sqlite_of_other_app":
        conn = sqlite3.connect(p)
        conn.execute("PRAGMA user_version = 3")
        conn.close()
    elif case in ("truncated", "garbled_pages"):
        with SqliteKnowledgeStore(p) as s:
            s.add_many([item(i, visual_embedding=vec(i, 1280)) for i in range(60)])
        data = p.read_bytes()
        if case == "truncated":
            p.write_bytes(data[: len(data) // 2])
        else:  # keep the header, overwrite the pages after it with noise
            noise = np.random.default_rng(1).integers(0, 256, len(data) - 4096, dtype=np.uint8).tobytes()
            p.write_bytes(data[:4096] + noise)
    before = digest(p)
    with pytest.raises(KnowledgeStoreError) as e:
        s = SqliteKnowledgeStore(p)
        # corruption past the header may only show when the pages are read
        s.list(active_only=False)
        s.close()
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    assert any(w in msg for w in ("not a corrigo knowledge base", "another application", "corrupt", "malformed",
                                  "not a readable"))
    assert digest(p) == before
    if case != "garbled_pages":  # refused before SQLite opened it at all
        assert not Path(f"{p}-wal").exists() and not Path(f"{p}-shm").exists()


def test_directory_is_refused(tmp_path):
    with pytest.raises(KnowledgeStoreError, match="directory"):
        SqliteKnowledgeStore(tmp_path)


def test_closed_store(tmp_path):
    s = SqliteKnowledgeStore(tmp_path / "kb.sqlite")
    s.close()
    s.close()
    with pytest.raises(KnowledgeStoreError, match="closed"):
        s.get(1)


# ----- several processes, a killed process -----
_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from corrections_kb.knowledge import Knowledge
    from corrections_kb.store import SqliteKnowledgeStore
    path, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    with SqliteKnowledgeStore(path) as s:
        while not go.exists():
            time.sleep(0.001)
        for i in range(n):
            s.add(Knowledge(kind="task", statement=f"{tag} {i}", scope={"user": tag},
                            text_embedding=rng.standard_normal(384).astype(np.float32)))
            if i % 50 == 0:
                s.search(query_text_emb=rng.standard_normal(384).astype(np.float32), k=3)  # reads too
    print("done", tag)
""")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.slow
def test_two_processes_write_at_once(tmp_path):
    p = tmp_path / "kb.sqlite"
    SqliteKnowledgeStore(p).close()
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(p), tag, "200", str(go)], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("A", "B")]
    time.sleep(0.5)
    go.touch()  # both start inserting at the same moment
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    with SqliteKnowledgeStore(p) as s:
        items = s.list(active_only=False)
        assert len(items) == 400
        assert len({k.id for k in items}) == 400
        assert {k.statement for k in items} == {f"{t} {i}" for t in "AB" for i in range(200)}
        assert s.check() == []


_KILLED = textwrap.dedent("""
    import sys
    import numpy as np
    from corrections_kb.knowledge import Knowledge
    from corrections_kb.store import SqliteKnowledgeStore
    rng = np.random.default_rng(0)
    with SqliteKnowledgeStore(sys.argv[1]) as s:
        b = 0
        while True:
            ids = s.add_many([Knowledge(kind="skill", statement=f"batch {b} item {i}",
                                        text_embedding=rng.standard_normal(384).astype(np.float32),
                                        visual_embedding=rng.standard_normal(1280).astype(np.float32))
                              for i in range(25)])
            s.update(ids[0], statement=f"batch {b} item 0, edited", text_embedding=rng.standard_normal(384))
            s.record_use(ids[1], "success")
            b += 1
            print(b, flush=True)
""")


@pytest.mark.slow
def test_killed_mid_write_leaves_a_consistent_store(tmp_path):
    p = tmp_path / "kb.sqlite"
    script = tmp_path / "killed.py"
    script.write_text(_KILLED)
    for attempt, wait in enumerate((0.9, 1.7)):
        proc = subprocess.Popen([sys.executable, str(script), str(p)], env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # wait until it has committed a few batches, then kill it without warning
        while not (line := proc.stdout.readline()) or int(line) < 3:
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(wait)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        conn = sqlite3.connect(p)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        with SqliteKnowledgeStore(p) as s:
            assert s.check() == []
            items = s.list(active_only=False)
            assert len(items) % 25 == 0 and len(items) >= 75  # whole batches only
            for k in items:
                assert k.text_embedding is not None and k.visual_embedding is not None
                assert s.history(k.id)[-1].version == k.version
            s.search(query_text_emb=items[0].text_embedding, k=1)
