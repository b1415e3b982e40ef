"""Search for `SqliteKnowledgeStore`: in-memory indexes kept in sync with the file, and ranking.

`SearchIndexes` holds a vector index per embedding space (exact numpy, or usearch HNSW
for large stores; corrections_kb/index.py) plus a `Catalog` of filter columns, built
lazily from SQLite on the first search and kept in sync with this process's writes and,
via `PRAGMA data_version` + `item_history.hid`, with other processes'. An HNSW index is
cached beside the db file (`<db>.<space>.<token>.usearch` + a `.usearch.json` stamp) on
close, so a million-item store does not rebuild its graph on every open.

`query_vectors` and `rank_hits` are backend-neutral: the exact re-scoring every store's
`search` promises (see KnowledgeStore).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence

import numpy as np

from corrections_kb.catalog import Catalog
from corrections_kb.errors import InvalidKnowledge
from corrections_kb.index import EXACT_MAX_ITEMS, ExactIndex, HnswIndex, make_index
from corrections_kb.knowledge import SCOPE_KEYS, Knowledge
from corrections_kb.store.protocol import SearchHit, StoreFile
from corrections_kb.store.rows import SCOPE_COLS, SPACES, StoredRowError, usable_vectors


_MAX_HID = "SELECT COALESCE(MAX(hid), 0) FROM item_history"
_GENERATION = "SELECT value FROM meta WHERE key = 'generation'"


def query_vectors(dims: Mapping[str, int], text: np.ndarray | None, visual: np.ndarray | None
                  ) -> dict[str, np.ndarray]:
    """The given queries, checked against the store's dims and L2-normalised, by space."""
    queries: dict[str, np.ndarray] = {}
    for space, q in (("text", text), ("visual", visual)):
        if q is None:
            continue
        arr = np.asarray(q, dtype=np.float32).reshape(-1)
        if arr.size != dims[space]:
            raise InvalidKnowledge(f"{space} query has {arr.size} dimensions; this store holds "
                                   f"{dims[space]}-d {space} embeddings")
        norm = float(np.linalg.norm(arr))
        if not np.isfinite(norm) or norm == 0:
            raise InvalidKnowledge(f"{space} query is zero or not finite")
        queries[space] = arr / norm
    return queries


def rank_hits(items: Sequence[Knowledge], queries: Mapping[str, np.ndarray], weights: tuple[float, float],
              min_score: float | None, k: int) -> List[SearchHit]:
    """Exact cosines of `items` to the (normalised) queries, weighted mean score, best k first."""
    w = dict(zip(SPACES, weights))
    total_w = sum(w[s] for s in queries) or 1.0
    hits = []
    for item in items:
        sims: dict[str, float | None] = {}
        for space in SPACES:
            vec = getattr(item, f"{space}_embedding")
            q = queries.get(space)
            sims[space] = None if q is None or vec is None else float(q @ (vec / np.linalg.norm(vec)))
        score = sum(w[s] * (sims[s] or 0.0) for s in queries) / total_w
        if min_score is None or score >= min_score:
            hits.append(SearchHit(item, sims["text"], sims["visual"], score))
    hits.sort(key=lambda h: (-h.score, h.knowledge.id))
    return hits[:k]


