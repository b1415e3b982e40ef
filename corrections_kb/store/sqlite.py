"""`SqliteKnowledgeStore`: the knowledge base in one SQLite file.

Tables (see schema.py):
- `items`: the current row of every item (content, scope columns, counts, active flag,
  and which embedding versions are current).
- `embeddings`: float32 BLOBs beside each item, keyed (item, space, version). A vector is
  written once, at the item version that set it; edits that keep it only point at it,
  so history costs no extra vector bytes and undo can restore an old embedding.
- `item_history`: every version of every item (add, edit, disable, enable, undo, import)
  as a JSON snapshot. Append-only, enforced by triggers: nothing but `import_jsonl(...,
  mode="replace")` deletes from it. Its `hid` is a global change sequence that other
  processes use to keep their in-memory search index in sync (search.py).
- `uses`: one row per `record_use` (time, outcome, context).
- `meta`: format marker, dims, embedding model names, effect schema, a random db uid, a
  generation counter bumped when the whole store is replaced.

Safety: the file is checked before SQLite touches it (magic bytes, our
`application_id`, truncation), so a foreign or corrupt file gives one-line
`KnowledgeStoreError` and is left byte-for-byte unchanged. Every write is one
`BEGIN IMMEDIATE` transaction (a killed process leaves the last committed state), in
WAL mode with a busy timeout and retries so several processes can write at once.

A corrupt store is never written. Opening checks the file once: the whole of `check()`
(SQLite's integrity_check, foreign keys, every item's history and vectors) when the file
is at most FULL_CHECK_MAX_BYTES (milliseconds for a few thousand items), else SQLite's
quick_check (about 0.1 s per 100 MB). On a problem the store stays open for reading
(so `corrigo kb check`, `list`, `show` and `export` can rescue what is readable), `corrupt`
says why, and every write raises a one-line KnowledgeStoreError naming the file and
`corrigo kb check`. A corruption SQLite meets later (SQLITE_CORRUPT) does the same from
then on. Anything that fails to decode (bad UTF-8, JSON, a vector blob, a field of the
wrong type) becomes a KnowledgeStoreError naming the file at the public methods.

A new file is built beside its final name and linked into place, so no process ever sees
a half-made store, and a 0-byte file is never taken for a new store: it is refused
unless `new=True` (`--kb new:PATH`, `corrigo kb init`) asks for a new store there.
"""
from __future__ import annotations

import functools
import json
import os
import random
import resource
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Sequence, TypeVar

import numpy as np

from corrections_kb.catalog import SCOPE_MATCHES, as_values, check_filters
from corrections_kb.errors import InvalidKnowledge, KBError, KnowledgeNotFound, KnowledgeStoreError
from corrections_kb.knowledge import EDITABLE_FIELDS, OUTCOMES, SCOPE_KEYS, Knowledge
import corrections_kb.store.exchange as exchange
import corrections_kb.store.schema as schema
from corrections_kb.store.protocol import HistoryEntry, ImportReport, SearchHit
from corrections_kb.store.rows import (
    INSERT_EMBEDDING, INSERT_HISTORY, INSERT_ITEM, JSON, MAX_PARAMS, SCOPE_COLS, SELECT_ITEMS,
    SELECT_ITEMS_NO_VEC, SPACES, StoredRowError, blob_vec, item_row, row_refs, row_to_knowledge, snapshot, snapshot_item, vec_blob,
)
from corrections_kb.store.search import SearchIndexes, query_vectors, rank_hits

T = TypeVar("T")


