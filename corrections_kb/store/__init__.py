"""The knowledge base: the `KnowledgeStore` protocol, its SQLite implementation, and `open_store`.

    protocol.py  KnowledgeStore (what the agent and `corrigo kb` use), SearchHit, HistoryEntry, ImportReport
    schema.py    the SQLite file: recognising, claiming, migrating (schema versions)
    rows.py      Knowledge <-> table rows and history snapshots
    sqlite.py    SqliteKnowledgeStore: CRUD, history, undo, use counts, stats, check
    search.py    in-memory vector indexes kept in sync with the file, HNSW cache, ranking
    exchange.py  JSON-lines export / import

A second backend implements `KnowledgeStore` and registers itself here with
`register_store(scheme, factory)` (see the protocol's docstring).
"""
from __future__ import annotations

import os
from typing import Any, Callable

from corrections_kb.errors import KnowledgeStoreError
from corrections_kb.store import schema
from corrections_kb.store.exchange import EXPORT_FORMAT, EXPORT_VERSION
from corrections_kb.store.protocol import HistoryEntry, ImportReport, KnowledgeStore, SearchHit
from corrections_kb.store.schema import APPLICATION_ID, SCHEMA_VERSION
from corrections_kb.store.sqlite import SqliteKnowledgeStore, default_kb_path
from robot.registry import Registry

__all__ = [
    "APPLICATION_ID", "EXPORT_FORMAT", "EXPORT_VERSION", "SCHEMA_VERSION", "HistoryEntry", "ImportReport",
    "KnowledgeStore", "SearchHit", "STORES", "SqliteKnowledgeStore", "default_kb_path", "open_store", "register_store",
    "schema",
]

# `--kb SCHEME:ARG`: SQLite here; another backend registers itself (or is installed with a
# `corrigo.stores` entry point) under its scheme, e.g. `postgresql`.
STORES: Registry[KnowledgeStore] = Registry("knowledge store", "corrigo.stores", call_with="argument",
                                            error=KnowledgeStoreError)


def register_store(scheme: str, factory: Callable[..., KnowledgeStore], *, requires: tuple[str, ...] = ()) -> None:
    """Make `--kb SCHEME:ARG` open `factory(ARG, **kwargs)`."""
    STORES.register(scheme, factory, requires=requires, usage=f"{scheme}:PATH" if scheme in ("sqlite", "new") else f"{scheme}:...")


def _sqlite(arg: str, **kwargs: Any) -> KnowledgeStore:
    if not arg:  # `--kb sqlite:` is a mistake (an unset variable?), not a request for the default store
        raise KnowledgeStoreError("'sqlite:' names no file; give sqlite:PATH (or 'default' for the store in the "
                                  "user data directory)")
    return SqliteKnowledgeStore(arg, **kwargs)


def _new(arg: str, **kwargs: Any) -> KnowledgeStore:
    if not arg:
        raise KnowledgeStoreError("'new:' names no file; give new:PATH to make a new knowledge base at PATH")
    kwargs.pop("create", None)
    return SqliteKnowledgeStore(arg, new=True, **kwargs)


register_store("sqlite", _sqlite)
register_store("new", _new)  # `--kb new:PATH`: make a new SQLite store (PATH missing or 0 bytes)


def open_store(spec: str | os.PathLike[str] | None = None, **kwargs: Any) -> KnowledgeStore:
    """Open a store from a spec: None or 'default' (default_kb_path(), made on first use),
    'SCHEME:ARG' of a registered store ('sqlite:PATH'; 'new:PATH' makes a new one), or a path
    (SQLite). An empty spec or path is an error, as is a URL of an unknown scheme (not a file
    name). Keyword arguments go to the store's factory."""
    if spec is None or str(spec) == "default":
        return SqliteKnowledgeStore(None, **kwargs)
    s = str(spec)
    if not s.strip():
        raise KnowledgeStoreError("the knowledge base is given as an empty string; give a path, 'default', "
                                  "'new:PATH' or (to the agent) 'none'")
    scheme, sep, _ = s.partition(":")
    if sep and len(scheme) > 1 and (scheme in STORES.known() or "://" in s):  # "C:..." is a drive, not a scheme
        return STORES.make(s, **kwargs)
    return SqliteKnowledgeStore(s, **kwargs)
