"""Knowledge-base scale: insertion rate, index build, retrieval latency, memory and disk.

    python -m bench.bench_kb [--sizes 1000,100000,1000000] [--queries 200] [--dir DIR]

For each size N a fresh SQLite store is filled through `add_many` in batches (one
transaction each) with synthetic items: random kind, a skill out of 6, an object
category out of 30, and **synthetic random embeddings**, L2-normalised, 384-d text for
every item and 1280-d visual too up to --visual-max items. They measure speed and size,
not retrieval quality. Two generators (--data):
- `structured` (default): random points of a 24-d latent space (2000 random cluster
  centres plus spread) mapped into the full dimension, plus noise. Like real sentence
  or image embeddings, nearest neighbours are much closer than random pairs.
- `isotropic`: standard-normal vectors. Every pair is nearly orthogonal, which is the
  worst case for HNSW: its graph build is ~3x slower and its recall drops (measured
  ~75% top-1 at 100k items even for queries at cosine 0.9 to an item).

Then the same file is searched twice, once with the exact (numpy) index and once with
the HNSW (usearch, f16) index, side by side:
- build: time to load the vectors from SQLite into the index (HNSW: build the graph),
  and for HNSW also the reopen time from its on-disk cache;
- store.search(text query, k=10) latency p50/p99, end to end (filter mask, index,
  fetching the items from SQLite, exact re-scoring), also with a scope filter and with
  text + visual queries; queries are stored vectors plus noise (cosine ~0.9 to their
  source item), and "top-1 ok" is how often the source item came first;
- memory: the index's own bytes and the process RSS growth while building it.
With 500k items or more, exact search is measured over --exact-queries-large queries
only (each one scans every vector), and the table says so.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from corrections_kb.knowledge import Knowledge
from corrections_kb.store import SqliteKnowledgeStore

SKILLS = ("pick", "place", "open", "close", "push", "pour")
CATEGORIES = tuple(f"category{i}" for i in range(30))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Synth:
    """Random unit vectors of one dimension; see the module docstring for the two kinds."""

    LATENT, CLUSTERS = 24, 2000

    def __init__(self, dim: int, kind: str, seed: int) -> None:
        self.dim, self.kind = dim, kind
        rng = np.random.default_rng(seed)
        self.proj = rng.standard_normal((self.LATENT, dim)).astype(np.float32) / np.sqrt(self.LATENT)
        self.centres = rng.standard_normal((self.CLUSTERS, self.LATENT)).astype(np.float32)

    def __call__(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "isotropic":
            v = rng.standard_normal((n, self.dim), dtype=np.float32)
        else:
            z = self.centres[rng.integers(0, self.CLUSTERS, n)]
            z = z + 0.5 * rng.standard_normal((n, self.LATENT), dtype=np.float32)
            v = z @ self.proj + 0.3 * rng.standard_normal((n, self.dim), dtype=np.float32) / np.sqrt(self.dim)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v


def _noisy(v: np.ndarray, rng: np.random.Generator, cos: float = 0.9) -> np.ndarray:
    """Unit vectors at cosine ~`cos` to the rows of `v`."""
    noise = rng.standard_normal(v.shape).astype(np.float32)
    noise -= (noise * v).sum(axis=1, keepdims=True) * v  # orthogonal to v
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    q = cos * v + np.sqrt(1 - cos**2) * noise
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _pct(lat: list[float]) -> tuple[float, float]:
    a = np.asarray(lat) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _files_mb(path: Path, suffixes: tuple[str, ...]) -> float:
    return sum(Path(f"{path}{s}").stat().st_size for s in suffixes if Path(f"{path}{s}").exists()) / 1e6


def fill(path: Path, n: int, visual: bool, batch: int, query_ids: np.ndarray, seed: int, data: str
         ) -> tuple[float, dict[str, np.ndarray]]:
    """Insert n items; returns (items/s counting add_many only, the vectors of query_ids)."""
    rng = np.random.default_rng(seed)
    synth_text, synth_vis = Synth(384, data, seed + 1), Synth(1280, data, seed + 2)
    want = set(int(i) for i in query_ids)
    kept: dict[str, dict[int, np.ndarray]] = {"text": {}, "visual": {}}
    insert_s = 0.0
    with SqliteKnowledgeStore(path, persist_index=False) as s, \
            tqdm(total=n, desc=f"insert {n:>9,}", unit="item", unit_scale=True, leave=False) as bar:
        for start in range(0, n, batch):
            m = min(batch, n - start)
            text = synth_text(rng, m)
            vis = synth_vis(rng, m) if visual else None
            skills = rng.integers(0, len(SKILLS), m)
            cats = rng.integers(0, len(CATEGORIES), m)
            items = []
            for j in range(m):
                items.append(Knowledge(
                    kind="skill" if j % 3 else "task", statement=f"synthetic correction {start + j}",
                    effect={"type": "param", "skill": SKILLS[skills[j]], "param": "grasp_offset",
                            "delta": [0.0, 0.01, 0.0]},
                    scope={"skill": SKILLS[skills[j]], "object_category": CATEGORIES[cats[j]]},
                    text_embedding=text[j], visual_embedding=None if vis is None else vis[j],
                    provenance={"episode": f"bench-{start + j}", "utterances": ["a bit to the left"]}))
                if start + j in want:  # ids are 1-based and assigned in order in a fresh store
                    kept["text"][start + j + 1] = text[j]
                    if vis is not None:
                        kept["visual"][start + j + 1] = vis[j]
            t = time.perf_counter()
            s.add_many(items)
            insert_s += time.perf_counter() - t
            bar.update(m)
    return n / insert_s, {sp: np.stack([d[i] for i in sorted(d)]) if d else np.zeros((0, 1))
                          for sp, d in kept.items()} | {"ids": np.array(sorted(kept["text"]))}


def measure(path: Path, kind: str, n: int, q_text: np.ndarray, q_vis: np.ndarray | None, src_ids: np.ndarray,
            n_queries: int) -> dict[str, Any]:
    gc.collect()
    rss0 = _rss_mb()
    out: dict[str, Any] = {"index": kind, "queries": n_queries}
    with SqliteKnowledgeStore(path, index=kind, persist_index=(kind == "hnsw")) as s:
        bars: dict[str, tqdm] = {}

        def progress(space: str, done: int, total: int) -> None:
            if space not in bars:
                bars[space] = tqdm(total=total, desc=f"{kind:5} {space:6} {n:>9,}", unit="vec", unit_scale=True,
                                   leave=False)
            bars[space].update(done - bars[space].n)

        t = time.perf_counter()
        s.build_index(progress=progress)
        out["build_s"] = time.perf_counter() - t
        for b in bars.values():
            b.close()
        out["index_mb"] = sum(v["bytes"] for v in s.index_info().values()) / 1e6
        out["rss_growth_mb"] = _rss_mb() - rss0
        for q in q_text[:3]:  # warm up
            s.search(query_text_emb=q, k=10)
        lat, lat_f, lat_tv, top1, ok = [], [], [], [], 0
        for i in tqdm(range(n_queries), desc=f"{kind:5} search {n:>9,}", leave=False):
            t = time.perf_counter()
            hits = s.search(query_text_emb=q_text[i], k=10)
            lat.append(time.perf_counter() - t)
            top1.append(hits[0].knowledge.id)
            ok += hits[0].knowledge.id == src_ids[i]
            t = time.perf_counter()
            s.search(query_text_emb=q_text[i], k=10,
                     filters={"skill": SKILLS[i % len(SKILLS)], "object_category": CATEGORIES[i % len(CATEGORIES)]})
            lat_f.append(time.perf_counter() - t)
            if q_vis is not None:
                t = time.perf_counter()
                s.search(query_text_emb=q_text[i], query_visual_emb=q_vis[i], k=10)
                lat_tv.append(time.perf_counter() - t)
        out["p50_ms"], out["p99_ms"] = _pct(lat)
        out["filtered_p50_ms"], out["filtered_p99_ms"] = _pct(lat_f)
        if lat_tv:
            out["text_visual_p50_ms"], out["text_visual_p99_ms"] = _pct(lat_tv)
        out["top1_ok"] = ok / n_queries
        out["top1"] = top1
        t = time.perf_counter()
    out["close_s"] = time.perf_counter() - t  # HNSW: writes the index cache
    if kind == "hnsw":
        with SqliteKnowledgeStore(path, index="hnsw") as s:
            t = time.perf_counter()
            s.build_index()
            out["reopen_s"] = time.perf_counter() - t
        out["cache_mb"] = sum(f.stat().st_size for f in path.parent.glob(f"{path.name}.*.usearch")) / 1e6
    return out


def bench_size(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    path = workdir / f"kb-{n}.sqlite"
    for f in workdir.glob(f"kb-{n}.sqlite*"):
        f.unlink()
    visual = n <= args.visual_max
    rng = np.random.default_rng(12345 + n)
    nq = min(args.queries, n)
    query_idx = np.sort(rng.choice(n, size=nq, replace=False))
    t = time.perf_counter()
    rate, src = fill(path, n, visual, args.batch, query_idx, seed=n, data=args.data)
    row: dict[str, Any] = {"n": n, "data": args.data, "visual": visual, "insert_per_s": rate, "fill_s": time.perf_counter() - t,
                           "db_mb": _files_mb(path, ("", "-wal"))}
    t = time.perf_counter()  # opening checks the file (integrity_check up to 64 MB, quick_check above)
    SqliteKnowledgeStore(path, create=False).close()
    row["open_s"] = time.perf_counter() - t
    src_ids = src["ids"]
    order = rng.permutation(nq)  # queries in random order, not by id
    q_text = _noisy(src["text"], rng)[order]
    q_vis = _noisy(src["visual"], rng)[order] if visual else None
    src_ids = src_ids[order]
    exact_q = nq if n < 500_000 else min(nq, args.exact_queries_large)
    row["exact"] = measure(path, "exact", n, q_text, q_vis, src_ids, exact_q)
    row["hnsw"] = measure(path, "hnsw", n, q_text, q_vis, src_ids, nq)
    common = min(len(row["exact"]["top1"]), len(row["hnsw"]["top1"]))
    row["hnsw_agrees_top1"] = float(np.mean(np.array(row["exact"]["top1"][:common]) ==
                                            np.array(row["hnsw"]["top1"][:common])))
    for k in ("exact", "hnsw"):
        del row[k]["top1"]
    if not args.keep:
        for f in workdir.glob(f"kb-{n}.sqlite*"):
            f.unlink()
    return row


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\nknowledge-base benchmark: synthetic random unit embeddings ({rows[0]['data'] if rows else '-'}; "
          "speed and size only, not retrieval quality)")
    print(f"{'items':>9} {'visual':>6} {'insert/s':>9} {'db MB':>8} | {'index':5} {'build s':>8} {'queries':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'filt p50':>8} {'t+v p50':>8} {'top1 ok':>7} {'index MB':>8} "
          f"{'RSS+ MB':>8} {'reopen s':>8} {'open s':>7}")
    for r in rows:
        for k in ("exact", "hnsw"):
            m = r[k]
            head = (f"{r['n']:>9,} {'yes' if r['visual'] else 'no':>6} {r['insert_per_s']:>9,.0f} {r['db_mb']:>8.1f}"
                    if k == "exact" else " " * 35)
            tv = f"{m['text_visual_p50_ms']:>8.2f}" if "text_visual_p50_ms" in m else f"{'-':>8}"
            reopen = f"{m['reopen_s']:>8.2f}" if "reopen_s" in m else f"{'-':>8}"
            opened = f"{r['open_s']:>7.2f}" if k == "exact" and "open_s" in r else ""
            print(f"{head} | {k:5} {m['build_s']:>8.2f} {m['queries']:>7} {m['p50_ms']:>7.2f} {m['p99_ms']:>7.2f} "
                  f"{m['filtered_p50_ms']:>8.2f} {tv} {m['top1_ok']:>7.1%} {m['index_mb']:>8.1f} "
                  f"{m['rss_growth_mb']:>8.0f} {reopen} {opened}")
        print(" " * 35 + f" | HNSW top-1 = exact top-1 on {r['hnsw_agrees_top1']:.1%} of the shared queries; "
              f"HNSW cache on disk {r['hnsw'].get('cache_mb', 0):.0f} MB")
    print(f"peak RSS of the benchmark process: {_peak_rss_mb():,.0f} MB")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated item counts")
    ap.add_argument("--queries", type=int, default=200, help="search queries per size and index")
    ap.add_argument("--exact-queries-large", type=int, default=50,
                    help="exact-search queries for sizes >= 500k (each scans every vector)")
    ap.add_argument("--visual-max", type=int, default=100_000,
                    help="give items 1280-d visual embeddings too up to this size (disk: 5 KB an item)")
    ap.add_argument("--batch", type=int, default=5000, help="items per add_many transaction")
    ap.add_argument("--data", choices=("structured", "isotropic"), default="structured",
                    help="synthetic embedding generator (see above)")
    ap.add_argument("--dir", help="where to put the stores (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the stores (with --dir)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    sizes = [int(float(x)) for x in args.sizes.split(",") if x]
    tmp = None
    if args.dir:
        workdir = Path(args.dir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="corrigo-bench-kb-")
        workdir = Path(tmp)
    rows = []
    try:
        for n in sizes:
            t = time.perf_counter()
            rows.append(bench_size(n, args, workdir))
            print(f"{n:,} items done in {time.perf_counter() - t:.0f} s", flush=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
