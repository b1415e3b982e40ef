"""`SqliteKnowledgeStore` implements the `KnowledgeStore` protocol method by method (signatures, not
just names), and the protocol covers what `corrigo kb` and the agent call on a store."""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from corrections_kb.store import KnowledgeStore, SqliteKnowledgeStore
from corrections_kb.store.protocol import KnowledgeStore as ProtocolFromModule

ROOT = Path(__file__).resolve().parents[1]
_PROTOCOL_INTERNALS = {"__init__", "__subclasshook__", "__class_getitem__", "__init_subclass__"}


def protocol_members(proto: type) -> dict[str, Any]:
    return {name: value for name, value in vars(proto).items()
            if (callable(value) or isinstance(value, property)) and name not in _PROTOCOL_INTERNALS
            and not (name.startswith("_") and not (name.startswith("__") and name.endswith("__")))
            and not name.startswith("_abc")}


def signature_problems(want: Callable[..., Any], have: Callable[..., Any]) -> list[str]:
    """Why `have` cannot be called every way `want` can (empty: compatible)."""
    w, h = inspect.signature(want), inspect.signature(have)
    problems = []
    hp = h.parameters
    for name, p in w.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            if not any(q.kind is q.VAR_KEYWORD for q in hp.values()):
                problems.append(f"no **{name}")
            continue
        if p.kind is p.VAR_POSITIONAL:
            if not any(q.kind is q.VAR_POSITIONAL for q in hp.values()):
                problems.append(f"no *{name}")
            continue
        q = hp.get(name)
        if q is None:
            problems.append(f"no parameter {name!r}")
            continue
        if q.kind is not p.kind:
            problems.append(f"{name!r} is {q.kind.description}, the protocol says {p.kind.description}")
        if p.default is not q.default and p.default != q.default:
            problems.append(f"{name!r} defaults to {q.default!r}, the protocol says {p.default!r}")
    for name, q in hp.items():  # extra parameters must be optional
        if name not in w.parameters and q.default is q.empty and q.kind not in (q.VAR_KEYWORD, q.VAR_POSITIONAL):
            problems.append(f"extra required parameter {name!r}")
    if list(w.parameters)[:1] != list(hp)[:1]:
        problems.append("not a method")
    return problems


def conformance_problems(proto: type, impl: type) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, want in protocol_members(proto).items():
        have = inspect.getattr_static(impl, name, None)
        if have is None:
            out[name] = ["missing"]
        elif isinstance(want, property):
            out[name] = [] if isinstance(have, property) else ["not a property"]
        else:
            out[name] = signature_problems(want, have)
    return {k: v for k, v in out.items() if v}


def test_protocol_is_complete():
    names = set(protocol_members(KnowledgeStore))
    assert KnowledgeStore is ProtocolFromModule
    assert names >= {"list", "search", "add", "add_many", "get", "get_many", "update", "disable", "enable", "undo",
                     "history", "record_use", "export_jsonl", "import_jsonl", "stats", "check", "count", "close",
                     "__enter__", "__exit__", "location"}


def test_sqlite_store_satisfies_the_protocol():
    assert conformance_problems(KnowledgeStore, SqliteKnowledgeStore) == {}


class _Incomplete:
    """A store that gets the protocol slightly wrong, to show the check can fail."""

    location = "nowhere"  # not a property

    def add(self, k: Any) -> int: ...  # no `reason`
    def get(self, item_id: int, strict: bool) -> Any: ...  # an extra required parameter
    def list(self, active_only: bool = False, kind: str | None = None, **scope: Any) -> Any: ...  # other default
    def search(self, *args: Any) -> Any: ...  # no keywords at all


def test_the_check_finds_mismatches():
    problems = conformance_problems(KnowledgeStore, _Incomplete)
    assert problems["location"] == ["not a property"]
    assert problems["add"] == ["no parameter 'reason'"]
    assert problems["get"] == ["extra required parameter 'strict'"]
    assert problems["list"][0] == "'active_only' defaults to False, the protocol says True"
    assert "no parameter 'query_text_emb'" in problems["search"]
    assert problems["undo"] == ["missing"]


@pytest.mark.parametrize("path", ["agent/cli_kb.py", "agent/knowledge.py", "agent/eval.py"])
def test_callers_use_only_protocol_methods(path):
    """Every `store.<method>(` a caller writes is in the protocol (so another backend serves it)."""
    used = set(re.findall(r"\bstore\.(\w+)\b", (ROOT / path).read_text()))
    assert used, path
    assert used <= set(protocol_members(KnowledgeStore)), used - set(protocol_members(KnowledgeStore))
