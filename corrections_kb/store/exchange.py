"""JSON-lines export and import of a whole store (backups, merging stores, moving between backends).

The file: a header line `{"format": "corrigo-kb-export", "export_version": 2, text_dim,
visual_dim, text_model, visual_model, count, max_id, ...}`, then one line per item:
`{"item": Knowledge.to_dict(), "history": [{version, action, at, reason, parent_version,
snapshot}], "embeddings": [{space, version, vec}] (vectors of older versions; the current
ones are in "item"), "uses": [{at, outcome, context}]}`. A snapshot is the item without
vectors plus `text_emb_version`/`visual_emb_version` naming the vectors it had.

Export v1 (effects as open dicts) imports too: its effects are upgraded as the v2
schema migration does (`stored_v1_to_v2`).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from corrections_kb.effects import effect_from_dict, stored_v1_to_v2
from corrections_kb.errors import KBError, KnowledgeStoreError
from corrections_kb.knowledge import OUTCOMES, Knowledge, decode_vector, encode_vector
from corrections_kb.store.protocol import HISTORY_ACTIONS, ImportReport, StoreFile
from corrections_kb.store.rows import (
    INSERT_EMBEDDING, INSERT_HISTORY, INSERT_ITEM, JSON, SELECT_ITEMS, SPACES, blob_vec, item_row, row_refs,
    row_to_knowledge, vec_blob,
)


EXPORT_FORMAT = "corrigo-kb-export"
EXPORT_VERSION = 2  # 2: typed effects (corrections_kb/effects.py); 1: effects as open dicts


HISTORY_ROWS = "SELECT item_id, version, action, at, reason, parent_version, snapshot FROM item_history"
EMBEDDING_ROWS = "SELECT item_id, space, version, vec FROM embeddings"
USE_ROWS = "SELECT item_id, at, outcome, context FROM uses"
# What reading one damaged item can raise (a broken index can also hide rows: fetchone() is None).
_UNREADABLE = (sqlite3.DatabaseError, KBError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError)


def _record(r: Sequence[Any], hist: list[Sequence[Any]], embs: list[Sequence[Any]],
            uses: list[Sequence[Any]]) -> dict[str, Any]:
    """One export line: the item with its history, the vectors of older versions and its use log."""
    k = row_to_knowledge(r)
    current = set(row_refs(r).items())
    return {
        "item": k.to_dict(),
        "history": [{"version": v, "action": a, "at": at, "reason": why, "parent_version": p,
                     "snapshot": json.loads(s)} for _, v, a, at, why, p, s in hist],
        "embeddings": [{"space": s, "version": v, "vec": encode_vector(blob_vec(b))}
                       for _, s, v, b in embs if (s, v) not in current],
        "uses": [{"at": at, "outcome": o, "context": json.loads(c)} for _, at, o, c in uses],
    }


def _all_records(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every item, read in four ordered scans (a sound store)."""
    c2, c3, c4 = conn.cursor(), conn.cursor(), conn.cursor()
    hist = _GroupByFirst(c2.execute(HISTORY_ROWS + " ORDER BY item_id, version"))
    embs = _GroupByFirst(c3.execute(EMBEDDING_ROWS + " ORDER BY item_id, space, version"))
    uses = _GroupByFirst(c4.execute(USE_ROWS + " ORDER BY item_id, id"))
    for r in conn.execute(SELECT_ITEMS + " ORDER BY i.id"):
        yield _record(r, hist.take(r[0]), embs.take(r[0]), uses.take(r[0]))


def _readable_records(conn: sqlite3.Connection, skipped: list[int]) -> Iterator[dict[str, Any]]:
    """A damaged store, item by item: what can be read is exported, the ids of the rest are noted."""
    for (item_id,) in conn.execute("SELECT id FROM items ORDER BY id").fetchall():
        try:
            r = conn.execute(SELECT_ITEMS + " WHERE i.id = ?", (item_id,)).fetchone()
            if r is None:
                raise KeyError(item_id)
            rec = _record(r, conn.execute(HISTORY_ROWS + " WHERE item_id = ? ORDER BY version", (item_id,)).fetchall(),
                          conn.execute(EMBEDDING_ROWS + " WHERE item_id = ? ORDER BY space, version", (item_id,)).fetchall(),
                          conn.execute(USE_ROWS + " WHERE item_id = ? ORDER BY id", (item_id,)).fetchall())
        except _UNREADABLE:
            skipped.append(int(item_id))
            continue
        yield rec


