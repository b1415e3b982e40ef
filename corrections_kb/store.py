"""`SqliteKnowledgeStore`: the knowledge base in one SQLite file.

Layout (schema v1, see `_migrate_1`):
- `items`: the current row of every item (content, scope columns, counts, active flag,
  and which embedding versions are current).
- `embeddings`: float32 BLOBs beside each item, keyed (item, space, version). A vector is
  written once, at the item version that set it; edits that keep it only point at it,
  so history costs no extra vector bytes and undo can restore an old embedding.
- `item_history`: every version of every item (add, edit, disable, enable, undo, import)
  as a JSON snapshot. Append-only, enforced by triggers: nothing but `import_jsonl(...,
  mode="replace")` deletes from it. Its `hid` is a global change sequence that other
  processes use to keep their in-memory search index in sync.
- `uses`: one row per `record_use` (time, outcome, context).
- `meta`: format marker, dims, embedding model names, a random db uid, a generation
  counter bumped when the whole store is replaced.

Safety: the file is checked before SQLite touches it (magic bytes, our
`application_id`, truncation), so a foreign or corrupt file gives one-line
`KnowledgeStoreError` and is left byte-for-byte unchanged. Every write is one
`BEGIN IMMEDIATE` transaction (a killed process leaves the last committed state), in
WAL mode with a busy timeout and retries so several processes can write at once.

Search: an in-memory vector index per embedding space (exact numpy, or usearch HNSW
for large stores; see corrections_kb/index.py) plus a `Catalog` of filter columns, both
built lazily from SQLite on the first search and kept in sync with this process's
writes and, via `PRAGMA data_version` + `item_history.hid`, with other processes'. An
HNSW index is cached beside the db file (`<db>.text.usearch` + `.json` stamp) on
close, so a million-item store does not rebuild its graph on every open.
"""
from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from corrections_kb.catalog import SCOPE_MATCHES, Catalog, as_values, check_filters
from corrections_kb.errors import InvalidKnowledge, KBError, KnowledgeNotFound, KnowledgeStoreError
from corrections_kb.index import EXACT_MAX_ITEMS, ExactIndex, HnswIndex, make_index
from corrections_kb.knowledge import (
    EDITABLE_FIELDS, OUTCOMES, SCOPE_KEYS, TEXT_DIM, VISUAL_DIM, Knowledge, decode_vector, encode_vector,
)

__all__ = [
    "APPLICATION_ID", "SCHEMA_VERSION", "HistoryEntry", "ImportReport", "KnowledgeStore", "SearchHit",
    "SqliteKnowledgeStore", "default_kb_path", "open_store", "register_store",
]

APPLICATION_ID = int.from_bytes(b"CRKB", "big")  # in the SQLite header: marks the file as ours
FORMAT = "corrigo-kb"
EXPORT_FORMAT = "corrigo-kb-export"
EXPORT_VERSION = 1
SPACES: tuple[str, ...] = ("text", "visual")
DEFAULT_MODELS = {"text": "all-MiniLM-L6-v2", "visual": "efficientnet-lite0"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MAX_PARAMS = 900  # below SQLite's default limit on bound parameters
_JSON = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)

T = TypeVar("T")


def default_kb_path() -> Path:
    """`<user data dir>/corrigo/kb.sqlite` (on Linux `$XDG_DATA_HOME/corrigo/kb.sqlite`)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("corrigo")) / "kb.sqlite"


# ----- result types -----
@dataclass(frozen=True)
class SearchHit:
    """One search result; unpacks as `(knowledge, text_sim, visual_sim)`.

    A sim is the exact float32 cosine between the query and the item's embedding, or
    None if that space was not queried or the item has no embedding there. `score` is
    the weighted mean over the queried spaces (a missing embedding counts 0)."""

    knowledge: Knowledge
    text_sim: float | None
    visual_sim: float | None
    score: float

    def __iter__(self) -> Iterator[Any]:
        return iter((self.knowledge, self.text_sim, self.visual_sim))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> Any:
        return (self.knowledge, self.text_sim, self.visual_sim)[i]


@dataclass(frozen=True)
class HistoryEntry:
    """One version of an item. `item` is the full snapshot (counts as they were then);
    `parent_version` is the version `undo` from here would restore (None: the first)."""

    version: int
    action: str  # add | edit | disable | enable | undo | import
    at: float
    reason: str | None
    parent_version: int | None
    item: Knowledge


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0  # merge: a newer incoming version became a new local version
    unchanged: int = 0  # merge: same content already here
    skipped: int = 0  # merge: the local item is newer
    remapped: dict[int, int] = field(default_factory=dict)  # incoming id -> local id, when the id was taken

    def __str__(self) -> str:
        s = f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped (local newer)"
        return s + (f", {len(self.remapped)} given new ids" if self.remapped else "")


class KnowledgeStore(Protocol):
    """What a knowledge store offers; `SqliteKnowledgeStore` is the implementation."""

    def add(self, k: Knowledge) -> int: ...
    def add_many(self, items: Iterable[Knowledge]) -> List[int]: ...
    def get(self, item_id: int) -> Knowledge: ...
    def update(self, item_id: int, *, reason: str | None = None, **changes: Any) -> Knowledge: ...
    def disable(self, item_id: int, reason: str | None = None) -> Knowledge: ...
    def enable(self, item_id: int, reason: str | None = None) -> Knowledge: ...
    def undo(self, item_id: int, reason: str | None = None) -> Knowledge: ...
    def history(self, item_id: int) -> List[HistoryEntry]: ...
    def record_use(self, item_id: int, outcome: str | None = None, context: Mapping[str, Any] | None = None
                   ) -> Knowledge: ...
    def get_many(self, ids: Iterable[int], with_embeddings: bool = True) -> List[Knowledge]: ...
    def list(self, active_only: bool = True, kind: str | None = None, **scope_filters: Any) -> List[Knowledge]: ...
    def search(self, query_text_emb: np.ndarray | None = None, query_visual_emb: np.ndarray | None = None,
               k: int = 10, filters: Mapping[str, Any] | None = None, min_score: float | None = None
               ) -> List[SearchHit]: ...
    def export_jsonl(self, path: str | os.PathLike[str]) -> int: ...
    def import_jsonl(self, path: str | os.PathLike[str], mode: str = "merge") -> ImportReport: ...
    def stats(self) -> Dict[str, Any]: ...
    def close(self) -> None: ...


# ----- schema -----
def _exec_script(conn: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: executescript() would COMMIT the migration's transaction."""
    stmt = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not stmt.strip():
            continue
        stmt += line
        if sqlite3.complete_statement(stmt):
            conn.execute(stmt)
            stmt = ""
    if stmt.strip():
        raise ValueError(f"incomplete SQL statement in migration: {stmt.strip()[:60]}")


