"""How a `Knowledge` item maps to rows of the SQLite tables (columns, vectors, history snapshots)."""
from __future__ import annotations

import functools
import json
from typing import Any, Mapping, Sequence

import numpy as np

from corrections_kb.effects import effect_from_dict
from corrections_kb.errors import KBError
from corrections_kb.knowledge import KNOWLEDGE_KINDS, SCOPE_KEYS, Knowledge

SPACES: tuple[str, ...] = ("text", "visual")
JSON = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)
MAX_PARAMS = 900  # below SQLite's default limit on bound parameters

SCOPE_COLS = tuple(f"scope_{k}" for k in SCOPE_KEYS)
ITEM_COLS = ("id", "uid", "kind", "statement", "effect") + SCOPE_COLS + (
    "provenance", "uses", "successes", "contradictions", "active", "created_at", "updated_at", "version",
    "text_emb_version", "visual_emb_version")
REF_COLS = {"text": len(ITEM_COLS) - 2, "visual": len(ITEM_COLS) - 1}  # where a row holds its embedding versions
SELECT_ITEMS = (
    "SELECT " + ", ".join(f"i.{c}" for c in ITEM_COLS) + ", t.vec, v.vec FROM items i "
    "LEFT JOIN embeddings t ON t.item_id = i.id AND t.space = 'text' AND t.version = i.text_emb_version "
    "LEFT JOIN embeddings v ON v.item_id = i.id AND v.space = 'visual' AND v.version = i.visual_emb_version")
SELECT_ITEMS_NO_VEC = "SELECT " + ", ".join(f"i.{c}" for c in ITEM_COLS) + ", NULL, NULL FROM items i"
INSERT_ITEM = f"INSERT INTO items ({', '.join(ITEM_COLS)}) VALUES ({', '.join('?' * len(ITEM_COLS))})"
INSERT_EMBEDDING = "INSERT INTO embeddings (item_id, space, version, vec) VALUES (?, ?, ?, ?)"
INSERT_HISTORY = ("INSERT INTO item_history (item_id, version, action, at, reason, parent_version, snapshot) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)")


class StoredRowError(ValueError):
    """A stored row that does not decode (a damaged file); the store's public methods turn it
    into a KnowledgeStoreError naming the file."""


def vec_blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def blob_vec(b: bytes) -> np.ndarray:
    if not isinstance(b, bytes) or len(b) % 4:
        raise StoredRowError(f"a stored vector is {type(b).__name__} of {len(b) if isinstance(b, (bytes, str)) else '?'} "
                             "bytes, not float32s")
    v = np.frombuffer(b, dtype="<f4").astype(np.float32)
    if not usable_vectors(v):  # written finite and non-zero, so a damaged blob
        raise StoredRowError("a stored vector is zero or holds a non-finite number")
    return v


def usable_vectors(v: np.ndarray) -> bool:
    """Finite, with a finite non-zero float32 norm per row (what the search index accepts)."""
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(np.atleast_2d(v), axis=1)
    return bool(np.isfinite(norms).all() and (norms > 0).all())


def _loads(text: Any, what: str) -> Any:
    if not isinstance(text, str):
        raise StoredRowError(f"{what} is stored as {type(text).__name__}, not JSON text")
    return json.loads(text)  # JSONDecodeError: the store's boundary reports it


def row_refs(r: Sequence[Any]) -> dict[str, int | None]:
    """The embedding versions a row of SELECT_ITEMS points at."""
    return {s: r[i] for s, i in REF_COLS.items()}


def row_to_knowledge(r: Sequence[Any]) -> Knowledge:
    n = len(ITEM_COLS)
    # Validated when written, so skip re-validation (reading is then ~10x cheaper), except the
    # effect, which is typed here, and the types SQLite does not enforce: a damaged page can
    # hold any type in any column, and that must not travel on as a Knowledge.
    try:
        if not (isinstance(r[0], int) and isinstance(r[1], str) and r[2] in KNOWLEDGE_KINDS and isinstance(r[3], str)
                and all(v is None or isinstance(v, str) for v in r[5:11])
                and all(isinstance(v, int) for v in (*r[12:16], r[18]))
                and all(isinstance(v, (int, float)) for v in r[16:18])):
            raise StoredRowError(f"item {r[0]!r}: a column holds a value of the wrong type")
        provenance = _loads(r[11], "provenance")
        effect = _loads(r[4], "effect")
        if not isinstance(provenance, dict) or not isinstance(effect, dict):
            raise StoredRowError(f"item {r[0]}: its effect or provenance is not a JSON object")
        return Knowledge._trusted(
            kind=r[2], statement=r[3], effect=effect_from_dict(effect), scope=dict(zip(SCOPE_KEYS, r[5:11])),
            text_embedding=None if r[n] is None else blob_vec(r[n]),
            visual_embedding=None if r[n + 1] is None else blob_vec(r[n + 1]),
            provenance=provenance, uses=int(r[12]), successes=int(r[13]), contradictions=int(r[14]),
            active=bool(r[15]), created_at=float(r[16]), updated_at=float(r[17]), version=int(r[18]), id=int(r[0]),
            uid=r[1])
    except KBError as e:  # InvalidKnowledge from the effect: the row, not the caller, is wrong
        raise StoredRowError(f"item {r[0]!r}: {e}") from None


def item_row(k: Knowledge, item_id: int, version: int, refs: Mapping[str, int | None]) -> tuple[Any, ...]:
    return (item_id, k.uid, k.kind, k.statement, JSON(k.effect.to_dict()), *(k.scope[s] for s in SCOPE_KEYS),
            JSON(k.provenance), k.uses, k.successes, k.contradictions, int(k.active), k.created_at,
            k.updated_at, version, refs["text"], refs["visual"])


def snapshot(k: Knowledge, refs: Mapping[str, int | None], **override: Any) -> str:
    """A history snapshot: the item without vectors, plus the versions of its vectors."""
    d = k.to_dict(embeddings=False)
    d.update(override)
    d["text_emb_version"] = refs["text"]
    d["visual_emb_version"] = refs["visual"]
    return JSON(d)


def snapshot_item(snap: str, vecs: Mapping[tuple[str, int], np.ndarray]) -> Knowledge:
    d = _loads(snap, "a history snapshot")
    if not isinstance(d, dict):
        raise StoredRowError("a history snapshot is not a JSON object")
    try:
        refs = {s: d.pop(f"{s}_emb_version", None) for s in SPACES}
        d.update({f"{s}_embedding": vecs.get((s, refs[s])) if refs[s] is not None else None for s in SPACES})
        return Knowledge.from_dict(d)
    except (KBError, TypeError, KeyError) as e:  # validated: a damaged snapshot fails here
        raise StoredRowError(f"a history snapshot does not decode: {e}") from None