def export_jsonl(store: "StoreFile", path: str | os.PathLike[str], skipped: list[int] | None = None) -> int:
    """See SqliteKnowledgeStore.export_jsonl."""
    out = Path(path)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    lost: list[int] = [] if skipped is None else skipped

    def fn(conn: sqlite3.Connection) -> int:
        n, max_id = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM items").fetchone()
        header = {"format": EXPORT_FORMAT, "export_version": EXPORT_VERSION,
                  "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
                  "text_dim": store.dims["text"], "visual_dim": store.dims["visual"],
                  "text_model": store.meta.get("text_model"), "visual_model": store.meta.get("visual_model"),
                  "count": n, "max_id": max_id, "exported_at": time.time()}

        def write(records: Iterator[dict[str, Any]]) -> int:
            written = 0
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(JSON(header) + "\n")
                for rec in records:
                    f.write(JSON(rec) + "\n")
                    written += 1
                f.flush()
                os.fsync(f.fileno())
            return written

        if store.corrupt:
            written = write(_readable_records(conn, lost))
        else:
            try:
                written = write(_all_records(conn))
            except _UNREADABLE:  # damage the file check cannot see (e.g. bad UTF-8 in a row): item by item
                written = write(_readable_records(conn, lost))
        if lost and skipped is None:  # nobody asked which: a partial export is not silent
            raise KnowledgeStoreError(f"{store.path}: items {', '.join(map(str, lost))} cannot be read; "
                                      "pass skipped=[] to export the rest")
        return written

    try:
        n = store._read(fn)
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise KnowledgeStoreError(f"cannot write {out}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def import_jsonl(store: "StoreFile", path: str | os.PathLike[str], mode: str) -> ImportReport:
    """See SqliteKnowledgeStore.import_jsonl."""
    if mode not in ("merge", "replace"):
        raise ValueError(f"mode must be merge or replace, got {mode!r}")
    src = Path(path)
    try:
        f = open(src, encoding="utf-8")
    except OSError as e:
        raise KnowledgeStoreError(f"cannot read {src}: {e.strerror or e}") from None
    with f:
        lines = _text_lines(src, f)
        try:
            _, first = next(lines)
        except StopIteration:
            raise KnowledgeStoreError(f"{src} is empty, not a corrigo knowledge base export") from None
        header = _parse_json_line(src, 1, first)
        if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
            raise KnowledgeStoreError(f"{src} is not a corrigo knowledge base export (bad header line)")
        version = int(header.get("export_version", 0))
        if version > EXPORT_VERSION:
            raise KnowledgeStoreError(f"{src} was exported by a newer corrigo (export v{header['export_version']})")
        for space in SPACES:
            if header.get(f"{space}_dim") != store.dims[space]:
                raise KnowledgeStoreError(f"{src} holds {header.get(f'{space}_dim')}-d {space} embeddings; "
                                          f"this store holds {store.dims[space]}-d")
        upgrade: Callable[[Any], dict[str, Any]] = \
            stored_v1_to_v2 if version < 2 else (lambda d: effect_from_dict(d).to_dict())
        report = ImportReport()

        def fn(conn: sqlite3.Connection) -> ImportReport:
            if mode == "replace":
                conn.execute("INSERT INTO meta (key, value) VALUES ('purging', '1')")
                for table in ("uses", "item_history", "embeddings", "items"):
                    conn.execute(f"DELETE FROM {table}")
                conn.execute("DELETE FROM meta WHERE key = 'purging'")
                conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (uuid.uuid4().hex,))
            for lineno, line in lines:
                if not line.strip():
                    continue
                try:
                    rec = _ImportRecord.parse(_parse_json_line(src, lineno, line), store.dims, upgrade)
                except (KBError, ValueError, KeyError, TypeError) as e:
                    raise KnowledgeStoreError(f"{src}:{lineno}: {e}") from None
                _import_record(store, conn, rec, report, src, int(header.get("max_id") or 0))
            return report

        store._write(fn)
    store._search.after_import(replaced=mode == "replace")
    return report


def _import_record(store: "StoreFile", conn: sqlite3.Connection, rec: "_ImportRecord",
                   report: ImportReport, src: Path, file_max_id: int) -> None:
    k = rec.item
    assert k.id is not None
    local = conn.execute("SELECT id FROM items WHERE uid = ?", (k.uid,)).fetchone()
    if local is not None:  # merge only (replace emptied the store)
        cur, refs = store._fetch(conn, local[0])
        if cur.content_equal(k):
            report.unchanged += 1
        elif k.updated_at > cur.updated_at:  # type: ignore[operator]
            store._new_version(conn, cur, refs, k, "import", f"imported from {src.name}", parent=cur.version)
            report.updated += 1
        else:
            report.skipped += 1
        if (k.uses, k.successes, k.contradictions) != (cur.uses, cur.successes, cur.contradictions):
            conn.execute("UPDATE items SET uses = MAX(uses, ?), successes = MAX(successes, ?), "
                         "contradictions = MAX(contradictions, ?) WHERE id = ?",
                         (k.uses, k.successes, k.contradictions, cur.id))
        return
    item_id = k.id
    if conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
        # A new id past both this store's ids and the file's, so it cannot collide with a later line.
        item_id = conn.execute("SELECT MAX(MAX(id), COALESCE((SELECT seq FROM sqlite_sequence "
                               "WHERE name = 'items'), 0), ?) + 1 FROM items", (file_max_id,)).fetchone()[0]
        report.remapped[k.id] = item_id
    conn.execute(INSERT_ITEM, item_row(k, item_id, k.version, rec.current_refs))
    conn.executemany(INSERT_EMBEDDING, [(item_id, s, v, vec_blob(vec)) for (s, v), vec in rec.vectors.items()])
    conn.executemany(INSERT_HISTORY, [(item_id, h["version"], h["action"], h["at"], h["reason"], h["parent_version"],
                                       JSON({**h["snapshot"], "id": item_id})) for h in rec.history])
    conn.executemany("INSERT INTO uses (item_id, at, outcome, context) VALUES (?, ?, ?, ?)",
                     [(item_id, u["at"], u["outcome"], JSON(u["context"])) for u in rec.uses])
    report.added += 1


