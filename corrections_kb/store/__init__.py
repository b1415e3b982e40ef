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

from corrections_kb.store import schema
from corrections_kb.store.exchange import EXPORT_FORMAT, EXPORT_VERSION
from corrections_kb.store.protocol import HistoryEntry, ImportReport, KnowledgeStore, SearchHit
from corrections_kb.store.schema import APPLICATION_ID, SCHEMA_VERSION
from corrections_kb.store.sqlite import SqliteKnowledgeStore, default_kb_path

__all__ = [
    "APPLICATION_ID", "EXPORT_FORMAT", "EXPORT_VERSION", "SCHEMA_VERSION", "HistoryEntry", "ImportReport",
    "KnowledgeStore", "SearchHit", "SqliteKnowledgeStore", "default_kb_path", "open_store", "register_store",
    "schema",
]

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
