"""The filterable columns of every item (kind, active, scope) in memory, addressed by item id.

The store turns a search's structured filters into an `IdMask` here with a few numpy
comparisons, then hands it to the vector index. Strings are interned to int codes;
-1 means None (the scope key applies to anything).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from corrections_kb.index import IdMask
from corrections_kb.knowledge import KNOWLEDGE_KINDS, SCOPE_KEYS

FILTER_KEYS: tuple[str, ...] = ("kind", "active") + SCOPE_KEYS
SCOPE_MATCHES: tuple[str, ...] = ("applies", "exact")


def check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter(s) {', '.join(unknown)}; known: {', '.join(FILTER_KEYS)}")
    kind = filters.get("kind")
    for k in ([kind] if isinstance(kind, str) else kind or []):
        if k not in KNOWLEDGE_KINDS:
            raise ValueError(f"kind filter must be one of {', '.join(KNOWLEDGE_KINDS)}, got {k!r}")
    return filters


def as_values(v: Any) -> list[str] | None:
    """A filter value as a list of accepted strings, or None for 'no constraint'."""
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


class Catalog:
    """Per-item kind, active flag and scope codes; grows with the largest id."""

    def __init__(self) -> None:
        self._vocab: dict[str, int] = {}
        size = 1024
        self.present = np.zeros(size, dtype=bool)
        self.active = np.zeros(size, dtype=bool)
        self.kind = np.full(size, -1, dtype=np.int8)
        self.scope = {key: np.full(size, -1, dtype=np.int32) for key in SCOPE_KEYS}

    def __len__(self) -> int:
        return int(np.count_nonzero(self.present))

    def _code(self, s: str | None) -> int:
        if s is None:
            return -1
        c = self._vocab.get(s)
        if c is None:
            c = self._vocab[s] = len(self._vocab)
        return c

    def _grow(self, max_id: int) -> None:
        if max_id < self.present.size:
            return
        size = max(max_id + 1, self.present.size * 2)

        def grow(a: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full(size, fill, dtype=a.dtype)
            out[: a.size] = a
            return out

        self.present = grow(self.present, False)
        self.active = grow(self.active, False)
        self.kind = grow(self.kind, -1)
        self.scope = {k: grow(v, -1) for k, v in self.scope.items()}

    def upsert_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of (id, kind, active, scope_task, scope_skill, ... in SCOPE_KEYS order)."""
        rows = list(rows)
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self._grow(int(ids.max()))
        self.present[ids] = True
        self.kind[ids] = np.fromiter((KNOWLEDGE_KINDS.index(r[1]) for r in rows), dtype=np.int8, count=len(rows))
        self.active[ids] = np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=len(rows))
        for j, key in enumerate(SCOPE_KEYS):
            self.scope[key][ids] = np.fromiter((self._code(r[3 + j]) for r in rows), dtype=np.int32,
                                               count=len(rows))

    def remove(self, ids: Iterable[int]) -> None:
        for i in ids:
            if 0 <= i < self.present.size:
                self.present[i] = False

    def mask(self, filters: Mapping[str, Any], scope_match: str = "applies") -> IdMask:
        """Items passing every filter. Scope filters with `applies`: the item's key is None
        (applies to anything) or one of the values; with `exact`: equal (None matches None)."""
        if scope_match not in SCOPE_MATCHES:
            raise ValueError(f"scope_match must be one of {', '.join(SCOPE_MATCHES)}, got {scope_match!r}")
        m = self.present.copy()
        active = filters.get("active")
        if active is not None:
            m &= self.active == bool(active)
        kinds = as_values(filters.get("kind"))
        if kinds is not None:
            codes = [KNOWLEDGE_KINDS.index(k) for k in kinds]
            m &= (self.kind == codes[0]) if len(codes) == 1 else np.isin(self.kind, codes)
        for key in SCOPE_KEYS:
            if key not in filters:
                continue
            wanted = filters[key]
            col = self.scope[key]
            if wanted is None:
                if scope_match == "exact":
                    m &= col == -1
                continue
            codes = [self._vocab[v] for v in as_values(wanted) or [] if v in self._vocab]
            if len(codes) == 1:
                hit = col == codes[0]  # ~10x faster than isin on a million items
            else:
                hit = np.isin(col, codes) if codes else np.zeros(col.size, dtype=bool)
            m &= (hit | (col == -1)) if scope_match == "applies" else hit
        return IdMask(m)