class _GroupByFirst:
    """Consume an iterator of rows ordered by their first column, one group at a time."""

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self._it = iter(rows)
        self._next: Sequence[Any] | None = next(self._it, None)

    def take(self, key: Any) -> list[Sequence[Any]]:
        out = []
        while self._next is not None and self._next[0] < key:  # rows of items that vanished: skip
            self._next = next(self._it, None)
        while self._next is not None and self._next[0] == key:
            out.append(self._next)
            self._next = next(self._it, None)
        return out


def _text_lines(src: Path, f: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) of the import file; bad UTF-8 is the file's fault, not the store's."""
    lineno = 0
    it = iter(f)
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        except UnicodeDecodeError as e:
            raise KnowledgeStoreError(f"{src}:{lineno + 1}: not UTF-8 text ({e.reason}); "
                                      "not a corrigo knowledge base export") from None
        lineno += 1
        yield lineno, line


def _parse_json_line(src: Path, lineno: int, line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as e:
        raise KnowledgeStoreError(f"{src}:{lineno}: not valid JSON ({e})") from None


@dataclass
class _ImportRecord:
    """One validated line of an export, effects in their v2 form."""

    item: Knowledge
    history: list[dict[str, Any]]
    vectors: dict[tuple[str, int], np.ndarray]  # (space, version) -> vector, current ones included
    current_refs: dict[str, int | None]
    uses: list[dict[str, Any]]

    @classmethod
    def parse(cls, rec: Any, dims: Mapping[str, int], upgrade: Callable[[Any], dict[str, Any]]) -> "_ImportRecord":
        if not isinstance(rec, dict) or "item" not in rec:
            raise ValueError("expected an object with an 'item'")
        item = Knowledge.from_dict(_with_effect(rec["item"], upgrade))
        if item.id is None:
            raise ValueError("the item has no id")
        history = [{**h, "snapshot": _with_effect(h["snapshot"], upgrade)} for h in rec.get("history") or []]
        if not history:  # an item written by hand or another tool: give it its first version
            history = [{"version": item.version, "action": "import", "at": item.updated_at, "reason": None,
                        "parent_version": None,
                        "snapshot": {**item.to_dict(embeddings=False),
                                     "text_emb_version": item.version if item.text_embedding is not None else None,
                                     "visual_emb_version": item.version if item.visual_embedding is not None else None}}]
        versions = [int(h["version"]) for h in history]
        if versions != sorted(set(versions)) or versions[-1] != item.version:
            raise ValueError(f"history versions {versions} do not end at the item's version {item.version}")
        current = history[-1]["snapshot"]
        refs = {s: current.get(f"{s}_emb_version") for s in SPACES}
        vectors: dict[tuple[str, int], np.ndarray] = {}
        for e in rec.get("embeddings") or []:
            vec = decode_vector(e["vec"], f"{e['space']} embedding v{e['version']}")
            if e["space"] not in SPACES or vec.size != dims[e["space"]]:
                raise ValueError(f"bad embedding row (space {e['space']!r}, {vec.size} dims)")
            vectors[(e["space"], int(e["version"]))] = vec
        for s in SPACES:
            vec = getattr(item, f"{s}_embedding")
            if (vec is None) != (refs[s] is None):
                raise ValueError(f"the item's {s} embedding disagrees with its last history entry")
            if vec is not None:
                if vec.size != dims[s]:
                    raise ValueError(f"{s} embedding has {vec.size} dims, the store holds {dims[s]}")
                vectors[(s, int(refs[s]))] = vec  # type: ignore[arg-type]
        for h in history:
            snap = dict(h["snapshot"])
            for s in SPACES:
                ref = snap.pop(f"{s}_emb_version", None)
                if ref is not None and (s, ref) not in vectors:
                    raise ValueError(f"history version {h['version']} refers to a missing {s} embedding v{ref}")
            Knowledge.from_dict(snap)  # validates the snapshot
            if h.get("action") not in HISTORY_ACTIONS:
                raise ValueError(f"unknown history action {h.get('action')!r}")
        uses = list(rec.get("uses") or [])
        for u in uses:
            if u.get("outcome") is not None and u["outcome"] not in OUTCOMES:
                raise ValueError(f"unknown use outcome {u['outcome']!r}")
        return cls(item, history, vectors, refs, uses)


def _with_effect(d: Any, upgrade: Callable[[Any], dict[str, Any]]) -> Any:
    """`d` (an item or snapshot dict) with its effect in v2 form; anything else as it is (parse reports it)."""
    if isinstance(d, dict) and "effect" in d:
        return {**d, "effect": upgrade(d["effect"])}
    return d
