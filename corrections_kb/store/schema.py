"""The SQLite file: how it is recognised and migrated.

Schema versions live in `PRAGMA user_version`; `MIGRATIONS[i]` takes a file from version
i to i + 1, each in the caller's one write transaction (so a crash leaves the previous
version). The file is ours when its header carries `APPLICATION_ID`; anything else is
refused before SQLite opens it, and left byte-for-byte as it was.

- v1: the tables (see `_migrate_1`).
- v2: effects become typed (corrections_kb/effects.py): every stored effect, in `items`
  and in the `item_history` snapshots, is rewritten from its v1 shape to v2; the meta key
  `effect_schema` records the effect schema.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

from corrections_kb.effects import EFFECT_SCHEMA, stored_v1_to_v2
from corrections_kb.errors import KnowledgeStoreError
from corrections_kb.knowledge import TEXT_DIM, VISUAL_DIM
from corrections_kb.store.rows import JSON

APPLICATION_ID = int.from_bytes(b"CRKB", "big")  # in the SQLite header: marks the file as ours
FORMAT = "corrigo-kb"
DEFAULT_MODELS = {"text": "all-MiniLM-L6-v2", "visual": "efficientnet-lite0"}
TABLES = {"meta", "items", "embeddings", "item_history", "uses"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_REWRITE_BATCH = 5000


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


def _rewrite_json(conn: sqlite3.Connection, table: str, key: str, column: str,
                  fn: Callable[[Any], Any]) -> None:
    """Replace every `column` (JSON text) of `table` by `fn(its value)`, paging by `key`."""
    last = 0  # keys are AUTOINCREMENT ids, from 1
    while rows := conn.execute(f"SELECT {key}, {column} FROM {table} WHERE {key} > ? ORDER BY {key} "
                               f"LIMIT {_REWRITE_BATCH}", (last,)).fetchall():
        conn.executemany(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                         [(JSON(fn(json.loads(text))), k) for k, text in rows])
        last = rows[-1][0]


def _snapshot_v2(snap: dict[str, Any]) -> dict[str, Any]:
    if "effect" in snap:
        snap["effect"] = stored_v1_to_v2(snap["effect"])
    return snap


def _migrate_2(conn: sqlite3.Connection) -> None:
    _rewrite_json(conn, "items", "id", "effect", stored_v1_to_v2)
    # History is append-only by trigger; lift it for this rewrite only (same transaction).
    guard = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'item_history_no_update'"
                         ).fetchone()[0]
    conn.execute("DROP TRIGGER item_history_no_update")
    _rewrite_json(conn, "item_history", "hid", "snapshot", _snapshot_v2)
    conn.execute(guard)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('effect_schema', '2')")  # v2, not EFFECT_SCHEMA


# MIGRATIONS[i] takes a store from schema version i to i + 1. Append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1, _migrate_2]
SCHEMA_VERSION = len(MIGRATIONS)


def check_file(path: Path) -> None:
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


_EXPECTED: dict[tuple[int, ...], dict[str, Any]] = {}


def expected_schema(version: int) -> dict[str, Any]:
    """`sqlite_master` (name -> sql) of a store at `version`, as MIGRATIONS build it."""
    key = tuple(id(m) for m in MIGRATIONS[:version])  # keyed by the migrations themselves (tests add some)
    if key not in _EXPECTED:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            conn.execute("BEGIN")
            for step in MIGRATIONS[:version]:
                step(conn)
            conn.execute("COMMIT")
            _EXPECTED[key] = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master")}
        finally:
            conn.close()
    return _EXPECTED[key]


def schema_problems(conn: sqlite3.Connection) -> list[str]:
    """Every table, index and trigger of ours present with our SQL: a damaged name or column
    in the schema passes SQLite's integrity_check, yet the file is no longer the store we write."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not 0 < version <= SCHEMA_VERSION:
        return [] if version > SCHEMA_VERSION else ["schema: no version (user_version 0)"]
    have = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master")}
    out = []
    for name, sql in expected_schema(version).items():
        if name not in have:
            out.append(f"schema: {name} is missing")
        elif have[name] != sql:
            out.append(f"schema: {name} is not as corrigo made it")
    return out


def needs_migration(conn: sqlite3.Connection, path: Path) -> bool:
    """True if the file is older than this code; a newer file is refused."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise KnowledgeStoreError(
            f"{path} was written by a newer corrigo (knowledge base schema v{version}; this one reads up to "
            f"v{SCHEMA_VERSION}); upgrade corrigo")
    return bool(version < SCHEMA_VERSION)


def migrate(conn: sqlite3.Connection, dims: Mapping[str, int | None]) -> None:
    """Bring the file to SCHEMA_VERSION; call inside one write transaction."""
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


def check_meta(meta: Mapping[str, str], path: Path) -> None:
    """Refuse a file whose meta table is not ours or whose effects are newer than this code reads."""
    if meta.get("format") != FORMAT:
        raise KnowledgeStoreError(f"{path} is a corrupt knowledge base: bad format marker {meta.get('format')!r}")
    effect_schema = meta.get("effect_schema", "1")
    if not effect_schema.isdigit() or int(effect_schema) > EFFECT_SCHEMA:
        raise KnowledgeStoreError(f"{path} holds effects of schema {effect_schema} (this corrigo reads up to "
                                  f"{EFFECT_SCHEMA}); upgrade corrigo")
