"""`KnowledgeStore`: what the agent and `corrigo kb` need from a knowledge base, and its result types.

`SqliteKnowledgeStore` (corrections_kb/store/sqlite.py) is the implementation shipped;
tests/test_kb_store_protocol.py checks that it matches this protocol method by method.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Protocol, Sequence

import numpy as np

from corrections_kb.knowledge import Knowledge


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


HISTORY_ACTIONS: tuple[str, ...] = ("add", "edit", "disable", "enable", "undo", "import")


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
    """A knowledge base: versioned `Knowledge` items, searchable by embedding and filterable by scope.

    For the author of a new backend (e.g. Postgres + pgvector): implement every method
    below with these signatures, register a factory with
    `corrections_kb.store.register_store("postgres", factory)` so that
    `--kb postgres:DSN` opens it, and the agent and `corrigo kb` work unchanged. What the
    callers rely on:

    - Ids are positive ints assigned by the store, never reused; `Knowledge.uid` is stable
      across stores (import merges by it). Raise `KnowledgeNotFound` for an unknown id,
      `InvalidKnowledge` for a bad item or argument, `KnowledgeStoreError` for anything the
      store cannot do; every message one line (corrections_kb/errors.py).
    - Content fields (`EDITABLE_FIELDS`) are versioned: `add` writes version 1, every
      `update`/`disable`/`enable`/`undo` that changes something writes version + 1 and keeps
      the old one in `history` (append-only; nothing is ever deleted, except by
      `import_jsonl(mode="replace")`). An update that changes nothing writes no version.
      `undo` restores the content (embeddings too) of the current version's parent, as a
      new version whose parent is that version's parent, so repeated undos walk back.
    - Use counts (`uses`, `successes`, `contradictions`) are statistics, not content:
      `record_use` bumps them without a version; `update`/`undo` keep them.
    - Every write is atomic (all of an `add_many` or none) and durable once it returns;
      several processes may write the same store at once.
    - Scope filters (`task`, `skill`, `object_category`, `object`, `user`, `site`; a value
      or a list of values): with `scope_match="applies"` an item whose scope key is None
      (applies to anything) passes too; with "exact" only equal values pass. `kind` and
      `active` filter too (search and list default to active items only).
    - `search` ranks by the weighted mean cosine over the queried spaces (a missing
      embedding counts 0) and returns exact cosines in `SearchHit`, best first, ties by id;
      an approximate index is fine for finding candidates. Without a query it returns the
      filtered items by `Knowledge.rank_key` (most evidence, then most recent), sims None.
    - `export_jsonl`/`import_jsonl` use the JSON-lines format of
      corrections_kb/store/exchange.py (a header line, then one item per line with its
      history, old embeddings and use log), so stores of any backend exchange items.
    - `stats()` returns at least: path (where it lives, for messages), schema_version,
      db_bytes, items, active, inactive, by_kind {kind: {active, inactive}},
      active_by_skill, uses, successes, contradictions, history_rows, use_log_rows,
      embeddings {space: count}, dims {space: dim}, models {space: name}.
    - `check()` returns a list of problems found (empty: consistent).
    - A damaged store is never written: `corrupt` is None, or a one-line reason (naming the
      store and `corrigo kb check`) why every write raises `KnowledgeStoreError`; reads that
      still work may work, so `check`, `list` and `export_jsonl` can rescue what is readable.
      Data that fails to decode raises `KnowledgeStoreError` naming the store, never another type.
    - `close()` is idempotent; the store is a context manager that closes on exit.
    """

    @property
    def location(self) -> str:
        """Where the store lives, for messages (a file path; a URL without its password)."""
        ...

    @property
    def corrupt(self) -> str | None:
        """None, or why this store refuses every write (it was found damaged)."""
        ...

    def add(self, k: Knowledge, reason: str | None = None) -> int: ...
    def add_many(self, items: Iterable[Knowledge], reason: str | None = None) -> List[int]: ...
    def get(self, item_id: int) -> Knowledge: ...
    def get_many(self, ids: Iterable[int], with_embeddings: bool = True) -> List[Knowledge]: ...
    def update(self, item_id: int, *, reason: str | None = None, **changes: Any) -> Knowledge: ...
    def disable(self, item_id: int, reason: str | None = None) -> Knowledge: ...
    def enable(self, item_id: int, reason: str | None = None) -> Knowledge: ...
    def undo(self, item_id: int, reason: str | None = None) -> Knowledge: ...
    def history(self, item_id: int) -> List[HistoryEntry]: ...
    def record_use(self, item_id: int, outcome: str | None = None, context: Mapping[str, Any] | None = None
                   ) -> Knowledge: ...
    def list(self, active_only: bool = True, kind: str | None = None, *, scope_match: str = "applies",
             limit: int | None = None, offset: int = 0, with_embeddings: bool = True,
             **scope_filters: str | Sequence[str] | None) -> List[Knowledge]: ...
    def count(self, active_only: bool = True, kind: str | None = None, *, scope_match: str = "applies",
              **scope_filters: str | Sequence[str] | None) -> int: ...
    def search(self, query_text_emb: np.ndarray | None = None, query_visual_emb: np.ndarray | None = None,
               k: int = 10, filters: Mapping[str, Any] | None = None, min_score: float | None = None, *,
               weights: tuple[float, float] = (1.0, 1.0), scope_match: str = "applies") -> List[SearchHit]: ...
    def export_jsonl(self, path: str | os.PathLike[str], skipped: List[int] | None = None) -> int: ...
    def import_jsonl(self, path: str | os.PathLike[str], mode: str = "merge") -> ImportReport: ...
    def stats(self) -> Dict[str, Any]: ...
    def check(self) -> List[str]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "KnowledgeStore": ...
    def __exit__(self, *exc: object) -> None: ...


class StoreFile(Protocol):
    """What the SQLite store's helpers (search.py, exchange.py) use of the store that owns them:
    the file, its dimensions and metadata, and its transaction wrappers. Typed here so that the
    helpers do not import the store module (which imports them)."""

    path: Any
    dims: Dict[str, int]
    meta: Dict[str, Any]
    _conn: Any
    _search: Any

    @property
    def corrupt(self) -> str | None: ...

    def _read(self, fn: Any) -> Any: ...
    def _write(self, fn: Any) -> Any: ...
    def _fetch(self, conn: Any, item_id: int) -> Any: ...
    def _new_version(self, conn: Any, cur: Knowledge, cur_refs: Mapping[str, int | None], new: Knowledge, action: str,
                     reason: str | None, parent: int | None, refs: Mapping[str, int | None] | None = None) -> Any: ...
    def get_many(self, ids: Iterable[int], with_embeddings: bool = True) -> List[Knowledge]: ...
