"""Vector search behind one interface: exact (numpy) for small stores, HNSW (usearch) for large.

Both use cosine similarity; vectors are L2-normalised on the way in, so a query's
similarity is a dot product. Keys are item ids (positive ints). `search` takes an
optional set of allowed ids, either an array of ids or an `IdMask` (a boolean array
addressed by id, which the store's catalog computes with a few vectorised numpy ops,
so filtering a million items costs milliseconds, not an SQL round trip).

`make_index(dim, expected_size)` picks `ExactIndex` below EXACT_MAX_ITEMS items: there
exact search is ~1-3 ms (measured by bench/bench_kb.py) and needs no build, while an
HNSW graph costs ~0.2-0.5 ms per insert to build on 2 cores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Union

import numpy as np

EXACT_MAX_ITEMS = 20_000

# HNSW parameters: f16 storage halves memory with no measurable recall loss on
# normalised vectors (the store re-scores the final candidates with exact float32).
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 64
HNSW_EXPANSION_SEARCH = 64
HNSW_DTYPE = "f16"
# A filtered HNSW search either scores the allowed vectors exactly (fetching a vector back
# from usearch costs ~10 us) or over-fetches ~2k / (fraction allowed) candidates from the
# graph (~3 us each; a 5000-candidate search takes ~15 ms on 2 cores) until k pass. The
# exact path is cheaper while count * 10 < 3 * 2k * n / count, i.e. count^2 < 0.6 k n.
HNSW_EXACT_COST_RATIO = 0.6


class IdMask:
    """A set of ids as a boolean array addressed by id (ids are small, dense, positive ints)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = np.asarray(mask, dtype=bool)
        self._count: int | None = None

    @classmethod
    def from_ids(cls, ids: np.ndarray | list[int]) -> "IdMask":
        ids = np.asarray(ids, dtype=np.int64)
        m = np.zeros(int(ids.max()) + 1 if ids.size else 1, dtype=bool)
        m[ids[ids >= 0]] = True
        return cls(m)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Boolean array: which of `ids` are allowed."""
        ids = np.asarray(ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < self.mask.size)
        out = np.zeros(ids.shape, dtype=bool)
        out[inside] = self.mask[ids[inside]]
        return out

    def count(self) -> int:
        if self._count is None:
            self._count = int(np.count_nonzero(self.mask))
        return self._count

    def ids(self) -> np.ndarray:
        return np.flatnonzero(self.mask).astype(np.int64)


Allowed = Union[IdMask, np.ndarray, "list[int]", None]


def _as_mask(allowed: Allowed) -> IdMask | None:
    if allowed is None or isinstance(allowed, IdMask):
        return allowed
    return IdMask.from_ids(np.asarray(allowed, dtype=np.int64))


def normalize_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    """float32 (n, dim), each row scaled to unit length. Zero rows are an error."""
    v = np.array(vectors, dtype=np.float32, copy=True, ndmin=2)
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(f"expected vectors of {dim} dimensions, got shape {np.shape(vectors)}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ValueError("cannot index a zero or non-finite vector")
    v /= norms
    return v


def _checked_batch(ids: np.ndarray | list[int], vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated positive ids with normalised vectors; of repeated ids the last wins, like repeated adds."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size == 0:
        return ids, np.zeros((0, dim), np.float32)
    if np.any(ids < 1):
        raise ValueError("ids must be positive")
    vecs = normalize_rows(vectors, dim)
    if len(vecs) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(vecs)} vectors")
    _, last = np.unique(ids[::-1], return_index=True)
    keep = np.sort(len(ids) - 1 - last)
    return ids[keep], vecs[keep]


def _top_k(ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (ids, sims), best first; ties broken by smaller id for determinism."""
    if sims.size > k:
        part = np.argpartition(-sims, k - 1)[:k]
        ids, sims = ids[part], sims[part]
    order = np.lexsort((ids, -sims))
    return ids[order].astype(np.int64), sims[order].astype(np.float32)


class VectorIndex(Protocol):
    kind: str
    dim: int

    def __len__(self) -> int: ...
    def __contains__(self, item_id: object) -> bool: ...
    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray | list[int]) -> None: ...
    def get(self, ids: np.ndarray | list[int]) -> np.ndarray: ...
    def search(self, vector: np.ndarray, k: int, allowed_ids: Allowed = None) -> tuple[np.ndarray, np.ndarray]: ...
    def ids(self) -> np.ndarray: ...


