"""`Knowledge`: one distilled correction, as stored in and retrieved from the knowledge base.

A knowledge item is either task-level ("always put fruit in the basket": a plan
constraint or preference) or skill-level ("grasp mugs 2 cm further along +y in the
mug's frame": a parameter change). It carries a natural-language `statement`, a
structured `effect` (a typed `corrections_kb.effects.Effect`; see `EFFECT_EXAMPLES`), a `scope` saying where
it applies (None = anywhere), text and visual embeddings for retrieval, provenance,
use counts and an `active` flag.

Every field survives `to_json()` / `from_json()` exactly: embeddings are the base64
of their little-endian float32 bytes, numbers are Python floats (whose JSON repr
round-trips), `scope`/`provenance` are normalised through JSON at construction so the
stored value is the value read back (tuples become lists), and `effect` is built from its
dict (v1 or v2) by `effect_from_dict` and written back by `Effect.to_dict`.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from corrections_kb.effects import EFFECT_EXAMPLES, Effect, RawEffect, effect_from_dict
from corrections_kb.errors import InvalidKnowledge

__all__ = [
    "EDITABLE_FIELDS", "EFFECT_EXAMPLES", "KNOWLEDGE_KINDS", "OUTCOMES", "SCOPE_KEYS", "TEXT_DIM", "VISUAL_DIM",
    "Knowledge", "as_embedding", "decode_vector", "encode_vector", "normalize_scope",
]

KNOWLEDGE_KINDS: tuple[str, ...] = ("task", "skill")
SCOPE_KEYS: tuple[str, ...] = ("task", "skill", "object_category", "object", "user", "site")
OUTCOMES: tuple[str, ...] = ("success", "failure", "contradicted")
TEXT_DIM = 384  # all-MiniLM-L6-v2
VISUAL_DIM = 1280  # EfficientNet-lite0 pooled features

# Fields a caller may change with `replace()` / a store's `update()`; the rest are
# bookkeeping owned by the store (id, uid, version, timestamps, counts).
EDITABLE_FIELDS: tuple[str, ...] = (
    "kind", "statement", "effect", "scope", "text_embedding", "visual_embedding", "provenance", "active",
)


def _jsonable(value: Any, what: str) -> Any:
    """`value` as it reads back from JSON (tuples -> lists), or InvalidKnowledge."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InvalidKnowledge(f"{what} must be JSON-serialisable (finite numbers, str keys): {e}") from None


def _json_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidKnowledge(f"{what} must be a dict, got {type(value).__name__}")
    return _jsonable(dict(value), what)  # type: ignore[no-any-return]


def normalize_scope(scope: Mapping[str, Any] | None) -> dict[str, str | None]:
    """A full scope dict (every key of SCOPE_KEYS, None = any); unknown keys are an error."""
    scope = dict(scope or {})
    unknown = sorted(set(scope) - set(SCOPE_KEYS))
    if unknown:
        raise InvalidKnowledge(f"unknown scope key(s) {', '.join(unknown)}; known: {', '.join(SCOPE_KEYS)}")
    out: dict[str, str | None] = {}
    for key in SCOPE_KEYS:
        v = scope.get(key)
        if v is not None and not isinstance(v, str):
            raise InvalidKnowledge(f"scope[{key!r}] must be a string or None, got {type(v).__name__}")
        out[key] = v if v else None  # "" means any, like None
    return out


