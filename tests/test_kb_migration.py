"""Schema v1 -> v2 (typed effects) on a real store written by the v1 code (tests/data/make_kb_v1.py):
what migrates, what stays, a crash in the middle, and the v1 export format."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from corrections_kb import effects as fx
from corrections_kb.effects import (
    GraspOffset, InsertStep, Note, Order, ParamChange, PreferredContainer, RawEffect, SpeedScale, Alias,
    effect_from_dict, stored_v1_to_v2,
)
from corrections_kb.errors import KnowledgeStoreError
from corrections_kb.knowledge import decode_vector
from corrections_kb.store import SCHEMA_VERSION, SqliteKnowledgeStore, schema

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
V1_DB, V1_EXPORT, V1_SEARCH = DATA / "kb_v1.sqlite", DATA / "kb_v1_export.jsonl", DATA / "kb_v1_search.json"

# item id -> (class, fields the v1 effect becomes); see EFFECTS in tests/data/make_kb_v1.py
EXPECTED = {
    1: (GraspOffset, {"skill": "pick", "param": "grasp_offset", "value": (0.05, 0.01, -0.01), "frame": "object"}),
    2: (GraspOffset, {"skill": "pick", "param": "grasp_offset", "delta": (0.0, 0.02, 0.0)}),
    3: (ParamChange, {"skill": "pick", "param": "grasp_yaw", "value": 0.35}),
    4: (ParamChange, {"skill": "wipe", "param": "passes", "value": 3}),
    5: (SpeedScale, {"skill": "pick", "scale": 0.5}),
    6: (InsertStep, {"steps": ("open the drawer",), "anchor_skill": "pick", "anchor_category": "mug"}),
    7: (InsertStep, {"steps": ("pick up the lid",), "anchor_text": "pick up the mug", "anchor_skill": None}),
    8: (Order, {"first": "fruit", "then": "block"}),
    9: (Order, {"first": "mug", "then": None}),
    10: (PreferredContainer, {"target": "basket", "applies_to": "fruit"}),
    11: (Alias, {"word": "cup", "means": "mug"}),
    12: (Note, {}),
    13: (RawEffect, {"data": {}}),
    14: (RawEffect, {"data": {"type": "custom_thing", "colour": "teal", "n": 2}}),
}


@pytest.fixture
def v1(tmp_path) -> Path:
    p = tmp_path / "kb.sqlite"
    shutil.copyfile(V1_DB, p)
    return p


def raw(p: Path) -> dict:
    """The file's content, read with plain sqlite3 (no store code)."""
    conn = sqlite3.connect(p)
    try:
        return {
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "meta": dict(conn.execute("SELECT key, value FROM meta")),
            "items": conn.execute("SELECT * FROM items ORDER BY id").fetchall(),
            "history": conn.execute("SELECT * FROM item_history ORDER BY hid").fetchall(),
            "uses": conn.execute("SELECT * FROM uses ORDER BY id").fetchall(),
            "embeddings": conn.execute("SELECT * FROM embeddings ORDER BY 1, 2, 3").fetchall(),
            "triggers": sorted(r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")),
        }
    finally:
        conn.close()


def effect_col(rows: list) -> list:
    return [json.loads(r[4]) for r in rows]


def test_the_fixture_is_a_v1_store():
    before = raw(V1_DB)
    assert before["user_version"] == 1 and "effect_schema" not in before["meta"]
    assert {e.get("type") for e in effect_col(before["items"])} >= {"param", "plan", "speed", "preference", "alias"}
    assert not Path(f"{V1_DB}-wal").exists()


def test_opening_a_v1_store_migrates_it(v1):
    before = raw(v1)
    with SqliteKnowledgeStore(v1) as s:
        items = {k.id: k for k in s.list(active_only=False)}
        assert set(items) == set(EXPECTED)
        for item_id, (cls, fields) in EXPECTED.items():
            e = items[item_id].effect
            assert type(e) is cls, item_id
            assert all(getattr(e, f) == v for f, v in fields.items()), (item_id, e)
        assert s.check() == []
        assert s.stats()["schema_version"] == SCHEMA_VERSION == 2 and s.stats()["effect_schema"] == 2
    after = raw(v1)
    assert after["user_version"] == SCHEMA_VERSION and after["meta"]["effect_schema"] == "2"
    assert {k: v for k, v in after["meta"].items() if k != "effect_schema"} == before["meta"]
    # only the effect column changed, to the v2 form of each v1 effect
    for old, new in zip(before["items"], after["items"], strict=True):
        assert old[:4] + old[5:] == new[:4] + new[5:]
        assert json.loads(new[4]) == stored_v1_to_v2(json.loads(old[4])) == effect_from_dict(json.loads(old[4]))
    # history: same rows, same order and hids; each snapshot's effect upgraded, the rest of it unchanged
    assert len(after["history"]) == len(before["history"]) == 19
    for old, new in zip(before["history"], after["history"], strict=True):
        assert old[:7] == new[:7]
        old_snap, new_snap = json.loads(old[7]), json.loads(new[7])
        assert new_snap == {**old_snap, "effect": stored_v1_to_v2(old_snap["effect"])}
        assert new_snap["effect"].get("type") != "plan"
    assert after["uses"] == before["uses"] and after["embeddings"] == before["embeddings"]
    assert after["triggers"] == before["triggers"]  # history is append-only again


def test_history_undo_and_counts_survive_migration(v1):
    with SqliteKnowledgeStore(v1) as s:
        hist = s.history(1)
        assert [h.action for h in hist] == ["add", "edit", "edit"]
        assert [h.item.effect.value for h in hist] == [(0.03, 0.0, -0.01), (0.04, 0.0, -0.01), (0.05, 0.01, -0.01)]
        assert all(type(h.item.effect) is GraspOffset for h in hist)
        k = s.get(1)
        assert (k.uses, k.successes, k.contradictions) == (4, 2, 1)
        assert [h.action for h in s.history(6)] == ["add", "edit", "undo"]
        assert s.get(6).effect.steps == ("open the drawer",) and s.history(6)[1].item.effect.steps == (
            "open the top drawer", "look inside")
        assert not s.get(2).active and s.history(2)[-1].reason == "contradicted"
        # undo after migration restores the earlier (upgraded) content, embedding included
        back = s.undo(1)
        assert back.version == 4 and back.effect == hist[1].item.effect and type(back.effect) is GraspOffset
        assert back.text_embedding.tobytes() == hist[1].item.text_embedding.tobytes()
        assert back.text_embedding.tobytes() != hist[2].item.text_embedding.tobytes()
        assert (back.uses, back.successes, back.contradictions) == (4, 2, 1)
        assert s.undo(1).effect == hist[0].item.effect
        s.record_use(1, "success")
        assert s.get(1).successes == 3
        assert s.check() == []


def test_search_results_are_those_of_the_v1_code(v1):
    saved = json.loads(V1_SEARCH.read_text())
    queries = [{s: decode_vector(q[s]) for s in ("text", "visual")} for q in saved["queries"]]
    with SqliteKnowledgeStore(v1) as s:
        assert len(saved["results"]) == 36
        for r in saved["results"]:
            q = queries[r["query"]]
            hits = s.search(query_text_emb=q["text"] if r["spaces"] != "visual" else None,
                            query_visual_emb=q["visual"] if r["spaces"] != "text" else None, k=5,
                            filters=r["filters"])
            assert [h.knowledge.id for h in hits] == [i for i, _ in r["hits"]], r
            assert [h.score for h in hits] == pytest.approx([sc for _, sc in r["hits"]], abs=1e-6)


_CRASH = textwrap.dedent("""
    import os, signal, sys
    from corrections_kb.store import SqliteKnowledgeStore, schema
    calls = []
    real = schema.stored_v1_to_v2
    def dying(d):
        calls.append(1)
        if len(calls) == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # no rollback, no cleanup: a power cut
        return real(d)
    schema.stored_v1_to_v2 = dying
    SqliteKnowledgeStore(sys.argv[1])
""")


@pytest.mark.parametrize("crash", ["exception", "sigkill"])
@pytest.mark.parametrize("after_calls", [5, 20])  # 5: while rewriting items; 20: history (its guard dropped)
def test_a_crash_mid_migration_leaves_a_v1_store_that_migrates_next_time(v1, tmp_path, monkeypatch, crash,
                                                                         after_calls):
    before = raw(v1)
    if crash == "exception":
        calls = []

        def failing(d):
            calls.append(1)
            if len(calls) == after_calls:
                raise RuntimeError("injected fault")
            return stored_v1_to_v2(d)

        with monkeypatch.context() as m:
            m.setattr(schema, "stored_v1_to_v2", failing)
            with pytest.raises(RuntimeError, match="injected fault"):
                SqliteKnowledgeStore(v1)
        assert len(calls) == after_calls
    else:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        script = tmp_path / "crash.py"
        script.write_text(_CRASH)
        r = subprocess.run([sys.executable, str(script), str(v1), str(after_calls)], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == -9, r.stderr
    assert raw(v1) == before  # still the v1 store, every row and trigger as it was
    with SqliteKnowledgeStore(v1) as s:
        assert {k.id: type(k.effect) for k in s.list(active_only=False)} == {i: c for i, (c, _) in EXPECTED.items()}
        assert s.check() == []
    assert raw(v1)["user_version"] == SCHEMA_VERSION


def test_a_v1_effect_that_is_not_valid_v2_is_kept_not_refused(v1):
    conn = sqlite3.connect(v1)
    conn.execute("""UPDATE items SET effect = '{"type":"speed","scale":"fast"}' WHERE id = 5""")
    conn.commit()
    conn.close()
    with SqliteKnowledgeStore(v1) as s:
        e = s.get(5).effect
        assert isinstance(e, RawEffect) and e["type"] == "invalid_v1"
        assert e["original"] == {"type": "speed", "scale": "fast"} and "'scale' must be a number" in e["error"]
        assert type(s.history(5)[0].item.effect) is SpeedScale  # its history snapshot was valid


def test_newer_effect_schema_is_refused_untouched(v1):
    SqliteKnowledgeStore(v1).close()
    conn = sqlite3.connect(v1)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'effect_schema'", (str(fx.EFFECT_SCHEMA + 1),))
    conn.commit()
    conn.close()
    digest = hashlib.sha256(v1.read_bytes()).hexdigest()
    with pytest.raises(KnowledgeStoreError, match="holds effects of schema 3.*upgrade corrigo") as e:
        SqliteKnowledgeStore(v1)
    assert "\n" not in str(e.value)
    assert hashlib.sha256(v1.read_bytes()).hexdigest() == digest


def _dump(s: SqliteKnowledgeStore) -> tuple:
    items = s.list(active_only=False)
    return items, {k.id: s.history(k.id) for k in items}


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_importing_the_v1_export_gives_the_same_items(v1, tmp_path, mode):
    assert json.loads(V1_EXPORT.read_text().splitlines()[0])["export_version"] == 1
    with SqliteKnowledgeStore(v1) as migrated, SqliteKnowledgeStore(tmp_path / "new.sqlite") as new:
        report = new.import_jsonl(V1_EXPORT, mode=mode)
        assert report.added == 14 and not report.remapped
        a, b = _dump(migrated), _dump(new)
        assert a[0] == b[0]  # every field, effects typed the same, embeddings bit-exact
        assert a[1] == b[1]  # every version of every item
        assert new.check() == []
        assert new.import_jsonl(V1_EXPORT).unchanged == 14  # merging it again: nothing new
        migrated.export_jsonl(tmp_path / "v2.jsonl")
    lines = (tmp_path / "v2.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["export_version"] == 2 and header["schema_version"] == SCHEMA_VERSION
    assert all(json.loads(x)["item"]["effect"].get("type") != "plan" for x in lines[1:])


def test_a_v2_export_with_a_bad_effect_names_the_line(tmp_path, v1):
    with SqliteKnowledgeStore(v1) as s:
        s.export_jsonl(tmp_path / "v2.jsonl")
    lines = (tmp_path / "v2.jsonl").read_text().splitlines()
    rec = json.loads(lines[5])
    rec["item"]["effect"] = {"type": "speed", "scale": -1}
    (tmp_path / "bad.jsonl").write_text("\n".join([lines[0], json.dumps(rec)]) + "\n")
    with SqliteKnowledgeStore(tmp_path / "new.sqlite") as new:
        with pytest.raises(KnowledgeStoreError, match=r"bad.jsonl:2: speed effect: 'scale' must be positive"):
            new.import_jsonl(tmp_path / "bad.jsonl")
        assert new.count(active_only=False) == 0