class ExactIndex:
    """Brute-force cosine search over a normalised float32 matrix; exact, no build cost."""

    kind = "exact"

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._vecs = np.zeros((max(capacity, 16), dim), dtype=np.float32)
        self._ids = np.zeros(max(capacity, 16), dtype=np.int64)
        self._n = 0
        self._row = np.full(1024, -1, dtype=np.int64)  # row of each id, -1 if absent

    def __len__(self) -> int:
        return self._n

    def __contains__(self, item_id: object) -> bool:
        i = int(item_id)  # type: ignore[call-overload]
        return 0 <= i < self._row.size and self._row[i] >= 0

    @property
    def nbytes(self) -> int:
        return int(self._vecs.nbytes + self._ids.nbytes + self._row.nbytes)

    def ids(self) -> np.ndarray:
        return self._ids[: self._n].copy()

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        inside = (ids >= 0) & (ids < self._row.size)
        rows = np.full(ids.shape, -1, dtype=np.int64)
        rows[inside] = self._row[ids[inside]]
        return rows

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add or replace vectors for `ids` (normalised here)."""
        ids, vecs = _checked_batch(ids, vectors, self.dim)
        if ids.size == 0:
            return
        if int(ids.max()) >= self._row.size:
            grown = np.full(max(int(ids.max()) + 1, self._row.size * 2), -1, dtype=np.int64)
            grown[: self._row.size] = self._row
            self._row = grown
        rows = self._row[ids]
        old = rows >= 0
        self._vecs[rows[old]] = vecs[old]
        new_ids, new_vecs = ids[~old], vecs[~old]
        need = self._n + len(new_ids)
        if need > len(self._ids):
            cap = max(need, int(len(self._ids) * 1.5) + 16)
            v = np.zeros((cap, self.dim), dtype=np.float32)
            v[: self._n] = self._vecs[: self._n]
            i = np.zeros(cap, dtype=np.int64)
            i[: self._n] = self._ids[: self._n]
            self._vecs, self._ids = v, i
        new_rows = np.arange(self._n, need)
        self._vecs[new_rows] = new_vecs
        self._ids[new_rows] = new_ids
        self._row[new_ids] = new_rows
        self._n = need

    def remove(self, ids: np.ndarray | list[int]) -> None:
        for item_id in np.asarray(ids, dtype=np.int64).reshape(-1):
            if item_id not in self:
                continue
            r = int(self._row[item_id])
            last = self._n - 1
            if r != last:  # move the last row into the hole
                self._vecs[r] = self._vecs[last]
                self._ids[r] = self._ids[last]
                self._row[self._ids[r]] = r
            self._row[item_id] = -1
            self._n = last

    def get(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """Normalised vectors of `ids` (rows of NaN for ids not in the index)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = self._rows_of(ids)
        out = np.full((len(ids), self.dim), np.nan, dtype=np.float32)
        out[rows >= 0] = self._vecs[rows[rows >= 0]]
        return out

    def search(self, vector: np.ndarray, k: int, allowed_ids: Allowed = None) -> tuple[np.ndarray, np.ndarray]:
        q = normalize_rows(vector, self.dim)[0]
        mask = _as_mask(allowed_ids)
        if k <= 0 or self._n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if mask is not None and mask.count() < self._n // 8:
            # Few allowed: score only their rows.
            rows = self._rows_of(mask.ids())
            rows = rows[rows >= 0]
            return _top_k(self._ids[rows], self._vecs[rows] @ q, k)
        sims = self._vecs[: self._n] @ q
        ids = self._ids[: self._n]
        if mask is not None:
            keep = mask(ids)
            ids, sims = ids[keep], sims[keep]
        return _top_k(ids, sims, k)