class SearchIndexes:
    """The search state of one open store; its methods run under the store's lock."""

    def __init__(self, store: "StoreFile", kind: str, persist: bool) -> None:
        self._store = store
        self.kind = kind  # auto | exact | hnsw
        self.persist = persist
        self._catalog: Catalog | None = None
        self._indexes: dict[str, ExactIndex | HnswIndex] = {}
        self._dirty: dict[str, bool] = {}
        self._seen_hid = 0  # every history row up to this one is in the indexes
        self._data_version = -1
        self._written_hid = 0  # the largest history hid of our last write (see after_write)
        self.generation = ""  # the store's generation when the indexes were built

    @property
    def built(self) -> bool:
        return self._catalog is not None

    def reset(self) -> None:
        """Forget the in-memory state (rebuilt on the next search)."""
        self._catalog, self._indexes = None, {}

    def _conn(self) -> sqlite3.Connection:
        conn = self._store._conn
        assert conn is not None
        return conn

    # ----- candidates -----
    def candidates(self, queries: Mapping[str, np.ndarray], filters: Mapping[str, Any], scope_match: str,
                   k: int) -> List[int]:
        """Ids of the items nearest to each query that pass the filters (a superset of the top k)."""
        self.ensure()
        assert self._catalog is not None
        mask = self._catalog.mask(filters, scope_match)
        # Over-fetch a little from HNSW: its order is approximate, the final ranking is exact.
        if len(queries) > 1:  # the union of both spaces' candidates is re-ranked by the weighted score
            fetch = 2 * k + 10
        else:
            fetch = k if isinstance(self._indexes[next(iter(queries))], ExactIndex) else k + 10
        out: list[int] = []
        for space, q in queries.items():
            ids, _ = self._indexes[space].search(q, fetch, allowed_ids=mask)
            out += [int(i) for i in ids]
        return list(dict.fromkeys(out))

    # ----- building and syncing -----
    def ensure(self) -> None:
        if self._catalog is None:
            self.build()
        else:
            self.refresh()

    def build(self, progress: Callable[[str, int, int], None] | None = None) -> None:
        self._data_version = self._conn().execute("PRAGMA data_version").fetchone()[0]
        store = self._store

        def fn(conn: sqlite3.Connection) -> tuple[Catalog, dict[str, Any], int, str, dict[str, int]]:
            max_hid = conn.execute(_MAX_HID).fetchone()[0]
            generation = conn.execute(_GENERATION).fetchone()[0]
            cat = Catalog()
            cur = conn.execute("SELECT id, kind, active, " + ", ".join(SCOPE_COLS) + " FROM items")
            while rows := cur.fetchmany(50_000):
                cat.upsert_rows(rows)
            indexes: dict[str, Any] = {}
            stale_from: dict[str, int] = {}
            for space in SPACES:
                loaded = self._load_cache(space, generation, max_hid)
                if loaded is not None:
                    indexes[space], stale_from[space] = loaded
                    continue
                n = conn.execute(f"SELECT COUNT(*) FROM items WHERE {space}_emb_version IS NOT NULL").fetchone()[0]
                index = make_index(store.dims[space], n, self.kind)
                cur = conn.execute(f"SELECT i.id, e.vec FROM items i JOIN embeddings e ON e.item_id = i.id AND "
                                   f"e.space = '{space}' AND e.version = i.{space}_emb_version")
                done = 0
                while rows := cur.fetchmany(20_000):
                    try:
                        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), store.dims[space])
                    except (TypeError, ValueError):  # a damaged vector: the store reports it, naming the file
                        raise StoredRowError(f"a stored {space} vector is not {store.dims[space]} float32s") from None
                    if not usable_vectors(vecs):
                        raise StoredRowError(f"a stored {space} vector is zero or holds a non-finite number")
                    index.add(np.fromiter((r[0] for r in rows), np.int64, len(rows)), vecs)
                    done += len(rows)
                    if progress is not None:
                        progress(space, done, n)
                indexes[space] = index
                self._dirty[space] = True
            return cat, indexes, max_hid, generation, stale_from

        cat, indexes, max_hid, generation, stale_from = store._read(fn)
        self._catalog, self._indexes, self._seen_hid, self.generation = cat, indexes, max_hid, generation
        for space, since in stale_from.items():  # a cached index older than the db: replay changes
            if since < max_hid:
                self._reload_changed(since, max_hid)

    def refresh(self) -> None:
        """Catch up with other processes' commits (cheap when there were none)."""
        dv = self._conn().execute("PRAGMA data_version").fetchone()[0]
        if dv == self._data_version:
            return

        def fn(conn: sqlite3.Connection) -> tuple[int, str]:
            return conn.execute(_MAX_HID).fetchone()[0], conn.execute(_GENERATION).fetchone()[0]

        max_hid, generation = self._store._read(fn)
        if generation != self.generation:  # the whole store was replaced: start over
            self.reset()
            self.build()
            return
        if max_hid > self._seen_hid:
            self._reload_changed(self._seen_hid, max_hid)
        self._seen_hid = max(self._seen_hid, max_hid)
        self._data_version = dv

    def _reload_changed(self, after_hid: int, upto_hid: int) -> None:
        ids = [r[0] for r in self._conn().execute(
            "SELECT DISTINCT item_id FROM item_history WHERE hid > ? AND hid <= ?", (after_hid, upto_hid))]
        for s in range(0, len(ids), 10_000):
            self._index_items(self._store.get_many(ids[s: s + 10_000]))

    def _index_items(self, items: Sequence[Knowledge]) -> None:
        """Put items' current filter columns and vectors into the in-memory search state."""
        if self._catalog is None or not items:
            return
        self._catalog.upsert_rows([(x.id, x.kind, x.active, *(x.scope[s] for s in SCOPE_KEYS)) for x in items])
        for space in SPACES:
            index = self._indexes[space]
            with_vec = [x for x in items if getattr(x, f"{space}_embedding") is not None]
            without = [x.id for x in items if getattr(x, f"{space}_embedding") is None]
            if with_vec:
                index.add([x.id for x in with_vec], np.stack([getattr(x, f"{space}_embedding") for x in with_vec]))
            if without:
                index.remove(without)
            self._dirty[space] = True
            if self.kind == "auto" and isinstance(index, ExactIndex) and len(index) >= 2 * EXACT_MAX_ITEMS:
                hnsw = HnswIndex(self._store.dims[space])  # the store outgrew exact search during this session
                hnsw.add(index.ids(), index.get(index.ids()))
                self._indexes[space] = hnsw

    def note_commit(self, conn: sqlite3.Connection) -> None:
        """Called inside each write transaction, just before COMMIT."""
        if self._catalog is not None:
            self._written_hid = conn.execute(_MAX_HID).fetchone()[0]

    def after_write(self, items: Sequence[Knowledge]) -> None:
        """Index the items this process just wrote."""
        if self._catalog is None:
            return
        self._index_items(items)
        # If nobody else committed since our last sync, everything up to our own commit is indexed.
        if self._conn().execute("PRAGMA data_version").fetchone()[0] == self._data_version:
            self._seen_hid = max(self._seen_hid, self._written_hid)

    def after_import(self, replaced: bool) -> None:
        """An import writes history rows of its own: re-read what changed (or everything)."""
        if replaced:
            self.reset()
            self.generation = self._conn().execute(_GENERATION).fetchone()[0]
        elif self._catalog is not None:
            self._reload_changed(self._seen_hid, self._conn().execute(_MAX_HID).fetchone()[0])

    def info(self) -> Dict[str, Dict[str, Any]]:
        return {s: {"kind": i.kind, "vectors": len(i), "bytes": i.nbytes} for s, i in self._indexes.items()}

    def describe(self) -> Dict[str, str] | str:
        return {s: f"{i.kind} ({len(i)} vectors, {i.nbytes} bytes)" for s, i in self._indexes.items()} \
            or "not built (built on the first search)"

    def kinds(self) -> Dict[str, str]:
        return {s: i.kind for s, i in self._indexes.items()}

    # ----- index cache (HNSW only: exact indexes rebuild quickly) -----
    # `<db>.<space>.usearch.json` (the stamp) names the index file `<db>.<space>.<token>.usearch`
    # it describes. Each save writes a new token file, then swaps the stamp atomically, so two
    # processes closing at once never pair one's stamp with the other's index.
    def _stamp_path(self, space: str) -> Path:
        return Path(f"{self._store.path}.{space}.usearch.json")

    def _load_cache(self, space: str, generation: str, max_hid: int) -> tuple[HnswIndex, int] | None:
        if not self.persist or self.kind == "exact":
            return None
        store = self._store
        try:
            stamp = json.loads(self._stamp_path(space).read_text())
            ipath = store.path.with_name(str(stamp["file"]))
            if (stamp.get("db_uid") != store.meta["db_uid"] or stamp.get("generation") != generation
                    or stamp.get("dim") != store.dims[space] or int(stamp.get("hid", -1)) > max_hid
                    or stamp.get("size") != ipath.stat().st_size):
                return None
            index = HnswIndex.load(ipath, store.dims[space])
        except (OSError, ValueError, RuntimeError, KeyError, TypeError):
            return None  # missing, stale or damaged: rebuild from SQLite
        self._dirty[space] = False
        return index, int(stamp["hid"])

    def save(self) -> None:
        """Write the cache of every HNSW index that changed (failing to is not an error)."""
        if not self.persist:
            return
        store = self._store
        for space, index in self._indexes.items():
            if not isinstance(index, HnswIndex) or not self._dirty.get(space):
                continue
            spath = self._stamp_path(space)
            ipath = Path(f"{store.path}.{space}.{uuid.uuid4().hex[:12]}.usearch")
            tmp_s = Path(f"{spath}.tmp{os.getpid()}")
            try:
                old = json.loads(spath.read_text()).get("file") if spath.exists() else None
            except (OSError, ValueError):
                old = None
            try:
                index.save(ipath)
                stamp = {"file": ipath.name, "db_uid": store.meta["db_uid"], "generation": self.generation,
                         "hid": self._seen_hid, "dim": store.dims[space], "size": ipath.stat().st_size,
                         "vectors": len(index), "saved_at": time.time()}
                tmp_s.write_text(json.dumps(stamp))
                os.replace(tmp_s, spath)
                self._dirty[space] = False
                if old and old != ipath.name:
                    store.path.with_name(str(old)).unlink(missing_ok=True)
            except OSError:  # a cache: failing to write it is not an error
                ipath.unlink(missing_ok=True)
                tmp_s.unlink(missing_ok=True)
