"""Vector indexes: exact (numpy) and HNSW (usearch) behind one interface."""
from __future__ import annotations

import numpy as np
import pytest

from corrections_kb.index import EXACT_MAX_ITEMS, ExactIndex, HnswIndex, IdMask, make_index

DIM = 64


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    return np.arange(1, n + 1), vecs


@pytest.fixture(params=["exact", "hnsw"])
def index(request):
    return ExactIndex(DIM) if request.param == "exact" else HnswIndex(DIM)


def test_make_index_threshold():
    assert isinstance(make_index(384, 10), ExactIndex)
    assert isinstance(make_index(384, EXACT_MAX_ITEMS - 1), ExactIndex)
    assert isinstance(make_index(384, EXACT_MAX_ITEMS), HnswIndex)
    assert isinstance(make_index(384, 10, kind="hnsw"), HnswIndex)
    with pytest.raises(ValueError):
        make_index(384, 10, kind="faiss")


def test_add_search_remove(index):
    ids, vecs = _data(500)
    index.add(ids, vecs)
    assert len(index) == 500 and 7 in index and 501 not in index
    got, sims = index.search(vecs[41] * 3.0, 5)  # scale does not matter: cosine
    assert got[0] == 42 and sims[0] == pytest.approx(1.0, abs=2e-3)
    assert np.all(np.diff(sims) <= 1e-6)
    index.remove([42, 9999])
    assert 42 not in index and len(index) == 499
    assert 42 not in index.search(vecs[41], 5)[0]
    # replacing a vector: add with an existing id
    index.add([7], vecs[100:101])
    assert index.search(vecs[100], 2)[0].tolist()[:2] in ([7, 101], [101, 7])
    assert len(index) == 499
    np.testing.assert_allclose(index.get([101])[0], vecs[100] / np.linalg.norm(vecs[100]), atol=2e-3)
    assert np.isnan(index.get([42])[0]).all()


def test_allowed_ids(index):
    ids, vecs = _data(2000)
    index.add(ids, vecs)
    allowed = np.arange(2, 2001, 2)  # even ids only: a permissive filter (over-fetch path)
    got, _ = index.search(vecs[0], 10, allowed_ids=allowed)  # id 1 is odd
    assert len(got) == 10 and np.all(got % 2 == 0)
    few = IdMask.from_ids([5, 17, 1999])  # a selective filter (exact over the subset)
    got, sims = index.search(vecs[16], 10, allowed_ids=few)
    assert got.tolist()[0] == 17 and sorted(got.tolist()) == [5, 17, 1999]
    assert index.search(vecs[0], 10, allowed_ids=IdMask.from_ids([]))[0].size == 0


def test_exact_and_hnsw_agree_on_random_data():
    ids, vecs = _data(3000, seed=1)
    exact, hnsw = ExactIndex(DIM), HnswIndex(DIM)
    exact.add(ids, vecs)
    hnsw.add(ids, vecs)
    rng = np.random.default_rng(2)
    # Queries near stored items: the top result is the same item (the graph is built by several
    # threads, so under load one query in fifty may land on its approximate neighbour).
    near = vecs[rng.choice(3000, 50, replace=False)] + 0.1 * rng.standard_normal((50, DIM)).astype(np.float32)
    assert sum(exact.search(q, 1)[0][0] == hnsw.search(q, 1)[0][0] for q in near) >= 49
    # Pure random queries: HNSW is approximate, but should almost always agree.
    agree = sum(exact.search(q, 1)[0][0] == hnsw.search(q, 1)[0][0] for q in rng.standard_normal((100, DIM)))
    assert agree >= 90  # the graph is built by several threads: not bit-for-bit repeatable under load
    # and the similarities match (f16 storage in HNSW: ~1e-3)
    q = next(q for q in near if exact.search(q, 1)[0][0] == hnsw.search(q, 1)[0][0])
    e_ids, e_sims = exact.search(q, 5)
    h_ids, h_sims = hnsw.search(q, 5)
    assert e_ids[0] == h_ids[0] and len(set(e_ids.tolist()) & set(h_ids.tolist())) >= 4
    np.testing.assert_allclose(e_sims[0], h_sims[0], atol=3e-3)


def test_hnsw_save_load(tmp_path):
    ids, vecs = _data(300)
    h = HnswIndex(DIM)
    h.add(ids, vecs)
    h.save(tmp_path / "x.usearch")
    back = HnswIndex.load(tmp_path / "x.usearch", DIM)
    assert len(back) == 300 and back.search(vecs[3], 1)[0][0] == 4
    with pytest.raises(ValueError):
        HnswIndex.load(tmp_path / "x.usearch", DIM + 1)


def test_bad_input(index):
    with pytest.raises(ValueError):
        index.add([1], np.zeros((1, DIM)))
    with pytest.raises(ValueError):
        index.add([1], np.ones((1, DIM + 1)))
    with pytest.raises(ValueError):
        index.add([0], np.ones((1, DIM)))
    assert index.search(np.ones(DIM), 3)[0].size == 0  # empty index


def test_exact_index_grows_and_swaps_rows():
    ex = ExactIndex(DIM, capacity=4)
    ids, vecs = _data(100)
    for i in range(0, 100, 7):
        ex.add(ids[i:i + 7], vecs[i:i + 7])
    ex.remove(ids[::3])
    remaining = [i for i in ids if i not in set(ids[::3])]
    assert sorted(ex.ids().tolist()) == remaining
    for i in remaining[:20]:
        assert ex.search(vecs[i - 1], 1)[0][0] == i