class HnswIndex:
    """Approximate cosine search with usearch's HNSW graph; for large stores."""

    kind = "hnsw"

    def __init__(self, dim: int, *, connectivity: int = HNSW_CONNECTIVITY, expansion_add: int = HNSW_EXPANSION_ADD,
                 expansion_search: int = HNSW_EXPANSION_SEARCH, dtype: str = HNSW_DTYPE) -> None:
        try:
            from usearch.index import Index
        except ImportError:
            raise ImportError("the HNSW index needs the 'usearch' package: pip install 'corrigo[kb]'") from None
        self.dim = dim
        self._index = Index(ndim=dim, metric="cos", dtype=dtype, connectivity=connectivity,
                            expansion_add=expansion_add, expansion_search=expansion_search)

    @classmethod
    def load(cls, path: str | Path, dim: int) -> "HnswIndex":
        from usearch.index import Index

        self = cls.__new__(cls)
        self.dim = dim
        loaded = Index.restore(str(path), view=False)
        if loaded is None or loaded.ndim != dim:
            raise ValueError(f"{path} is not a {dim}-d usearch index")
        self._index = loaded
        return self

    def save(self, path: str | Path) -> None:
        self._index.save(str(path))

    def __len__(self) -> int:
        return int(len(self._index))

    def __contains__(self, item_id: object) -> bool:
        return bool(self._index.contains(int(item_id)))  # type: ignore[call-overload]

    @property
    def nbytes(self) -> int:
        return int(self._index.memory_usage)

    def ids(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.int64)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray, progress: bool = False) -> None:
        ids, vecs = _checked_batch(ids, vectors, self.dim)
        if ids.size == 0:
            return
        self.remove(ids)  # usearch keeps one vector per key: replace = remove + add
        self._index.add(ids.astype(np.uint64), vecs, log="HNSW build" if progress else False)

    def remove(self, ids: np.ndarray | list[int]) -> None:
        ids = np.asarray(ids, dtype=np.uint64).reshape(-1)
        if ids.size == 0 or len(self._index) == 0:
            return
        present = np.asarray(self._index.contains(ids), dtype=bool).reshape(-1)
        if present.any():
            self._index.remove(ids[present])

    def get(self, ids: np.ndarray | list[int]) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.full((len(ids), self.dim), np.nan, dtype=np.float32)
        if ids.size == 0:
            return out
        present = np.asarray(self._index.contains(ids.astype(np.uint64)), dtype=bool).reshape(-1)
        if present.any():
            got = self._index.get(ids[present].astype(np.uint64), dtype=np.float32)
            out[present] = np.asarray(got, dtype=np.float32).reshape(-1, self.dim)
        return out

    def search(self, vector: np.ndarray, k: int, allowed_ids: Allowed = None) -> tuple[np.ndarray, np.ndarray]:
        q = normalize_rows(vector, self.dim)[0]
        n = len(self._index)
        if k <= 0 or n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        mask = _as_mask(allowed_ids)
        if mask is None:
            return self._graph_search(q, min(k, n))
        if mask.count() == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if mask.count() ** 2 <= HNSW_EXACT_COST_RATIO * k * n:
            # A selective filter: over-fetching from the graph would visit most of it.
            ids = mask.ids()
            vecs = self.get(ids)
            ok = ~np.isnan(vecs[:, 0])
            return _top_k(ids[ok], vecs[ok] @ q, k)
        fraction = min(1.0, mask.count() / n)
        fetch = max(4 * k, 32, int(2 * k / fraction))
        while True:  # over-fetch until k allowed ids are found (or the whole index was seen)
            ids, sims = self._graph_search(q, min(fetch, n))
            keep = mask(ids)
            if keep.sum() >= k or fetch >= n:
                return _top_k(ids[keep], sims[keep], k)
            fetch *= 4

    def _graph_search(self, q: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        m = self._index.search(q, count, threads=1)  # one query: a thread pool only adds latency
        ids = np.asarray(m.keys, dtype=np.int64)
        sims = (1.0 - np.asarray(m.distances, dtype=np.float32)).astype(np.float32)
        order = np.lexsort((ids, -sims))
        return ids[order], sims[order]


def make_index(dim: int, expected_size: int = 0, kind: str = "auto") -> ExactIndex | HnswIndex:
    """`kind` 'exact', 'hnsw', or 'auto': exact below EXACT_MAX_ITEMS expected items."""
    if kind == "auto":
        kind = "exact" if expected_size < EXACT_MAX_ITEMS else "hnsw"
    if kind == "exact":
        return ExactIndex(dim, capacity=max(expected_size, 64))
    if kind == "hnsw":
        return HnswIndex(dim)
    raise ValueError(f"index kind must be auto, exact or hnsw, got {kind!r}")