def _migrate_1(conn: sqlite3.Connection) -> None:
    _exec_script(conn, """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused
        uid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('task', 'skill')),
        statement TEXT NOT NULL,
        effect TEXT NOT NULL,
        scope_task TEXT, scope_skill TEXT, scope_object_category TEXT, scope_object TEXT,
        scope_user TEXT, scope_site TEXT,
        provenance TEXT NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        contradictions INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL CHECK (active IN (0, 1)),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        version INTEGER NOT NULL,
        text_emb_version INTEGER,    -- embeddings(item_id, 'text', version) of the current text vector
        visual_emb_version INTEGER
    );
    CREATE INDEX items_kind_active ON items (kind, active);
    CREATE INDEX items_skill ON items (scope_skill);
    CREATE INDEX items_object_category ON items (scope_object_category);
    CREATE TABLE embeddings (
        item_id INTEGER NOT NULL REFERENCES items (id),
        space TEXT NOT NULL CHECK (space IN ('text', 'visual')),
        version INTEGER NOT NULL,  -- the item version that set this vector
        vec BLOB NOT NULL,         -- little-endian float32
        PRIMARY KEY (item_id, space, version)
    );
    CREATE TABLE item_history (
        hid INTEGER PRIMARY KEY AUTOINCREMENT,  -- global change sequence
        item_id INTEGER NOT NULL REFERENCES items (id),
        version INTEGER NOT NULL,
        action TEXT NOT NULL,
        at REAL NOT NULL,
        reason TEXT,
        parent_version INTEGER,
        snapshot TEXT NOT NULL,  -- the item without vectors, plus text_emb_version/visual_emb_version
        UNIQUE (item_id, version)
    );
    CREATE TABLE uses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id INTEGER NOT NULL REFERENCES items (id),
        at REAL NOT NULL,
        outcome TEXT CHECK (outcome IN ('success', 'failure', 'contradicted')),
        context TEXT NOT NULL
    );
    CREATE INDEX uses_item ON uses (item_id);
    -- History and vectors are append-only; only a whole-store replace (which sets the
    -- 'purging' meta key inside its transaction) may delete.
    CREATE TRIGGER item_history_no_update BEFORE UPDATE ON item_history
        BEGIN SELECT RAISE(ABORT, 'item history is append-only'); END;
    CREATE TRIGGER item_history_no_delete BEFORE DELETE ON item_history
        WHEN NOT EXISTS (SELECT 1 FROM meta WHERE key = 'purging')
        BEGIN SELECT RAISE(ABORT, 'item history is append-only'); END;
    CREATE TRIGGER embeddings_no_update BEFORE UPDATE ON embeddings
        BEGIN SELECT RAISE(ABORT, 'embeddings are append-only'); END;
    CREATE TRIGGER embeddings_no_delete BEFORE DELETE ON embeddings
        WHEN NOT EXISTS (SELECT 1 FROM meta WHERE key = 'purging')
        BEGIN SELECT RAISE(ABORT, 'embeddings are append-only'); END;
    CREATE TRIGGER items_no_delete BEFORE DELETE ON items
        WHEN NOT EXISTS (SELECT 1 FROM meta WHERE key = 'purging')
        BEGIN SELECT RAISE(ABORT, 'items are disabled, never deleted'); END;
    """)


# MIGRATIONS[i] takes a store from schema version i to i + 1. Append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1]
SCHEMA_VERSION = len(MIGRATIONS)
_TABLES = {"meta", "items", "embeddings", "item_history", "uses"}

_SCOPE_COLS = tuple(f"scope_{k}" for k in SCOPE_KEYS)
_ITEM_COLS = ("id", "uid", "kind", "statement", "effect") + _SCOPE_COLS + (
    "provenance", "uses", "successes", "contradictions", "active", "created_at", "updated_at", "version",
    "text_emb_version", "visual_emb_version")
_SELECT_ITEMS = (
    "SELECT " + ", ".join(f"i.{c}" for c in _ITEM_COLS) + ", t.vec, v.vec FROM items i "
    "LEFT JOIN embeddings t ON t.item_id = i.id AND t.space = 'text' AND t.version = i.text_emb_version "
    "LEFT JOIN embeddings v ON v.item_id = i.id AND v.space = 'visual' AND v.version = i.visual_emb_version")
_SELECT_ITEMS_NO_VEC = "SELECT " + ", ".join(f"i.{c}" for c in _ITEM_COLS) + ", NULL, NULL FROM items i"
_INSERT_ITEM = f"INSERT INTO items ({', '.join(_ITEM_COLS)}) VALUES ({', '.join('?' * len(_ITEM_COLS))})"


def _vec_blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def _blob_vec(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4").astype(np.float32)


def _row_to_knowledge(r: Sequence[Any]) -> Knowledge:
    n = len(_ITEM_COLS)
    # Validated when written (and the schema's CHECKs hold), so skip re-validation.
    return Knowledge._trusted(
        kind=r[2], statement=r[3], effect=json.loads(r[4]), scope=dict(zip(SCOPE_KEYS, r[5:11])),
        text_embedding=None if r[n] is None else _blob_vec(r[n]),
        visual_embedding=None if r[n + 1] is None else _blob_vec(r[n + 1]),
        provenance=json.loads(r[11]), uses=int(r[12]), successes=int(r[13]), contradictions=int(r[14]),
        active=bool(r[15]), created_at=float(r[16]), updated_at=float(r[17]), version=int(r[18]), id=int(r[0]),
        uid=r[1])


def _item_row(k: Knowledge, item_id: int, version: int, refs: Mapping[str, int | None]) -> tuple[Any, ...]:
    return (item_id, k.uid, k.kind, k.statement, _JSON(k.effect), *(k.scope[s] for s in SCOPE_KEYS),
            _JSON(k.provenance), k.uses, k.successes, k.contradictions, int(k.active), k.created_at,
            k.updated_at, version, refs["text"], refs["visual"])


def _snapshot(k: Knowledge, refs: Mapping[str, int | None], **override: Any) -> str:
    d = k.to_dict(embeddings=False)
    d.update(override)
    d["text_emb_version"] = refs["text"]
    d["visual_emb_version"] = refs["visual"]
    return _JSON(d)


def _check_file(path: Path) -> None:
    """Refuse, without opening it with SQLite, a file that is not an intact store of ours."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(100)
    if not head.startswith(_SQLITE_MAGIC) or len(head) < 100:
        what = "a PNG image" if head.startswith(b"\x89PNG") else "not an SQLite database"
        if head.startswith(_SQLITE_MAGIC):
            what = f"a truncated SQLite file ({size} bytes)"
        raise KnowledgeStoreError(f"{path} is not a corrigo knowledge base ({what}); left it untouched")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id != APPLICATION_ID:
        raise KnowledgeStoreError(
            f"{path} is an SQLite database of another application (application_id {app_id:#x}), "
            "not a corrigo knowledge base; left it untouched")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(head[28:32], "big")
    wal = Path(f"{path}-wal")
    header_size_valid = head[24:28] == head[92:96]  # the in-header page count is current
    # With a non-empty WAL the main file may legitimately lag its header (mid-checkpoint).
    if header_size_valid and n_pages and not (wal.exists() and wal.stat().st_size > 0) \
            and size < n_pages * page_size:
        raise KnowledgeStoreError(
            f"{path} is a corrupt knowledge base: truncated to {size} bytes of {n_pages * page_size}; "
            "left it untouched (restore a backup or an export)")


def _is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _public(fn: Callable[..., T]) -> Callable[..., T]:
    """Run under the store's lock; turn SQLite errors into one-line KnowledgeStoreError."""

    @functools.wraps(fn)
    def wrapper(self: "SqliteKnowledgeStore", *args: Any, **kwargs: Any) -> T:
        with self._lock:
            if self._conn is None:
                raise KnowledgeStoreError(f"the knowledge base {self.path} is closed")
            try:
                return fn(self, *args, **kwargs)
            except KBError:
                raise
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.OperationalError) and _is_busy(e):
                    raise KnowledgeStoreError(
                        f"{self.path} stayed locked by another process for more than {self._busy_timeout_s:g} s"
                    ) from None
                raise KnowledgeStoreError(f"{self.path}: {e}") from None

    return wrapper