def as_embedding(vec: Any, what: str, dim: int | None = None) -> np.ndarray | None:
    """A 1-D finite float32 array (a copy), or None. Not normalised: stored as given."""
    if vec is None:
        return None
    if isinstance(vec, str):
        vec = decode_vector(vec, what)
    arr = np.array(vec, dtype=np.float32, copy=True)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidKnowledge(f"{what} must be a 1-D vector, got shape {arr.shape}")
    if dim is not None and arr.size != dim:
        raise InvalidKnowledge(f"{what} must have {dim} dimensions, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InvalidKnowledge(f"{what} has NaN or infinite values")
    if not np.any(arr):
        raise InvalidKnowledge(f"{what} is all zeros (cosine similarity is undefined)")
    return arr


def encode_vector(vec: np.ndarray) -> str:
    """Base64 of the little-endian float32 bytes: exact, and 4/3 the size of the raw bytes."""
    return base64.b64encode(np.ascontiguousarray(vec, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str, what: str = "embedding") -> np.ndarray:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise InvalidKnowledge(f"{what} is not valid base64") from None
    if len(raw) % 4:
        raise InvalidKnowledge(f"{what} has {len(raw)} bytes, not a whole number of float32s")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _vec_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@dataclass(eq=False)
class Knowledge:
    """One distilled correction. Construct with at least `kind` and `statement`.

    `effect` may be given as a dict (v1 or v2 shape) or an `Effect`; it is always an `Effect`
    after construction (an empty dict: `RawEffect()`). `scope` is normalised to every key of
    SCOPE_KEYS (None = applies to any). Use counts
    are statistics, not content: a store's `update`/`undo` version the content fields
    (EDITABLE_FIELDS) and keep counts as they are.
    """

    kind: str
    statement: str
    effect: Effect = field(default_factory=RawEffect)
    scope: dict[str, str | None] = field(default_factory=dict)
    text_embedding: np.ndarray | None = None
    visual_embedding: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # episode, time, operator, utterances: list[str]
    uses: int = 0
    successes: int = 0
    contradictions: int = 0
    active: bool = True
    created_at: float = field(default_factory=time.time)  # unix s
    updated_at: float | None = None  # unix s; defaults to created_at
    version: int = 1
    id: int | None = None  # assigned by a store
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)  # stable across stores (merge on import)

    def __post_init__(self) -> None:
        if self.kind not in KNOWLEDGE_KINDS:
            raise InvalidKnowledge(f"kind must be one of {', '.join(KNOWLEDGE_KINDS)}, got {self.kind!r}")
        if not isinstance(self.statement, str) or not self.statement.strip():
            raise InvalidKnowledge("statement must be a non-empty string")
        self.effect = RawEffect() if self.effect is None else effect_from_dict(self.effect)
        self.scope = normalize_scope(self.scope)
        self.provenance = _json_dict(self.provenance, "provenance")
        self.text_embedding = as_embedding(self.text_embedding, "text_embedding")
        self.visual_embedding = as_embedding(self.visual_embedding, "visual_embedding")
        for name in ("uses", "successes", "contradictions", "version"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InvalidKnowledge(f"{name} must be a non-negative integer, got {v!r}")
            setattr(self, name, int(v))
        if self.version < 1:
            raise InvalidKnowledge("version starts at 1")
        self.active = bool(self.active)
        for name in ("created_at", "updated_at"):
            v = getattr(self, name)
            if v is None and name == "updated_at":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidKnowledge(f"{name} must be a finite unix time in seconds, got {v!r}")
            setattr(self, name, float(v))
        if self.updated_at is None:
            self.updated_at = self.created_at
        if self.id is not None:
            if isinstance(self.id, bool) or not isinstance(self.id, (int, np.integer)) or self.id < 1:
                raise InvalidKnowledge(f"id must be a positive integer or None, got {self.id!r}")
            self.id = int(self.id)
        if not isinstance(self.uid, str) or not self.uid:
            raise InvalidKnowledge("uid must be a non-empty string")

    @classmethod
    def _trusted(cls, **fields: Any) -> "Knowledge":
        """Build without validation, for rows a store validated when it wrote them (reading is
        then ~10x cheaper). Every field must be given, already normalised."""
        self = cls.__new__(cls)
        self.__dict__.update(fields)
        return self

    # ----- derived -----
    @property
    def score(self) -> int:
        """Evidence for the item: successes count once, contradictions twice against it."""
        return self.successes - 2 * self.contradictions

    @property
    def suspended(self) -> bool:
        """More failures and contradictions than successes, by two: no longer applied (until it
        succeeds again elsewhere or is edited); it stays active and listed."""
        failures = max(0, self.uses - self.successes - self.contradictions)
        return failures + 2 * self.contradictions - self.successes >= 2

    @property
    def state(self) -> str:
        """What `kb list` shows: "active", "suspended" (after failures) or "disabled"."""
        return "disabled" if not self.active else ("suspended" if self.suspended else "active")

    @property
    def rank_key(self) -> tuple[int, float, int]:
        """Conflict resolution between items that say different things about the same scope:
        the larger key wins (more evidence first, then the most recently changed)."""
        return (self.score, float(self.updated_at or 0.0), self.id or 0)

    def applies_to(self, **context: str | None) -> bool:
        """True if every scope key the item sets matches `context` (a key it leaves None matches
        anything; a context value of None is not a constraint)."""
        for key, want in context.items():
            if key not in SCOPE_KEYS:
                raise InvalidKnowledge(f"unknown scope key {key!r}; known: {', '.join(SCOPE_KEYS)}")
            have = self.scope.get(key)
            if want is not None and have is not None and have != want:
                return False
        return True

    def replace(self, **changes: Any) -> "Knowledge":
        """A validated copy with `changes` applied (any field)."""
        return dataclasses.replace(self, **changes)

    def content_equal(self, other: "Knowledge") -> bool:
        """Same editable content (ignores ids, versions, timestamps, counts)."""
        return all(_field_equal(getattr(self, f), getattr(other, f)) for f in EDITABLE_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Knowledge):
            return NotImplemented
        return all(_field_equal(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        def emb(v: np.ndarray | None) -> str:
            return "None" if v is None else f"<{v.size}-d>"

        return (f"Knowledge(id={self.id}, kind={self.kind!r}, statement={self.statement!r}, effect={self.effect!r}, "
                f"scope={ {k: v for k, v in self.scope.items() if v is not None} !r}, "
                f"text_embedding={emb(self.text_embedding)}, visual_embedding={emb(self.visual_embedding)}, "
                f"uses={self.uses}, successes={self.successes}, contradictions={self.contradictions}, "
                f"active={self.active}, version={self.version})")

    # ----- JSON -----
    def to_dict(self, embeddings: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; embeddings as base64 float32 (omitted when `embeddings` is False)."""
        d: dict[str, Any] = {
            "id": self.id, "uid": self.uid, "kind": self.kind, "statement": self.statement,
            "effect": self.effect.to_dict(), "scope": self.scope, "provenance": self.provenance,
            "uses": self.uses, "successes": self.successes, "contradictions": self.contradictions,
            "active": self.active, "created_at": self.created_at, "updated_at": self.updated_at,
            "version": self.version,
        }
        if embeddings:
            d["text_embedding"] = None if self.text_embedding is None else encode_vector(self.text_embedding)
            d["visual_embedding"] = None if self.visual_embedding is None else encode_vector(self.visual_embedding)
        return d

    def to_json(self) -> str:
        """One line of JSON (see `to_dict`)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Knowledge":
        """Inverse of `to_dict`. Embeddings may be base64 strings or lists of numbers."""
        if not isinstance(d, Mapping):
            raise InvalidKnowledge(f"a knowledge item must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidKnowledge(f"unknown field(s) {', '.join(unknown)}")
        for required in ("kind", "statement"):
            if required not in d:
                raise InvalidKnowledge(f"missing field {required!r}")
        kw = dict(d)
        if kw.get("uid") is None:
            kw.pop("uid", None)
        try:
            return cls(**kw)
        except TypeError as e:
            raise InvalidKnowledge(str(e)) from None

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> "Knowledge":
        if isinstance(text, Mapping):
            return cls.from_dict(text)
        try:
            d = json.loads(text)
        except ValueError as e:
            raise InvalidKnowledge(f"not valid JSON: {e}") from None
        return cls.from_dict(d)


def _field_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _vec_equal(a, b)
    return bool(a == b) and type(a) is type(b)
