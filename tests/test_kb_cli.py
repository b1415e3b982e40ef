"""`corrigo kb ...` end to end, as subprocesses (`python -m agent.cli kb ...`)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str, kb: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CORRIGO_KB"}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "agent.cli", "kb", *args]
    if kb is not None:
        cmd += ["--kb", str(kb)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, (r.stdout, r.stderr)
    return r


@pytest.fixture
def kb(tmp_path) -> Path:
    p = tmp_path / "kb.sqlite"
    rng = np.random.default_rng(0)
    with SqliteKnowledgeStore(p) as s:
        s.add(Knowledge(kind="skill", statement="grasp mugs 2 cm further along +y in the mug's frame",
                        effect={"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.02, 0]},
                        scope={"skill": "pick", "object_category": "mug"},
                        text_embedding=rng.standard_normal(384), provenance={"utterances": ["more to the left"]}))
        s.add(Knowledge(kind="task", statement="always put fruit in the basket",
                        effect={"type": "preference", "target": "basket", "applies_to": "fruit"},
                        scope={"object_category": "fruit"}, text_embedding=rng.standard_normal(384)))
        s.record_use(1, "success")
    return p


def test_list_show_disable_enable_undo(tmp_path, kb):
    out = run(tmp_path, "list", kb=kb).stdout
    assert "grasp mugs 2 cm" in out and "always put fruit" in out and "2 shown, 2 in" in out
    assert "skill=pick" in out
    out = run(tmp_path, "list", "--kind", "task", kb=kb).stdout
    assert "grasp mugs" not in out and "always put fruit" in out
    lines = run(tmp_path, "list", "--json", kb=kb).stdout.splitlines()
    assert [json.loads(x)["id"] for x in lines] == [1, 2]

    out = run(tmp_path, "disable", "1", "--reason", "operator said no", kb=kb).stdout
    assert "disable -> version 2 (disabled)" in out
    assert "grasp mugs" not in run(tmp_path, "list", kb=kb).stdout
    assert "grasp mugs" in run(tmp_path, "list", "--all", kb=kb).stdout
    assert "already disabled" in run(tmp_path, "disable", "1", kb=kb).stdout
    run(tmp_path, "enable", "1", kb=kb)
    run(tmp_path, "edit", "2", "--effect", '{"type": "preference", "target": "bowl"}', "--reason", "changed",
        kb=kb)
    assert "undo -> version 3" in run(tmp_path, "undo", "2", kb=kb).stdout

    out = run(tmp_path, "show", "1", kb=kb).stdout
    assert "statement:   grasp mugs 2 cm" in out and "uses:        1 (1 successes" in out
    assert "v2" in out and "disable" in out and "operator said no" in out and "enable" in out
    d = json.loads(run(tmp_path, "show", "2", "--json", kb=kb).stdout)
    assert d["effect"]["target"] == "basket"
    assert [h["action"] for h in d["history"]] == ["add", "edit", "undo"]


def test_export_import_stats_check(tmp_path, kb):
    exp = tmp_path / "kb.jsonl"
    assert "exported 2 items" in run(tmp_path, "export", str(exp), kb=kb).stdout
    new = tmp_path / "new.sqlite"
    out = run(tmp_path, "import", str(exp), "--mode", "replace", kb=new).stdout
    assert "2 added" in out
    assert "2 unchanged" in run(tmp_path, "import", str(exp), kb=new).stdout
    out = run(tmp_path, "stats", kb=new).stdout
    assert "items:      2 (2 active, 0 disabled)" in out and "uses:       1 (1 successes" in out
    s = json.loads(run(tmp_path, "stats", "--json", kb=new).stdout)
    assert s["by_kind"]["skill"]["active"] == 1 and s["embeddings"]["text"] == 2
    assert run(tmp_path, "check", kb=new).stdout.strip() == "ok"
    # --kb before the subcommand works too
    assert "always put fruit" in run(tmp_path, "--kb", str(new), "list").stdout


def test_user_mistakes_are_one_line_exit_2(tmp_path, kb):
    cases = [
        (["show", "99"], kb, "no knowledge item 99"),
        (["undo", "2"], kb, "nothing to undo"),
        (["list"], tmp_path / "missing.sqlite", "no knowledge base at"),
        (["import", str(tmp_path / "nope.jsonl")], kb, "no such file"),
        (["edit", "1", "--effect", "[1, 2"], kb, "not valid JSON"),
        (["edit", "1"], kb, "nothing to change"),
    ]
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    cases.append((["stats"], png, "not a corrigo knowledge base (a PNG image)"))
    before = hashlib.sha256(png.read_bytes()).hexdigest()
    for args, path, msg in cases:
        r = run(tmp_path, *args, kb=path, ok=False)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert hashlib.sha256(png.read_bytes()).hexdigest() == before
    assert not (tmp_path / "missing.sqlite").exists()
    r = run(tmp_path, ok=False)  # `corrigo kb` alone: help, exit 2
    assert r.returncode == 2 and "KB_COMMAND" in r.stdout


def test_default_path_is_in_the_user_data_dir(tmp_path):
    r = run(tmp_path, "list", ok=False)  # nothing there yet
    assert r.returncode == 2 and str(tmp_path / "data" / "corrigo" / "kb.sqlite") in r.stderr


@pytest.mark.kb
def test_add_and_search_with_text_embeddings(tmp_path):
    from corrections_kb.embed import get_text_embedder

    kb = tmp_path / "kb.sqlite"
    te = get_text_embedder()
    with SqliteKnowledgeStore(kb) as s:  # two items through the API, one through the CLI
        s.add(Knowledge(kind="skill", statement="grasp mugs 2 cm further along +y",
                        scope={"skill": "pick", "object_category": "mug"},
                        text_embedding=te.embed("grasp mugs 2 cm further along +y")))
        s.add(Knowledge(kind="skill", statement="open drawers slowly", scope={"skill": "open"},
                        text_embedding=te.embed("open drawers slowly")))
    out = run(tmp_path, "add", "always put fruit in the basket", "--kind", "task", "--effect",
              '{"type": "preference", "target": "basket", "applies_to": "fruit"}', kb=kb).stdout
    assert "added item 3" in out
    r = run(tmp_path, "search", "pick up the cup", "-k", "2", kb=kb)
    rows = [x for x in r.stdout.splitlines()[1:] if x.strip()]
    assert "grasp mugs" in rows[0] and len(rows) == 2
    assert "Loading" not in r.stderr  # no progress bars from the model loader
    out = run(tmp_path, "search", "put the banana away", "-k", "1", "--kind", "task", kb=kb).stdout
    assert "always put fruit in the basket" in out
    with SqliteKnowledgeStore(kb) as s:
        added = s.get(3)
        assert added.effect["target"] == "basket" and added.provenance["utterances"] == [added.statement]
        np.testing.assert_allclose(added.text_embedding, te.embed(added.statement), atol=1e-5)


def test_effects_are_checked_and_shown_typed(tmp_path, kb):
    bad = [
        ('{"type": "speed", "scale": "fast"}', "speed effect: 'scale' must be a number"),
        ('{"type": "alias", "word": "cup"}', "alias effect: missing field(s) 'means'"),
        ('{"type": "preference", "target": "bowl", "colour": "red"}', "unknown field(s) 'colour'"),
        ('[1, 2]', "--effect must be a JSON object"),
    ]
    for effect, msg in bad:
        for args in (["add", "x", "--kind", "task", "--no-embed", "--effect", effect], ["edit", "2", "--effect", effect]):
            r = run(tmp_path, *args, kb=kb, ok=False)
            assert r.returncode == 2 and r.stderr.count("\n") == 1 and msg in r.stderr, (args, r.stderr)
    with SqliteKnowledgeStore(kb) as s:
        assert s.count(active_only=False) == 2 and s.get(2).version == 1  # nothing was written
    # a v1 shape is accepted and stored as its v2 type
    run(tmp_path, "add", "do the fruit first", "--kind", "task", "--no-embed", "--effect",
        '{"type": "plan", "op": "order", "first": "fruit"}', kb=kb)
    out = run(tmp_path, "show", "3", kb=kb).stdout
    assert 'effect:      {"type": "order", "first": "fruit"}' in out and "effect type: order (Order)" in out
    out = run(tmp_path, "show", "1", kb=kb).stdout
    assert "effect type: param (ParamChange)" in out
    d = json.loads(run(tmp_path, "show", "2", "--json", kb=kb).stdout)
    assert d["effect_type"] == "preference" and d["effect"] == {"type": "preference", "target": "basket",
                                                                 "applies_to": "fruit"}
    run(tmp_path, "add", "something odd", "--kind", "task", "--no-embed", "--effect", '{"type": "wobble"}', kb=kb)
    assert "effect type: raw (unknown type 'wobble'" in run(tmp_path, "show", "4", kb=kb).stdout