class SqliteKnowledgeStore:
    """The knowledge base in one SQLite file. Thread-safe; several processes may share a file.

    `index`: 'auto' (exact below EXACT_MAX_ITEMS embeddings, HNSW above), 'exact' or 'hnsw'.
    `create`: make the file if missing (else KnowledgeStoreError). `text_dim`/`visual_dim`
    are fixed when the file is created (default 384 / 1280) and checked when given later.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True,
                 text_dim: int | None = None, visual_dim: int | None = None, index: str = "auto",
                 persist_index: bool = True, busy_timeout_s: float = 10.0) -> None:
        if index not in ("auto", "exact", "hnsw"):
            raise ValueError(f"index must be auto, exact or hnsw, got {index!r}")
        self.path = Path(path) if path is not None else default_kb_path()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._busy_timeout_s = busy_timeout_s
        self._index_kind = index
        self._persist_index = persist_index
        # Lazily built search state (see _ensure_search_state).
        self._catalog: Catalog | None = None
        self._indexes: dict[str, ExactIndex | HnswIndex] = {}
        self._index_dirty: dict[str, bool] = {}
        self._seen_hid = 0
        self._data_version = -1
        self._generation = ""
        self._written_hid = 0  # the largest history hid of our last write (see _after_write)
        try:
            self._open(create, {"text": text_dim, "visual": visual_dim})
        except KBError:
            self._close_conn()
            raise
        except (sqlite3.DatabaseError, OSError) as e:
            self._close_conn()
            raise KnowledgeStoreError(f"{self.path} is a corrupt or unreadable knowledge base ({e}); "
                                      "left it as it was") from None

    # ----- opening -----
    def _open(self, create: bool, dims: Mapping[str, int | None]) -> None:
        p = self.path
        if p.is_dir():
            raise KnowledgeStoreError(f"{p} is a directory, not a knowledge base file")
        exists = p.exists()
        if not exists and not create:
            raise KnowledgeStoreError(f"no knowledge base at {p}")
        if exists and p.stat().st_size > 0:
            _check_file(p)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn = sqlite3.connect(str(p), timeout=self._busy_timeout_s, isolation_level=None,
                                            check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            self._write(self._claim_new_file)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise KnowledgeStoreError(
                f"{p} was written by a newer corrigo (knowledge base schema v{version}; this one reads up to "
                f"v{SCHEMA_VERSION}); upgrade corrigo")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise KnowledgeStoreError(f"{p}: cannot switch to WAL mode (journal_mode is {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no commit
        if version < SCHEMA_VERSION:
            self._write(lambda c: self._migrate(c, dims))
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not _TABLES <= tables:
            raise KnowledgeStoreError(f"{p} is a corrupt knowledge base: missing table(s) "
                                      f"{', '.join(sorted(_TABLES - tables))}")
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        if meta.get("format") != FORMAT:
            raise KnowledgeStoreError(f"{p} is a corrupt knowledge base: bad format marker {meta.get('format')!r}")
        self.meta = meta
        self.dims = {"text": int(meta["text_dim"]), "visual": int(meta["visual_dim"])}
        for space, want in dims.items():
            if want is not None and want != self.dims[space]:
                raise KnowledgeStoreError(f"{p} stores {self.dims[space]}-d {space} embeddings, not {want}-d")
        self._generation = meta.get("generation", "0")

    def _claim_new_file(self, conn: sqlite3.Connection) -> None:
        """Mark an empty file as ours (inside the write lock: another process may race us)."""
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        if app == APPLICATION_ID:
            return
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise KnowledgeStoreError(f"{self.path} is an SQLite database of another application, not a corrigo "
                                      "knowledge base; left it untouched")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    @staticmethod
    def _migrate(conn: sqlite3.Connection, dims: Mapping[str, int | None]) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](conn)
            if step == 0:
                meta = {"format": FORMAT, "db_uid": uuid.uuid4().hex, "created_at": repr(time.time()),
                        "generation": "0", "text_dim": str(dims["text"] or TEXT_DIM),
                        "visual_dim": str(dims["visual"] or VISUAL_DIM),
                        "text_model": DEFAULT_MODELS["text"], "visual_model": DEFAULT_MODELS["visual"]}
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            conn.execute(f"PRAGMA user_version = {step + 1}")

    # ----- plumbing -----
    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction; retry while another process holds the lock."""
        conn = self._conn
        assert conn is not None
        deadline = time.monotonic() + self._busy_timeout_s
        delay = 0.005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    if self._catalog is not None:
                        self._written_hid = conn.execute("SELECT COALESCE(MAX(hid), 0) FROM item_history"
                                                         ).fetchone()[0]
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.25)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on one consistent snapshot (a read transaction)."""
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _check_dims(self, k: Knowledge) -> None:
        for space, vec in (("text", k.text_embedding), ("visual", k.visual_embedding)):
            if vec is not None and vec.size != self.dims[space]:
                raise InvalidKnowledge(f"{space}_embedding has {vec.size} dimensions; this store holds "
                                       f"{self.dims[space]}-d {space} embeddings")

    def _fetch(self, conn: sqlite3.Connection, item_id: int) -> tuple[Knowledge, dict[str, int | None]]:
        r = conn.execute(_SELECT_ITEMS + " WHERE i.id = ?", (int(item_id),)).fetchone()
        if r is None:
            raise KnowledgeNotFound(f"no knowledge item {item_id} in {self.path}")
        return _row_to_knowledge(r), {"text": r[len(_ITEM_COLS) - 2], "visual": r[len(_ITEM_COLS) - 1]}

    # ----- writing -----
    @_public
    def add(self, k: Knowledge, reason: str | None = None) -> int:
        """Store a new item (version 1); returns its id. `k.id` and `k.version` are ignored."""
        return self.add_many([k], reason=reason)[0]

    @_public
    def add_many(self, items: Iterable[Knowledge], reason: str | None = None) -> List[int]:
        """Store new items in one transaction (all or none); returns their ids in order."""
        items = list(items)
        for k in items:
            if not isinstance(k, Knowledge):
                raise InvalidKnowledge(f"expected a Knowledge item, got {type(k).__name__}")
            self._check_dims(k)
        if not items:
            return []

        def fn(conn: sqlite3.Connection) -> List[int]:
            # We hold the write lock, so the next ids are ours: this lets executemany do the work.
            seq = conn.execute("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'items'), 0), "
                               "COALESCE((SELECT MAX(id) FROM items), 0)").fetchone()
            first = max(seq) + 1
            ids = list(range(first, first + len(items)))
            now = time.time()
            item_rows, emb_rows, hist_rows = [], [], []
            for item_id, k in zip(ids, items):
                refs = {"text": None if k.text_embedding is None else 1,
                        "visual": None if k.visual_embedding is None else 1}
                item_rows.append(_item_row(k, item_id, 1, refs))
                for space, vec in (("text", k.text_embedding), ("visual", k.visual_embedding)):
                    if vec is not None:
                        emb_rows.append((item_id, space, 1, _vec_blob(vec)))
                hist_rows.append((item_id, 1, "add", now, reason, None, _snapshot(k, refs, id=item_id, version=1)))
            try:
                conn.executemany(_INSERT_ITEM, item_rows)
            except sqlite3.IntegrityError as e:
                if "uid" in str(e):
                    raise KnowledgeStoreError("an item with the same uid is already stored; to store a copy, "
                                              "give it a new uid (k.replace(uid=uuid.uuid4().hex))") from None
                raise
            conn.executemany("INSERT INTO embeddings (item_id, space, version, vec) VALUES (?, ?, ?, ?)", emb_rows)
            conn.executemany("INSERT INTO item_history (item_id, version, action, at, reason, parent_version, "
                             "snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)", hist_rows)
            return ids

        ids = self._write(fn)
        if self._catalog is not None:
            self._after_write([k.replace(id=i, version=1) for i, k in zip(ids, items)])
        return ids

    def _new_version(self, conn: sqlite3.Connection, cur: Knowledge, cur_refs: Mapping[str, int | None],
                     new: Knowledge, action: str, reason: str | None, parent: int | None,
                     refs: Mapping[str, int | None] | None = None) -> Knowledge:
        """Write `new`'s content as version cur.version + 1 (counts and identity from `cur`)."""
        assert cur.id is not None
        v = cur.version + 1
        now = time.time()
        if refs is None:  # keep a vector that did not change, write one that did
            refs = {}
            for space in SPACES:
                old, vec = getattr(cur, f"{space}_embedding"), getattr(new, f"{space}_embedding")
                if vec is None:
                    refs[space] = None
                elif old is not None and old.tobytes() == vec.tobytes():
                    refs[space] = cur_refs[space]
                else:
                    conn.execute("INSERT INTO embeddings (item_id, space, version, vec) VALUES (?, ?, ?, ?)",
                                 (cur.id, space, v, _vec_blob(vec)))
                    refs[space] = v
        out = new.replace(id=cur.id, uid=cur.uid, version=v, updated_at=now, created_at=cur.created_at,
                          uses=cur.uses, successes=cur.successes, contradictions=cur.contradictions)
        conn.execute(
            "UPDATE items SET kind = ?, statement = ?, effect = ?, " + ", ".join(f"{c} = ?" for c in _SCOPE_COLS)
            + ", provenance = ?, active = ?, updated_at = ?, version = ?, text_emb_version = ?, "
            "visual_emb_version = ? WHERE id = ?",
            (out.kind, out.statement, _JSON(out.effect), *(out.scope[s] for s in SCOPE_KEYS), _JSON(out.provenance),
             int(out.active), now, v, refs["text"], refs["visual"], cur.id))
        conn.execute("INSERT INTO item_history (item_id, version, action, at, reason, parent_version, snapshot) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (cur.id, v, action, now, reason, parent, _snapshot(out, refs)))
        return out

    @_public
    def update(self, item_id: int, *, reason: str | None = None, **changes: Any) -> Knowledge:
        """Change content fields (EDITABLE_FIELDS; `scope` is replaced whole) as a new version.
        The old version stays in history. No change, no new version."""
        bad = sorted(set(changes) - set(EDITABLE_FIELDS))
        if bad:
            raise InvalidKnowledge(f"cannot update {', '.join(bad)}; editable: {', '.join(EDITABLE_FIELDS)}")

        def fn(conn: sqlite3.Connection) -> Knowledge | None:
            cur, refs = self._fetch(conn, item_id)
            new = cur.replace(**changes)
            self._check_dims(new)
            if new.content_equal(cur):
                return None
            return self._new_version(conn, cur, refs, new, "edit", reason, parent=cur.version)

        out = self._write(fn)
        if out is None:
            return self.get(item_id)
        self._after_write([out])
        return out

    def _set_active(self, item_id: int, active: bool, reason: str | None) -> Knowledge:
        def fn(conn: sqlite3.Connection) -> Knowledge | None:
            cur, refs = self._fetch(conn, item_id)
            if cur.active == active:
                return None
            return self._new_version(conn, cur, refs, cur.replace(active=active), "enable" if active else "disable",
                                     reason, parent=cur.version, refs=refs)

        out = self._write(fn)
        if out is None:
            return self.get(item_id)
        self._after_write([out])
        return out

    @_public
    def disable(self, item_id: int, reason: str | None = None) -> Knowledge:
        """Stop retrieving the item (a new version; nothing is deleted). Already disabled: no-op."""
        return self._set_active(item_id, False, reason)

    @_public
    def enable(self, item_id: int, reason: str | None = None) -> Knowledge:
        return self._set_active(item_id, True, reason)

    @_public
    def undo(self, item_id: int, reason: str | None = None) -> Knowledge:
        """Restore the content the item had before its last change, recorded as a new version.
        Repeated undos walk further back (an undo's own parent is the restored version's parent)."""

        def fn(conn: sqlite3.Connection) -> Knowledge:
            cur, refs = self._fetch(conn, item_id)
            parent = conn.execute("SELECT parent_version FROM item_history WHERE item_id = ? AND version = ?",
                                  (cur.id, cur.version)).fetchone()
            if parent is None or parent[0] is None:
                raise KnowledgeStoreError(f"item {item_id} has nothing to undo (its content is that of its "
                                          "first version)")
            target = int(parent[0])
            row = conn.execute("SELECT parent_version, snapshot FROM item_history WHERE item_id = ? AND version = ?",
                               (cur.id, target)).fetchone()
            snap = json.loads(row[1])
            old_refs = {s: snap.get(f"{s}_emb_version") for s in SPACES}
            vecs = {s: self._load_vec(conn, cur.id, s, old_refs[s]) for s in SPACES}  # type: ignore[arg-type]
            restored = cur.replace(kind=snap["kind"], statement=snap["statement"], effect=snap["effect"],
                                   scope=snap["scope"], provenance=snap["provenance"], active=snap["active"],
                                   text_embedding=vecs["text"], visual_embedding=vecs["visual"])
            return self._new_version(conn, cur, refs, restored, "undo", reason or f"restored version {target}",
                                     parent=row[0], refs=old_refs)

        out = self._write(fn)
        self._after_write([out])
        return out

    @staticmethod
    def _load_vec(conn: sqlite3.Connection, item_id: int, space: str, version: int | None) -> np.ndarray | None:
        if version is None:
            return None
        r = conn.execute("SELECT vec FROM embeddings WHERE item_id = ? AND space = ? AND version = ?",
                         (item_id, space, version)).fetchone()
        if r is None:
            raise KnowledgeStoreError(f"item {item_id}: its {space} embedding of version {version} is missing")
        return _blob_vec(r[0])

    @_public
    def record_use(self, item_id: int, outcome: str | None = None,
                   context: Mapping[str, Any] | None = None) -> Knowledge:
        """Count a retrieval that was acted on: outcome 'success', 'failure', 'contradicted' (the
        operator corrected against it) or None (unknown). Logged in `uses`; not a new version."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidKnowledge(f"outcome must be one of {', '.join(OUTCOMES)} or None, got {outcome!r}")
        try:
            ctx = _JSON(dict(context or {}))
        except (TypeError, ValueError) as e:
            raise InvalidKnowledge(f"context must be JSON-serialisable: {e}") from None

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE items SET uses = uses + 1, successes = successes + ?, "
                               "contradictions = contradictions + ? WHERE id = ?",
                               (int(outcome == "success"), int(outcome == "contradicted"), int(item_id)))
            if cur.rowcount == 0:
                raise KnowledgeNotFound(f"no knowledge item {item_id} in {self.path}")
            conn.execute("INSERT INTO uses (item_id, at, outcome, context) VALUES (?, ?, ?, ?)",
                         (int(item_id), time.time(), outcome, ctx))

        self._write(fn)
        return self.get(item_id)

    # ----- reading -----
    @_public
    def get(self, item_id: int) -> Knowledge:
        return self._read(lambda c: self._fetch(c, item_id)[0])

    @_public
    def get_many(self, ids: Iterable[int], with_embeddings: bool = True) -> List[Knowledge]:
        """Items in the order of `ids`; ids not in the store are skipped."""
        ids = [int(i) for i in ids]
        base = _SELECT_ITEMS if with_embeddings else _SELECT_ITEMS_NO_VEC

        def fn(conn: sqlite3.Connection) -> List[Knowledge]:
            found: dict[int, Knowledge] = {}
            for s in range(0, len(ids), _MAX_PARAMS):
                chunk = ids[s: s + _MAX_PARAMS]
                for r in conn.execute(base + f" WHERE i.id IN ({','.join('?' * len(chunk))})", chunk):
                    found[r[0]] = _row_to_knowledge(r)
            return [found[i] for i in ids if i in found]

        return self._read(fn)

    def __contains__(self, item_id: object) -> bool:
        with self._lock:
            assert self._conn is not None
            return self._conn.execute("SELECT 1 FROM items WHERE id = ?", (int(item_id),)).fetchone() is not None  # type: ignore[call-overload]

    @staticmethod
    def _where(filters: Mapping[str, Any], scope_match: str) -> tuple[str, list[Any]]:
        if scope_match not in SCOPE_MATCHES:
            raise ValueError(f"scope_match must be one of {', '.join(SCOPE_MATCHES)}")
        clauses: list[str] = []
        params: list[Any] = []
        if filters.get("active") is not None:
            clauses.append("i.active = ?")
            params.append(int(bool(filters["active"])))
        kinds = as_values(filters.get("kind"))
        if kinds is not None:
            clauses.append(f"i.kind IN ({','.join('?' * len(kinds))})")
            params += kinds
        for key in SCOPE_KEYS:
            if key not in filters:
                continue
            col = f"i.scope_{key}"
            values = as_values(filters[key])
            if values is None:
                if scope_match == "exact":
                    clauses.append(f"{col} IS NULL")
                continue
            inside = f"{col} IN ({','.join('?' * len(values))})"
            clauses.append(f"({col} IS NULL OR {inside})" if scope_match == "applies" else inside)
            params += values
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    @_public
    def list(self, active_only: bool = True, kind: str | None = None, *, scope_match: str = "applies",
             limit: int | None = None, offset: int = 0, with_embeddings: bool = True,
             **scope_filters: str | Sequence[str] | None) -> List[Knowledge]:
        """Items by id. Scope filters (task=, skill=, object_category=, object=, user=, site=; a
        value or a list of values): with scope_match 'applies', an item whose scope key is None
        (applies to anything) passes too; with 'exact' only equal values pass."""
        filters = check_filters({**scope_filters, "kind": kind, "active": True if active_only else None})
        return self._select(filters, scope_match, limit=limit, offset=offset, with_embeddings=with_embeddings)

    def _select(self, filters: Mapping[str, Any], scope_match: str, *, order: str = "i.id", limit: int | None = None,
                offset: int = 0, with_embeddings: bool = True) -> List[Knowledge]:
        where, params = self._where(filters, scope_match)
        sql = (_SELECT_ITEMS if with_embeddings else _SELECT_ITEMS_NO_VEC) + where + " ORDER BY " + order
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        return self._read(lambda c: [_row_to_knowledge(r) for r in c.execute(sql, params)])

    @_public
    def count(self, active_only: bool = True, kind: str | None = None, *, scope_match: str = "applies",
              **scope_filters: str | Sequence[str] | None) -> int:
        filters = check_filters({**scope_filters, "kind": kind, "active": True if active_only else None})
        where, params = self._where(filters, scope_match)
        assert self._conn is not None
        return int(self._conn.execute("SELECT COUNT(*) FROM items i" + where, params).fetchone()[0])

    @_public
    def history(self, item_id: int) -> List[HistoryEntry]:
        """Every version of the item, oldest first, each with its full snapshot (embeddings too)."""

        def fn(conn: sqlite3.Connection) -> List[HistoryEntry]:
            self._fetch(conn, item_id)  # raises if missing
            vecs = {(s, v): _blob_vec(b) for s, v, b in conn.execute(
                "SELECT space, version, vec FROM embeddings WHERE item_id = ?", (int(item_id),))}
            out = []
            for version, action, at, reason, parent, snap in conn.execute(
                    "SELECT version, action, at, reason, parent_version, snapshot FROM item_history "
                    "WHERE item_id = ? ORDER BY version", (int(item_id),)):
                out.append(HistoryEntry(version, action, at, reason, parent, _snapshot_item(snap, vecs)))
            return out

        return self._read(fn)

    # ----- search -----
    @_public
    def search(self, query_text_emb: np.ndarray | None = None, query_visual_emb: np.ndarray | None = None,
               k: int = 10, filters: Mapping[str, Any] | None = None, min_score: float | None = None, *,
               weights: tuple[float, float] = (1.0, 1.0), scope_match: str = "applies") -> List[SearchHit]:
        """The k items most similar to the query embeddings that pass `filters`, best first.

        `filters`: kind, active (default True; None = both), and scope keys (task, skill,
        object_category, object, user, site), each a value or a list; see `list` for
        `scope_match`. With both queries, candidates come from each space's index and are
        ranked by `weights`-weighted mean cosine. With neither, the filtered items are
        returned by `Knowledge.rank_key` (evidence, then recency) with sims None.
        """
        filters = check_filters({"active": True, **(filters or {})})
        if k <= 0:
            return []
        queries: dict[str, np.ndarray] = {}
        for space, q in (("text", query_text_emb), ("visual", query_visual_emb)):
            if q is not None:
                arr = np.asarray(q, dtype=np.float32).reshape(-1)
                if arr.size != self.dims[space]:
                    raise InvalidKnowledge(f"{space} query has {arr.size} dimensions; this store holds "
                                           f"{self.dims[space]}-d {space} embeddings")
                norm = float(np.linalg.norm(arr))
                if not np.isfinite(norm) or norm == 0:
                    raise InvalidKnowledge(f"{space} query is zero or not finite")
                queries[space] = arr / norm
        if not queries:  # most evidence, then most recent: Knowledge.rank_key, in SQL
            ranked = self._select(filters, scope_match, order="(i.successes - 2 * i.contradictions) DESC, "
                                  "i.updated_at DESC, i.id DESC", limit=k)
            return [SearchHit(x, None, None, 0.0) for x in ranked]
        self._ensure_search_state()
        assert self._catalog is not None
        mask = self._catalog.mask(filters, scope_match)
        # Over-fetch a little from HNSW: its order is approximate, the final ranking is exact.
        if len(queries) > 1:  # the union of both spaces' candidates is re-ranked by the weighted score
            fetch = 2 * k + 10
        else:
            fetch = k if isinstance(self._indexes[next(iter(queries))], ExactIndex) else k + 10
        candidates: list[int] = []
        for space, q in queries.items():
            ids, _ = self._indexes[space].search(q, fetch, allowed_ids=mask)
            candidates += [int(i) for i in ids]
        items = self.get_many(dict.fromkeys(candidates))
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

    def _ensure_search_state(self) -> None:
        if self._catalog is None:
            self._build_search_state()
        else:
            self._refresh()

    def _build_search_state(self, progress: Callable[[str, int, int], None] | None = None) -> None:
        assert self._conn is not None
        self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]

        def fn(conn: sqlite3.Connection) -> tuple[Catalog, dict[str, Any], int, str, dict[str, int]]:
            max_hid = conn.execute("SELECT COALESCE(MAX(hid), 0) FROM item_history").fetchone()[0]
            generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            cat = Catalog()
            cur = conn.execute("SELECT id, kind, active, " + ", ".join(_SCOPE_COLS) + " FROM items")
            while rows := cur.fetchmany(50_000):
                cat.upsert_rows(rows)
            indexes: dict[str, Any] = {}
            stale_from: dict[str, int] = {}
            for space in SPACES:
                loaded = self._load_index_cache(space, generation, max_hid)
                if loaded is not None:
                    indexes[space], stale_from[space] = loaded
                    continue
                n = conn.execute(f"SELECT COUNT(*) FROM items WHERE {space}_emb_version IS NOT NULL").fetchone()[0]
                index = make_index(self.dims[space], n, self._index_kind)
                cur = conn.execute(f"SELECT i.id, e.vec FROM items i JOIN embeddings e ON e.item_id = i.id AND "
                                   f"e.space = '{space}' AND e.version = i.{space}_emb_version")
                done = 0
                while rows := cur.fetchmany(20_000):
                    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
                    index.add(np.fromiter((r[0] for r in rows), np.int64, len(rows)), vecs)
                    done += len(rows)
                    if progress is not None:
                        progress(space, done, n)
                indexes[space] = index
                self._index_dirty[space] = True
            return cat, indexes, max_hid, generation, stale_from

        cat, indexes, max_hid, generation, stale_from = self._read(fn)
        self._catalog, self._indexes, self._seen_hid, self._generation = cat, indexes, max_hid, generation
        for space, since in stale_from.items():  # a cached index older than the db: replay changes
            if since < max_hid:
                self._reload_changed(since, max_hid)

    def _refresh(self) -> None:
        """Catch up with other processes' commits (cheap when there were none)."""
        assert self._conn is not None
        dv = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if dv == self._data_version:
            return

        def fn(conn: sqlite3.Connection) -> tuple[int, str]:
            return (conn.execute("SELECT COALESCE(MAX(hid), 0) FROM item_history").fetchone()[0],
                    conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

        max_hid, generation = self._read(fn)
        if generation != self._generation:  # the whole store was replaced: start over
            self._catalog, self._indexes = None, {}
            self._build_search_state()
            return
        if max_hid > self._seen_hid:
            self._reload_changed(self._seen_hid, max_hid)
        self._seen_hid = max(self._seen_hid, max_hid)
        self._data_version = dv

    def _reload_changed(self, after_hid: int, upto_hid: int) -> None:
        assert self._conn is not None
        ids = [r[0] for r in self._conn.execute(
            "SELECT DISTINCT item_id FROM item_history WHERE hid > ? AND hid <= ?", (after_hid, upto_hid))]
        for s in range(0, len(ids), 10_000):
            self._index_items(self.get_many(ids[s: s + 10_000]))

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
            self._index_dirty[space] = True
            if self._index_kind == "auto" and isinstance(index, ExactIndex) and len(index) >= 2 * EXACT_MAX_ITEMS:
                hnsw = HnswIndex(self.dims[space])  # the store outgrew exact search during this session
                hnsw.add(index.ids(), index.get(index.ids()))
                self._indexes[space] = hnsw

    def _after_write(self, items: Sequence[Knowledge]) -> None:
        if self._catalog is None:
            return
        self._index_items(items)
        assert self._conn is not None
        # If nobody else committed since our last sync, everything up to our own commit is indexed.
        if self._conn.execute("PRAGMA data_version").fetchone()[0] == self._data_version:
            self._seen_hid = max(self._seen_hid, self._written_hid)

    # ----- index cache (HNSW only: exact indexes rebuild quickly) -----
    # `<db>.<space>.usearch.json` (the stamp) names the index file `<db>.<space>.<token>.usearch`
    # it describes. Each save writes a new token file, then swaps the stamp atomically, so two
    # processes closing at once never pair one's stamp with the other's index.
    def _stamp_path(self, space: str) -> Path:
        return Path(f"{self.path}.{space}.usearch.json")

    def _load_index_cache(self, space: str, generation: str, max_hid: int) -> tuple[HnswIndex, int] | None:
        if not self._persist_index or self._index_kind == "exact":
            return None
        try:
            stamp = json.loads(self._stamp_path(space).read_text())
            ipath = self.path.with_name(str(stamp["file"]))
            if (stamp.get("db_uid") != self.meta["db_uid"] or stamp.get("generation") != generation
                    or stamp.get("dim") != self.dims[space] or int(stamp.get("hid", -1)) > max_hid
                    or stamp.get("size") != ipath.stat().st_size):
                return None
            index = HnswIndex.load(ipath, self.dims[space])
        except (OSError, ValueError, RuntimeError, KeyError, TypeError):
            return None  # missing, stale or damaged: rebuild from SQLite
        self._index_dirty[space] = False
        return index, int(stamp["hid"])

    def _save_index_caches(self) -> None:
        for space, index in self._indexes.items():
            if not isinstance(index, HnswIndex) or not self._index_dirty.get(space):
                continue
            spath = self._stamp_path(space)
            ipath = Path(f"{self.path}.{space}.{uuid.uuid4().hex[:12]}.usearch")
            tmp_s = Path(f"{spath}.tmp{os.getpid()}")
            try:
                old = json.loads(spath.read_text()).get("file") if spath.exists() else None
            except (OSError, ValueError):
                old = None
            try:
                index.save(ipath)
                stamp = {"file": ipath.name, "db_uid": self.meta["db_uid"], "generation": self._generation,
                         "hid": self._seen_hid, "dim": self.dims[space], "size": ipath.stat().st_size,
                         "vectors": len(index), "saved_at": time.time()}
                tmp_s.write_text(json.dumps(stamp))
                os.replace(tmp_s, spath)
                self._index_dirty[space] = False
                if old and old != ipath.name:
                    self.path.with_name(str(old)).unlink(missing_ok=True)
            except OSError:  # a cache: failing to write it is not an error
                ipath.unlink(missing_ok=True)
                tmp_s.unlink(missing_ok=True)

    @_public
    def save_index(self) -> None:
        """Write the HNSW index cache now (close() does it too)."""
        if self._persist_index:
            self._save_index_caches()

    @_public
    def build_index(self, progress: Callable[[str, int, int], None] | None = None) -> Dict[str, str]:
        """Build (or catch up) the search index now instead of on the first search; returns the
        index kind per space. `progress(space, done, total)` is called while vectors are added."""
        if self._catalog is None:
            self._build_search_state(progress)
        else:
            self._refresh()
        return {s: i.kind for s, i in self._indexes.items()}

    def index_info(self) -> Dict[str, Dict[str, Any]]:
        """Per space: index kind, vector count, bytes in memory (empty before the first search)."""
        with self._lock:
            return {s: {"kind": i.kind, "vectors": len(i), "bytes": i.nbytes} for s, i in self._indexes.items()}

    # ----- export / import -----
    @_public
    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every item (with its history, old embeddings and use log) as JSON lines after a
        header line; returns the number of items. Written to a temporary file, then renamed."""
        out = Path(path)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")

        def fn(conn: sqlite3.Connection) -> int:
            n, max_id = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM items").fetchone()
            header = {"format": EXPORT_FORMAT, "export_version": EXPORT_VERSION, "schema_version": SCHEMA_VERSION,
                      "text_dim": self.dims["text"], "visual_dim": self.dims["visual"],
                      "text_model": self.meta.get("text_model"), "visual_model": self.meta.get("visual_model"),
                      "count": n, "max_id": max_id, "exported_at": time.time()}
            c2, c3, c4 = conn.cursor(), conn.cursor(), conn.cursor()
            hist = _group_by_first(c2.execute(
                "SELECT item_id, version, action, at, reason, parent_version, snapshot FROM item_history "
                "ORDER BY item_id, version"))
            embs = _group_by_first(c3.execute(
                "SELECT item_id, space, version, vec FROM embeddings ORDER BY item_id, space, version"))
            uses = _group_by_first(c4.execute("SELECT item_id, at, outcome, context FROM uses ORDER BY item_id, id"))
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(_JSON(header) + "\n")
                for r in conn.execute(_SELECT_ITEMS + " ORDER BY i.id"):
                    k = _row_to_knowledge(r)
                    current = {("text", r[len(_ITEM_COLS) - 2]), ("visual", r[len(_ITEM_COLS) - 1])}
                    rec = {
                        "item": k.to_dict(),
                        "history": [{"version": v, "action": a, "at": at, "reason": why, "parent_version": p,
                                     "snapshot": json.loads(s)} for _, v, a, at, why, p, s in hist.take(k.id)],
                        # Vectors of older versions; the current ones are in "item".
                        "embeddings": [{"space": s, "version": v, "vec": encode_vector(_blob_vec(b))}
                                       for _, s, v, b in embs.take(k.id) if (s, v) not in current],
                        "uses": [{"at": at, "outcome": o, "context": json.loads(c)} for _, at, o, c in uses.take(k.id)],
                    }
                    f.write(_JSON(rec) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return int(n)

        try:
            n = self._read(fn)
            os.replace(tmp, out)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise KnowledgeStoreError(f"cannot write {out}: {e.strerror or e}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return n

    @_public
    def import_jsonl(self, path: str | os.PathLike[str], mode: str = "merge") -> ImportReport:
        """Read an `export_jsonl` file in one transaction (a bad line imports nothing).

        mode 'replace': the store becomes exactly the file (ids, versions, history, vectors,
        use log). mode 'merge': items are matched by uid; a new one is added with its history
        (keeping its id when free); a known one whose incoming version is newer
        (updated_at) becomes a new local version (action 'import', use counts: the larger);
        otherwise it is left alone."""
        if mode not in ("merge", "replace"):
            raise ValueError(f"mode must be merge or replace, got {mode!r}")
        src = Path(path)
        try:
            f = open(src, encoding="utf-8")
        except OSError as e:
            raise KnowledgeStoreError(f"cannot read {src}: {e.strerror or e}") from None
        with f:
            lines = iter(enumerate(f, 1))
            try:
                _, first = next(lines)
            except StopIteration:
                raise KnowledgeStoreError(f"{src} is empty, not a corrigo knowledge base export") from None
            header = _parse_json_line(src, 1, first)
            if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
                raise KnowledgeStoreError(f"{src} is not a corrigo knowledge base export (bad header line)")
            if int(header.get("export_version", 0)) > EXPORT_VERSION:
                raise KnowledgeStoreError(f"{src} was exported by a newer corrigo (export v{header['export_version']})")
            for space in SPACES:
                if header.get(f"{space}_dim") != self.dims[space]:
                    raise KnowledgeStoreError(f"{src} holds {header.get(f'{space}_dim')}-d {space} embeddings; "
                                              f"this store holds {self.dims[space]}-d")
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
                        rec = _ImportRecord.parse(_parse_json_line(src, lineno, line), self.dims)
                    except (KBError, ValueError, KeyError, TypeError) as e:
                        raise KnowledgeStoreError(f"{src}:{lineno}: {e}") from None
                    self._import_record(conn, rec, report, src, int(header.get("max_id") or 0))
                return report

            self._write(fn)
        if mode == "replace":
            self._catalog, self._indexes = None, {}
            assert self._conn is not None
            self._generation = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        elif self._catalog is not None:
            self._refresh_own_import()
        return report

    def _refresh_own_import(self) -> None:
        # Imported items come with their own history rows: re-read everything after our last sync.
        assert self._conn is not None
        max_hid = self._conn.execute("SELECT COALESCE(MAX(hid), 0) FROM item_history").fetchone()[0]
        self._reload_changed(self._seen_hid, max_hid)

    def _import_record(self, conn: sqlite3.Connection, rec: "_ImportRecord", report: ImportReport, src: Path,
                       file_max_id: int) -> None:
        k = rec.item
        assert k.id is not None
        local = conn.execute("SELECT id FROM items WHERE uid = ?", (k.uid,)).fetchone()
        if local is not None:  # merge only (replace emptied the store)
            cur, refs = self._fetch(conn, local[0])
            if cur.content_equal(k):
                report.unchanged += 1
            elif k.updated_at > cur.updated_at:  # type: ignore[operator]
                self._new_version(conn, cur, refs, k, "import", f"imported from {src.name}", parent=cur.version)
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
        conn.execute(_INSERT_ITEM, _item_row(k, item_id, k.version, rec.current_refs))
        conn.executemany("INSERT INTO embeddings (item_id, space, version, vec) VALUES (?, ?, ?, ?)",
                         [(item_id, s, v, _vec_blob(vec)) for (s, v), vec in rec.vectors.items()])
        conn.executemany(
            "INSERT INTO item_history (item_id, version, action, at, reason, parent_version, snapshot) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(item_id, h["version"], h["action"], h["at"], h["reason"], h["parent_version"],
              _JSON({**h["snapshot"], "id": item_id})) for h in rec.history])
        conn.executemany("INSERT INTO uses (item_id, at, outcome, context) VALUES (?, ?, ?, ?)",
                         [(item_id, u["at"], u["outcome"], _JSON(u["context"])) for u in rec.uses])
        report.added += 1

    # ----- housekeeping -----
    @_public
    def stats(self) -> Dict[str, Any]:
        """Counts by kind / active / skill, use totals, sizes on disk and in memory."""
        def fn(conn: sqlite3.Connection) -> Dict[str, Any]:
            by_kind: dict[str, dict[str, int]] = {}
            for kind, active, n in conn.execute("SELECT kind, active, COUNT(*) FROM items GROUP BY kind, active"):
                by_kind.setdefault(kind, {"active": 0, "inactive": 0})["active" if active else "inactive"] = n
            by_skill = {s or "(any)": n for s, n in conn.execute(
                "SELECT scope_skill, COUNT(*) FROM items WHERE active = 1 GROUP BY scope_skill ORDER BY 2 DESC")}
            total, active, uses, succ, contra = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(active), 0), COALESCE(SUM(uses), 0), COALESCE(SUM(successes), 0), "
                "COALESCE(SUM(contradictions), 0) FROM items").fetchone()
            emb = {s: conn.execute(f"SELECT COUNT(*) FROM items WHERE {s}_emb_version IS NOT NULL").fetchone()[0]
                   for s in SPACES}
            return {
                "path": str(self.path), "schema_version": SCHEMA_VERSION, "items": total, "active": active,
                "inactive": total - active, "by_kind": by_kind, "active_by_skill": by_skill, "uses": uses,
                "successes": succ, "contradictions": contra,
                "use_log_rows": conn.execute("SELECT COUNT(*) FROM uses").fetchone()[0],
                "history_rows": conn.execute("SELECT COUNT(*) FROM item_history").fetchone()[0],
                "embeddings": emb, "dims": dict(self.dims),
                "models": {s: self.meta.get(f"{s}_model") for s in SPACES},
            }

        out = self._read(fn)
        wal = Path(f"{self.path}-wal")
        out["db_bytes"] = self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        out["index"] = {s: (f"{i.kind} ({len(i)} vectors, {i.nbytes} bytes)") for s, i in self._indexes.items()} \
            or "not built (built on the first search)"
        return out

    @_public
    def check(self) -> List[str]:
        """Problems found (empty: consistent): SQLite integrity, foreign keys, and that every
        item has its current history row and embedding rows of the right size."""
        assert self._conn is not None
        conn = self._conn
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {r}" for r in conn.execute("PRAGMA foreign_key_check")]
        problems += [f"item {r[0]}: no history row for its version {r[1]}" for r in conn.execute(
            "SELECT i.id, i.version FROM items i LEFT JOIN item_history h ON h.item_id = i.id AND "
            "h.version = i.version WHERE h.item_id IS NULL")]
        for space in SPACES:
            problems += [f"item {r[0]}: {space} embedding of version {r[1]} is missing" for r in conn.execute(
                f"SELECT i.id, i.{space}_emb_version FROM items i LEFT JOIN embeddings e ON e.item_id = i.id AND "
                f"e.space = '{space}' AND e.version = i.{space}_emb_version "
                f"WHERE i.{space}_emb_version IS NOT NULL AND e.item_id IS NULL")]
            problems += [f"item {r[0]}: a {space} embedding has {r[1]} bytes, not {4 * self.dims[space]}"
                         for r in conn.execute("SELECT item_id, length(vec) FROM embeddings WHERE space = ? AND "
                                               "length(vec) != ?", (space, 4 * self.dims[space]))]
        return problems

    def close(self) -> None:
        """Save the HNSW index cache if it changed, then close the file. Idempotent."""
        with self._lock:
            if self._conn is None:
                return
            try:
                if self._persist_index:
                    self._save_index_caches()
            finally:
                self._close_conn()
                self._catalog, self._indexes = None, {}

    def __enter__(self) -> "SqliteKnowledgeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteKnowledgeStore({str(self.path)!r}{'' if self._conn else ', closed'})"


# ----- helpers -----
def _snapshot_item(snap: str, vecs: Mapping[tuple[str, int], np.ndarray]) -> Knowledge:
    d = json.loads(snap)
    refs = {s: d.pop(f"{s}_emb_version", None) for s in SPACES}
    d.update({f"{s}_embedding": vecs.get((s, refs[s])) if refs[s] is not None else None for s in SPACES})
    return Knowledge.from_dict(d)


class _group_by_first:
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


def _parse_json_line(src: Path, lineno: int, line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as e:
        raise KnowledgeStoreError(f"{src}:{lineno}: not valid JSON ({e})") from None


@dataclass
class _ImportRecord:
    """One validated line of an export."""

    item: Knowledge
    history: list[dict[str, Any]]
    vectors: dict[tuple[str, int], np.ndarray]  # (space, version) -> vector, current ones included
    current_refs: dict[str, int | None]
    uses: list[dict[str, Any]]

    @classmethod
    def parse(cls, rec: Any, dims: Mapping[str, int]) -> "_ImportRecord":
        if not isinstance(rec, dict) or "item" not in rec:
            raise ValueError("expected an object with an 'item'")
        item = Knowledge.from_dict(rec["item"])
        if item.id is None:
            raise ValueError("the item has no id")
        history = list(rec.get("history") or [])
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
            if h.get("action") not in ("add", "edit", "disable", "enable", "undo", "import"):
                raise ValueError(f"unknown history action {h.get('action')!r}")
        uses = list(rec.get("uses") or [])
        for u in uses:
            if u.get("outcome") is not None and u["outcome"] not in OUTCOMES:
                raise ValueError(f"unknown use outcome {u['outcome']!r}")
        return cls(item, history, vectors, refs, uses)


# ----- opening by spec (the `--kb` option) -----
_STORES: dict[str, Callable[[str], Any]] = {}


def register_store(scheme: str, factory: Callable[[str], Any]) -> None:
    """Make `--kb SCHEME:ARG` open `factory(ARG)`."""
    _STORES[scheme] = factory


register_store("sqlite", lambda arg: SqliteKnowledgeStore(arg or None))


def open_store(spec: str | os.PathLike[str] | None = None, **kwargs: Any) -> SqliteKnowledgeStore:
    """Open a store from a spec: None or 'default' (default_kb_path()), 'sqlite:PATH', or a path.
    Keyword arguments go to SqliteKnowledgeStore (plain paths and sqlite: only)."""
    if spec is None or str(spec) in ("", "default"):
        return SqliteKnowledgeStore(None, **kwargs)
    s = str(spec)
    scheme, sep, arg = s.partition(":")
    if sep and scheme in _STORES and not (len(scheme) == 1 and os.name == "nt"):
        if scheme == "sqlite":
            return SqliteKnowledgeStore(arg or None, **kwargs)
        return _STORES[scheme](arg)  # type: ignore[no-any-return]
    return SqliteKnowledgeStore(s, **kwargs)