def default_kb_path() -> Path:
    """`<user data dir>/corrigo/kb.sqlite` (on Linux `$XDG_DATA_HOME/corrigo/kb.sqlite`)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("corrigo")) / "kb.sqlite"


FULL_CHECK_MAX_BYTES = 64 << 20  # up to this size, open runs the whole check(); above, quick_check
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_IOERR, _SQLITE_NOTADB = 11, 13, 10, 26


def _is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _primary_code(e: sqlite3.Error) -> int:
    return int(getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF


def _looks_full(path: Path) -> bool:
    """An I/O error on write is a full disk when space is short or a file size limit is set
    (SQLite reports EFBIG and ENOSPC mid-page as SQLITE_IOERR, not SQLITE_FULL)."""
    try:
        if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
            return True
        return shutil.disk_usage(path.parent).free < (64 << 20)
    except (OSError, ValueError):
        return False


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_hint(path: Path) -> str:
    return f"run `corrigo kb check --kb {path}`"


def _public(fn: Callable[..., T]) -> Callable[..., T]:
    """Run under the store's lock; turn SQLite and decoding errors into one-line KnowledgeStoreError
    naming the file (the store's boundary: nothing else escapes from reading a damaged file)."""

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
                raise self._sqlite_error(e) from None
            except (UnicodeDecodeError, json.JSONDecodeError, StoredRowError) as e:
                raise KnowledgeStoreError(f"{self.path} holds data that cannot be read ({_one_line(e)}); "
                                          f"{_check_hint(self.path)}") from None
            except (TypeError, ValueError, KeyError, IndexError, AttributeError):
                # On a file known to be damaged (a broken index can hide rows: fetchone() gives
                # None) any such failure is the damage; on a sound one it is a bug: let it show.
                if self._corrupt is None:
                    raise
                raise KnowledgeStoreError(self._corrupt) from None

    return wrapper


class SqliteKnowledgeStore:
    """The knowledge base in one SQLite file. Thread-safe; several processes may share a file.
    Implements `KnowledgeStore` (corrections_kb/store/protocol.py).

    `index`: 'auto' (exact below EXACT_MAX_ITEMS embeddings, HNSW above), 'exact' or 'hnsw'.
    `create`: make the file if missing (else KnowledgeStoreError). `new`: make a new store
    at `path`, which must be missing or a 0-byte file (an existing store is refused); without
    it a 0-byte file is refused, not silently made a store. `text_dim`/`visual_dim` are
    fixed when the file is created (default 384 / 1280) and checked when given later.
    `corrupt`: None, or why this store refuses every write (see the module docstring).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True, new: bool = False,
                 text_dim: int | None = None, visual_dim: int | None = None, index: str = "auto",
                 persist_index: bool = True, busy_timeout_s: float = 10.0) -> None:
        if index not in ("auto", "exact", "hnsw"):
            raise ValueError(f"index must be auto, exact or hnsw, got {index!r}")
        self.path = Path(path) if path is not None else default_kb_path()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._busy_timeout_s = busy_timeout_s
        self._search = SearchIndexes(self, index, persist_index)
        self._corrupt: str | None = None  # see `corrupt`
        try:
            self._open(create, new, {"text": text_dim, "visual": visual_dim})
        except sqlite3.DatabaseError as e:
            self._close_conn()
            if _primary_code(e) in (_SQLITE_FULL, _SQLITE_IOERR) or _is_busy(e):
                raise self._sqlite_error(e) from None
            raise KnowledgeStoreError(f"{self.path} is a corrupt or unreadable knowledge base ({_one_line(e)}); "
                                      f"left it as it was; {_check_hint(self.path)}") from None
        except OSError as e:
            self._close_conn()
            raise KnowledgeStoreError(f"cannot open the knowledge base {self.path}: {e.strerror or e}") from None
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:  # a damaged schema or meta table
            self._close_conn()
            raise KnowledgeStoreError(f"{self.path} is a corrupt knowledge base (cannot decode it: {_one_line(e)}); "
                                      "left it as it was") from None
        except BaseException:
            self._close_conn()
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def corrupt(self) -> str | None:
        """None, or why this store refuses every write (one line naming the file): it failed
        its check at open, or SQLite met a corruption since."""
        return self._corrupt

    # ----- opening -----
    def _open(self, create: bool, new: bool, dims: Mapping[str, int | None]) -> None:
        p = self.path
        if str(p) in ("", "."):
            raise KnowledgeStoreError("the knowledge base path is empty; give a file, or 'default'")
        if p.is_dir():
            raise KnowledgeStoreError(f"{p} is a directory, not a knowledge base file")
        size = p.stat().st_size if p.exists() else None
        if new and size:
            raise KnowledgeStoreError(f"{p} already exists ({size} bytes), so it cannot be made a new knowledge "
                                      f"base; open it with --kb {p}, or choose another path")
        if size == 0 and not new:
            raise KnowledgeStoreError(f"{p} is an empty file (0 bytes), not a knowledge base; to make a new one "
                                      f"there use --kb new:{p} or `corrigo kb init {p}`")
        if size is None and not (create or new):
            raise KnowledgeStoreError(f"no knowledge base at {p}")
        if not size:
            self._create_file(p, dims, replace_empty=size == 0)
        schema.check_file(p)
        conn = self._conn = sqlite3.connect(str(p), timeout=self._busy_timeout_s, isolation_level=None,
                                            check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA application_id").fetchone()[0] != schema.APPLICATION_ID:  # check_file saw ours
            raise KnowledgeStoreError(f"{p} changed while it was being opened; try again")
        migrate = schema.needs_migration(conn, p)
        # Before anything that could write (WAL switch, migrations): a corrupt file is only read.
        self._health_check(conn)
        if self._corrupt is None:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise KnowledgeStoreError(f"{p}: cannot switch to WAL mode (journal_mode is {mode})")
        else:
            conn.execute("PRAGMA query_only = ON")  # belt and braces: SQLite itself refuses writes
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no commit
        if migrate and self._corrupt is None:
            self._write(lambda c: schema.migrate(c, dims))
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not schema.TABLES <= tables:
            raise KnowledgeStoreError(f"{p} is a corrupt knowledge base: missing table(s) "
                                      f"{', '.join(sorted(schema.TABLES - tables))}")
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        schema.check_meta(meta, p)
        self.meta = meta
        self.dims = {"text": int(meta["text_dim"]), "visual": int(meta["visual_dim"])}
        for space, want in dims.items():
            if want is not None and want != self.dims[space]:
                raise KnowledgeStoreError(f"{p} stores {self.dims[space]}-d {space} embeddings, not {want}-d")

    def _create_file(self, p: Path, dims: Mapping[str, int | None], replace_empty: bool) -> None:
        """Build a new store beside `p`, then link it into place: no process ever opens a
        half-made store, and two processes creating `p` at once end up sharing one."""
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new")
        try:
            conn = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                schema.migrate(conn, dims)
                conn.execute("COMMIT")
            finally:
                conn.close()  # the last connection: checkpoints into tmp and removes its WAL
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if replace_empty:  # asked for explicitly (new=True): the 0-byte file becomes the store
                os.replace(tmp, p)
                return
            try:
                os.link(tmp, p)  # atomic, and never replaces a store another process made meanwhile
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                if not p.exists():
                    os.replace(tmp, p)
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                leftover.unlink(missing_ok=True)

    def _health_check(self, conn: sqlite3.Connection) -> None:
        """Set `corrupt` if the file fails its check at open (see the module docstring)."""
        p = self.path
        wal = Path(f"{p}-wal")
        size = p.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        if size <= FULL_CHECK_MAX_BYTES:
            problems = self._problems(conn, limit=1)
        else:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(1)") if r[0] != "ok"]
            problems = problems or schema.schema_problems(conn)
        if problems:
            self._corrupt = (f"{p} is corrupt ({_one_line(problems[0], 120)}); corrigo will not write to it: "
                            f"{_check_hint(p)}")

    def _refuse_if_corrupt(self) -> None:
        if self._corrupt is not None:
            raise KnowledgeStoreError(self._corrupt)

    def _sqlite_error(self, e: sqlite3.DatabaseError) -> KnowledgeStoreError:
        """The one-line error for an SQLite failure; a corruption also stops every later write."""
        code, p = _primary_code(e), self.path
        if isinstance(e, sqlite3.OperationalError) and _is_busy(e):
            return KnowledgeStoreError(f"{p} stayed locked by another process for more than "
                                       f"{self._busy_timeout_s:g} s")
        if code == _SQLITE_FULL or (code == _SQLITE_IOERR and _looks_full(p)):
            return KnowledgeStoreError(f"disk full: cannot write {p} (this change was not saved; what was saved "
                                       "before is intact); free some space and try again")
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            self._corrupt = f"{p} is corrupt ({_one_line(e, 120)}); corrigo will not write to it: {_check_hint(p)}"
            return KnowledgeStoreError(self._corrupt)
        return KnowledgeStoreError(f"{p}: {_one_line(e)}")

    # ----- plumbing (package-internal: search.py and exchange.py use these) -----
    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one BEGIN IMMEDIATE transaction; retry while another process holds the lock."""
        self._refuse_if_corrupt()  # every write comes through here
        conn = self._conn
        assert conn is not None
        deadline = time.monotonic() + self._busy_timeout_s
        delay = 0.005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    self._search.note_commit(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        try:
                            conn.execute("ROLLBACK")
                        except sqlite3.Error:  # e.g. a full disk: SQLite rolled back itself; keep the first error
                            pass
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
        r = conn.execute(SELECT_ITEMS + " WHERE i.id = ?", (int(item_id),)).fetchone()
        if r is None:
            raise KnowledgeNotFound(f"no knowledge item {item_id} in {self.path}")
        return row_to_knowledge(r), row_refs(r)

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
                item_rows.append(item_row(k, item_id, 1, refs))
                for space, vec in (("text", k.text_embedding), ("visual", k.visual_embedding)):
                    if vec is not None:
                        emb_rows.append((item_id, space, 1, vec_blob(vec)))
                hist_rows.append((item_id, 1, "add", now, reason, None, snapshot(k, refs, id=item_id, version=1)))
            try:
                conn.executemany(INSERT_ITEM, item_rows)
            except sqlite3.IntegrityError as e:
                if "uid" in str(e):
                    raise KnowledgeStoreError("an item with the same uid is already stored; to store a copy, "
                                              "give it a new uid (k.replace(uid=uuid.uuid4().hex))") from None
                raise
            conn.executemany(INSERT_EMBEDDING, emb_rows)
            conn.executemany(INSERT_HISTORY, hist_rows)
            return ids

        ids = self._write(fn)
        if self._search.built:
            self._search.after_write([k.replace(id=i, version=1) for i, k in zip(ids, items)])
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
                    conn.execute(INSERT_EMBEDDING, (cur.id, space, v, vec_blob(vec)))
                    refs[space] = v
        out = new.replace(id=cur.id, uid=cur.uid, version=v, updated_at=now, created_at=cur.created_at,
                          uses=cur.uses, successes=cur.successes, contradictions=cur.contradictions)
        conn.execute(
            "UPDATE items SET kind = ?, statement = ?, effect = ?, " + ", ".join(f"{c} = ?" for c in SCOPE_COLS)
            + ", provenance = ?, active = ?, updated_at = ?, version = ?, text_emb_version = ?, "
            "visual_emb_version = ? WHERE id = ?",
            (out.kind, out.statement, JSON(out.effect.to_dict()), *(out.scope[s] for s in SCOPE_KEYS),
             JSON(out.provenance), int(out.active), now, v, refs["text"], refs["visual"], cur.id))
        conn.execute(INSERT_HISTORY, (cur.id, v, action, now, reason, parent, snapshot(out, refs)))
        return out

    def _write_version(self, fn: Callable[[sqlite3.Connection], Knowledge | None], item_id: int) -> Knowledge:
        """Run a versioning write; `fn` returns the new version, or None when nothing changed."""
        out = self._write(fn)
        if out is None:
            return self.get(item_id)
        self._search.after_write([out])
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

        return self._write_version(fn, item_id)

    def _set_active(self, item_id: int, active: bool, reason: str | None) -> Knowledge:
        def fn(conn: sqlite3.Connection) -> Knowledge | None:
            cur, refs = self._fetch(conn, item_id)
            if cur.active == active:
                return None
            return self._new_version(conn, cur, refs, cur.replace(active=active), "enable" if active else "disable",
                                     reason, parent=cur.version, refs=refs)

        return self._write_version(fn, item_id)

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
            try:
                snap = json.loads(row[1])
                old_refs = {s: snap.get(f"{s}_emb_version") for s in SPACES}
                vecs = {s: self._load_vec(conn, cur.id, s, old_refs[s]) for s in SPACES}  # type: ignore[arg-type]
                restored = cur.replace(kind=snap["kind"], statement=snap["statement"], effect=snap["effect"],
                                       scope=snap["scope"], provenance=snap["provenance"], active=snap["active"],
                                       text_embedding=vecs["text"], visual_embedding=vecs["visual"])
            except (KeyError, TypeError, AttributeError, InvalidKnowledge) as e:  # a damaged snapshot
                raise StoredRowError(f"item {item_id}: its version {target} does not decode ({e})") from None
            return self._new_version(conn, cur, refs, restored, "undo", reason or f"restored version {target}",
                                     parent=row[0], refs=old_refs)

        return self._write_version(fn, item_id)

    @staticmethod
    def _load_vec(conn: sqlite3.Connection, item_id: int, space: str, version: int | None) -> np.ndarray | None:
        if version is None:
            return None
        r = conn.execute("SELECT vec FROM embeddings WHERE item_id = ? AND space = ? AND version = ?",
                         (item_id, space, version)).fetchone()
        if r is None:
            raise KnowledgeStoreError(f"item {item_id}: its {space} embedding of version {version} is missing")
        return blob_vec(r[0])

    @_public
    def record_use(self, item_id: int, outcome: str | None = None,
                   context: Mapping[str, Any] | None = None) -> Knowledge:
        """Count a retrieval that was acted on: outcome 'success', 'failure', 'contradicted' (the
        operator corrected against it) or None (unknown). Logged in `uses`; not a new version."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidKnowledge(f"outcome must be one of {', '.join(OUTCOMES)} or None, got {outcome!r}")
        try:
            ctx = JSON(dict(context or {}))
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
        base = SELECT_ITEMS if with_embeddings else SELECT_ITEMS_NO_VEC

        def fn(conn: sqlite3.Connection) -> List[Knowledge]:
            found: dict[int, Knowledge] = {}
            for s in range(0, len(ids), MAX_PARAMS):
                chunk = ids[s: s + MAX_PARAMS]
                for r in conn.execute(base + f" WHERE i.id IN ({','.join('?' * len(chunk))})", chunk):
                    found[r[0]] = row_to_knowledge(r)
            return [found[i] for i in ids if i in found]

        return self._read(fn)

    @_public
    def __contains__(self, item_id: object) -> bool:
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
        sql = (SELECT_ITEMS if with_embeddings else SELECT_ITEMS_NO_VEC) + where + " ORDER BY " + order
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        return self._read(lambda c: [row_to_knowledge(r) for r in c.execute(sql, params)])

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
            vecs = {(s, v): blob_vec(b) for s, v, b in conn.execute(
                "SELECT space, version, vec FROM embeddings WHERE item_id = ?", (int(item_id),))}
            out = []
            for version, action, at, reason, parent, snap in conn.execute(
                    "SELECT version, action, at, reason, parent_version, snapshot FROM item_history "
                    "WHERE item_id = ? ORDER BY version", (int(item_id),)):
                out.append(HistoryEntry(version, action, at, reason, parent, snapshot_item(snap, vecs)))
            return out

        return self._read(fn)

    # ----- search (the index itself: search.py) -----
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
        queries = query_vectors(self.dims, query_text_emb, query_visual_emb)
        if not queries:  # most evidence, then most recent: Knowledge.rank_key, in SQL
            ranked = self._select(filters, scope_match, order="(i.successes - 2 * i.contradictions) DESC, "
                                  "i.updated_at DESC, i.id DESC", limit=k)
            return [SearchHit(x, None, None, 0.0) for x in ranked]
        ids = self._search.candidates(queries, filters, scope_match, k)
        return rank_hits(self.get_many(ids), queries, weights, min_score, k)

    @_public
    def save_index(self) -> None:
        """Write the HNSW index cache now (close() does it too)."""
        self._search.save()

    @_public
    def build_index(self, progress: Callable[[str, int, int], None] | None = None) -> Dict[str, str]:
        """Build (or catch up) the search index now instead of on the first search; returns the
        index kind per space. `progress(space, done, total)` is called while vectors are added."""
        if self._search.built:
            self._search.refresh()
        else:
            self._search.build(progress)
        return self._search.kinds()

    def index_info(self) -> Dict[str, Dict[str, Any]]:
        """Per space: index kind, vector count, bytes in memory (empty before the first search)."""
        with self._lock:
            return self._search.info()

    # ----- export / import (the format: exchange.py) -----
    @_public
    def export_jsonl(self, path: str | os.PathLike[str], skipped: List[int] | None = None) -> int:
        """Write every item (with its history, old embeddings and use log) as JSON lines after a
        header line; returns the number of items written. Written to a temporary file, then renamed.

        On a damaged store (`corrupt`) items are read one by one: with a `skipped` list, the ids
        of the items that cannot be read go into it and the rest is exported (a rescue); without
        one, an unreadable item is an error."""
        return exchange.export_jsonl(self, path, skipped)

    @_public
    def import_jsonl(self, path: str | os.PathLike[str], mode: str = "merge") -> ImportReport:
        """Read an `export_jsonl` file (v2, or v1 whose effects are upgraded) in one transaction
        (a bad line imports nothing).

        mode 'replace': the store becomes exactly the file (ids, versions, history, vectors,
        use log). mode 'merge': items are matched by uid; a new one is added with its history
        (keeping its id when free); a known one whose incoming version is newer
        (updated_at) becomes a new local version (action 'import', use counts: the larger);
        otherwise it is left alone."""
        return exchange.import_jsonl(self, path, mode)

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
                "path": str(self.path), "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
                "effect_schema": int(self.meta.get("effect_schema", 1)), "items": total, "active": active,
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
        out["index"] = self._search.describe()
        return out

    @_public
    def check(self) -> List[str]:
        """Problems found (empty: consistent): SQLite integrity, foreign keys, and that every
        item has its current history row and embedding rows of the right size. Works on a
        corrupt store too: a part that cannot be read is itself reported as a problem."""
        assert self._conn is not None
        return self._problems(self._conn)

    def _problems(self, conn: sqlite3.Connection, limit: int | None = None) -> List[str]:
        """check()'s findings, stopping after `limit` (open needs only the first)."""
        problems: List[str] = []

        def run(what: str, sql: str, fmt: Callable[[Sequence[Any]], str | None], params: Sequence[Any] = ()) -> None:
            if limit is not None and len(problems) >= limit:
                return
            try:
                for r in conn.execute(sql, params):
                    line = fmt(r)
                    if line is not None:
                        problems.append(line)
                        if limit is not None and len(problems) >= limit:
                            return
            except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
                problems.append(f"cannot read {what}: {_one_line(e)}")

        run("the file", "PRAGMA integrity_check" + ("(1)" if limit else ""), lambda r: None if r[0] == "ok" else r[0])
        if not problems:
            try:
                problems += schema.schema_problems(conn)
            except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
                problems.append(f"cannot read the schema: {_one_line(e)}")
        run("foreign keys", "PRAGMA foreign_key_check", lambda r: f"foreign key: {tuple(r)}")
        run("items", "SELECT i.id, i.version FROM items i LEFT JOIN item_history h ON h.item_id = i.id AND "
            "h.version = i.version WHERE h.item_id IS NULL", lambda r: f"item {r[0]}: no history row for its "
            f"version {r[1]}")
        dims: dict[str, Any] = {}
        run("meta", "SELECT key, value FROM meta WHERE key IN ('text_dim', 'visual_dim')",
            lambda r: dims.__setitem__(r[0][: -len("_dim")], r[1]))
        for space in SPACES:
            run("embeddings", f"SELECT i.id, i.{space}_emb_version FROM items i LEFT JOIN embeddings e ON "
                f"e.item_id = i.id AND e.space = '{space}' AND e.version = i.{space}_emb_version "
                f"WHERE i.{space}_emb_version IS NOT NULL AND e.item_id IS NULL",
                lambda r: f"item {r[0]}: {space} embedding of version {r[1]} is missing")
            dim = dims.get(space)
            if not (isinstance(dim, str) and dim.isdigit()):
                problems.append(f"meta: {space}_dim is {dim!r}, not a number")
                continue
            run("embeddings", "SELECT item_id, length(vec) FROM embeddings WHERE space = ? AND "
                "(typeof(vec) != 'blob' OR length(vec) != ?)",
                lambda r: f"item {r[0]}: a {space} embedding has {r[1]} bytes, not {4 * int(dim)}",
                (space, 4 * int(dim)))
        return problems if limit is None else problems[:limit]

    def close(self) -> None:
        """Save the HNSW index cache if it changed, then close the file. Idempotent."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._search.save()
            finally:
                self._close_conn()
                self._search.reset()

    def __enter__(self) -> "SqliteKnowledgeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteKnowledgeStore({str(self.path)!r}{'' if self._conn else ', closed'})"
