"""Write the schema-v1 fixtures `kb_v1.sqlite`, `kb_v1_export.jsonl` and `kb_v1_search.json`.

Runs ONLY against the v1 code (knowledge base schema 1, open-dict effects: commit a11d4c5
and before); it refuses to run on anything newer. The files it made are committed and
read by tests/test_kb_migration.py; the tests never run this script.

    git worktree add /tmp/v1 a11d4c5 && cd /tmp/v1 && PYTHONPATH=$PWD python <this file> OUT_DIR

The store holds every v1 effect shape (object-frame param, plain param with a float and
an int, speed, plan insert_before with `steps` + dict anchor and the documented `step` +
string anchor, plan order, preference, alias, note, an empty effect, a custom type), each
with text and visual embeddings; item 1 is edited twice, item 2 disabled, item 3 edited
then undone, and use outcomes are recorded. `kb_v1_search.json` keeps the queries and the
v1 code's search results, to compare with after migration.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from corrections_kb import store as store_mod
from corrections_kb.knowledge import Knowledge, encode_vector
from corrections_kb.store import SqliteKnowledgeStore

if store_mod.SCHEMA_VERSION != 1:
    sys.exit(f"make_kb_v1.py needs the v1 code (schema 1); this checkout has schema {store_mod.SCHEMA_VERSION}")

EFFECTS: list[tuple[str, dict, dict]] = [  # (kind, effect, scope)
    ("skill", {"type": "param", "skill": "pick", "param": "grasp_offset", "value": [0.03, 0.0, -0.01],
               "frame": "object"}, {"skill": "pick", "object_category": "mug"}),
    ("skill", {"type": "param", "skill": "pick", "param": "grasp_offset", "delta": [0, 0.02, 0], "frame": "object"},
     {"skill": "pick", "object_category": "jug"}),
    ("skill", {"type": "param", "skill": "pick", "param": "grasp_yaw", "value": 0.35},
     {"skill": "pick", "object_category": "mug"}),
    ("skill", {"type": "param", "skill": "wipe", "param": "passes", "value": 3}, {"skill": "wipe"}),
    ("skill", {"type": "speed", "skill": "pick", "scale": 0.5}, {"skill": "pick", "object_category": "bowl"}),
    ("task", {"type": "plan", "op": "insert_before", "steps": ["open the drawer"],
              "anchor": {"skill": "pick", "object_category": "mug"}}, {"task": "put the mug in the drawer"}),
    ("task", {"type": "plan", "op": "insert_before", "step": "pick up the lid", "anchor": "pick up the mug"}, {}),
    ("task", {"type": "plan", "op": "order", "first": "fruit", "then": "block"}, {}),
    ("task", {"type": "plan", "op": "order", "first": "mug", "then": None}, {}),
    ("task", {"type": "preference", "target": "basket", "applies_to": "fruit"}, {"object_category": "fruit"}),
    ("task", {"type": "alias", "word": "cup", "means": "mug"}, {}),
    ("task", {"type": "note"}, {}),
    ("task", {}, {}),
    ("task", {"type": "custom_thing", "colour": "teal", "n": 2}, {}),
]


def vec(seed: int, dim: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "kb_v1.sqlite"
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    with SqliteKnowledgeStore(db, index="exact", persist_index=False) as s:
        ids = s.add_many([
            Knowledge(kind=kind, statement=f"v1 item {i}: {effect.get('type', 'empty')}", effect=effect, scope=scope,
                      text_embedding=vec(i, 384), visual_embedding=vec(1000 + i, 1280),
                      provenance={"episode": f"ep{i}", "operator": "ann", "utterances": [f"utterance {i}"]})
            for i, (kind, effect, scope) in enumerate(EFFECTS)])
        s.update(ids[0], effect={**EFFECTS[0][1], "value": [0.04, 0.0, -0.01]}, reason="a bit further")
        s.update(ids[0], effect={**EFFECTS[0][1], "value": [0.05, 0.01, -0.01]}, text_embedding=vec(500, 384),
                 reason="further still")
        s.disable(ids[1], reason="contradicted")
        s.update(ids[5], effect={**EFFECTS[5][1], "steps": ["open the top drawer", "look inside"]}, reason="edit")
        s.undo(ids[5])
        for outcome in ("success", "success", "contradicted", None):
            s.record_use(ids[0], outcome, context={"episode": "ep9"})
        s.record_use(ids[6], "failure")
        s.record_use(ids[9], "success")
        queries = {"text": [vec(2000 + q, 384) for q in range(3)] + [vec(3, 384) + 0.1 * vec(99, 384)],
                   "visual": [vec(3000 + q, 1280) for q in range(3)] + [vec(1003, 1280)]}
        results = []
        for qi, (t, v) in enumerate(zip(queries["text"], queries["visual"])):
            for filters in ({}, {"kind": "skill", "skill": "pick"}, {"active": None}):
                for spaces, tq, vq in (("text", t, None), ("visual", None, v), ("both", t, v)):
                    hits = s.search(query_text_emb=tq, query_visual_emb=vq, k=5, filters=filters)
                    results.append({"query": qi, "spaces": spaces, "filters": filters,
                                    "hits": [[h.knowledge.id, h.score] for h in hits]})
        s.export_jsonl(out / "kb_v1_export.jsonl")
    search = {"queries": [{"text": encode_vector(t), "visual": encode_vector(v)}
                          for t, v in zip(queries["text"], queries["visual"])], "results": results}
    (out / "kb_v1_search.json").write_text(json.dumps(search) + "\n")
    print(f"wrote {db} ({db.stat().st_size} bytes), the export and {len(results)} search results")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
