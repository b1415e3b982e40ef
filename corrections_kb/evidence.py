"""What the evidence supports: when a new item repeats, widens, or supersedes a stored one.

Scope from evidence (as in C3PO): an item distilled from a correction on one object
instance is narrow (its scope names that instance, `scope["object"]`). When a correction
on a second instance agrees with it (the same effect within tolerance, the same skill,
the same category, or for a preference the same group), the stored item widens to the
category (or group) instead of a second item being added. An operator who says so
("always ...") gets a wide item at once (the distiller does not narrow those).

A narrow item that a stored wide one already covers reinforces the wide one.

Revision: a new preference for the same things but another container, a new order with
another first, a new meaning of the same word, supersedes the stored one (which is
disabled, not deleted: its history stays).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from corrections_kb.effects import Alias, GraspOffset, InsertStep, Note, Order, ParamChange, PreferredContainer
from corrections_kb.knowledge import Knowledge
from robot.vocab import group_of

VALUE_TOLERANCE = 0.01  # parameter values within 1 cm (or 0.01 rad) are the same lesson


def same_effect(a: Knowledge, b: Knowledge, tol: float = VALUE_TOLERANCE) -> bool:
    """Equal effects, with parameter values equal within `tol`."""
    ea, eb = a.effect, b.effect
    if ea == eb:
        return True
    if not isinstance(ea, (ParamChange, GraspOffset)) or type(ea) is not type(eb):
        return False
    if {k: v for k, v in ea.items() if k != "value"} != {k: v for k, v in eb.items() if k != "value"}:
        return False
    if ea.value is None or eb.value is None:  # type: ignore[union-attr]
        return False
    va = np.atleast_1d(np.asarray(ea.value, float))
    vb = np.atleast_1d(np.asarray(eb.value, float))  # type: ignore[union-attr]
    return va.shape == vb.shape and bool(np.all(np.abs(va - vb) <= tol))


def scope_key(k: Knowledge) -> tuple[Any, ...]:
    """Where an item applies: two items with the same effect and key are the same item."""
    s = k.scope
    return (s.get("skill"), s.get("object_category"), s.get("object"), s.get("user"), s.get("site"),
            s.get("task") if isinstance(k.effect, (Order, InsertStep, Note)) else None)


def is_narrow(k: Knowledge) -> bool:
    return k.scope.get("object") is not None


@dataclass(frozen=True)
class Widening:
    """How a stored narrow item widens when a second instance agrees with it."""

    level: str  # "category" or "group"
    changes: dict[str, Any]  # for KnowledgeStore.update


def agreement(stored: Knowledge, new: Knowledge) -> Widening | None:
    """The widening of `stored` that `new` supports, or None (see the module docstring)."""
    if not (is_narrow(stored) and stored.active and stored.kind == new.kind) or new.scope.get("object") is None:
        return None
    s, n = stored.scope, new.scope
    if s.get("object") == n.get("object") or s.get("skill") != n.get("skill") or \
            (s.get("user"), s.get("site")) != (n.get("user"), n.get("site")):
        return None
    category = s.get("object_category")
    if category == n.get("object_category") and same_effect(stored, new):
        return Widening("category", widened_changes(stored, "category", category, stored.effect))
    es, en = stored.effect, new.effect
    if isinstance(es, PreferredContainer) and isinstance(en, PreferredContainer) and es.target == en.target \
            and category and n.get("object_category") and group_of(category) == group_of(str(n["object_category"])):
        group = group_of(category)
        return Widening("group", widened_changes(stored, "group", group, PreferredContainer(es.target, applies_to=group)))
    return None


def widened_changes(k: Knowledge, level: str, category: str | None, effect: Any) -> dict[str, Any]:
    """The changes that make narrow `k` cover every `category` (a category or a group) with `effect`."""
    statements = k.provenance.get("widened_statements") or {}
    statement = statements.get(level) or f"{k.statement} (for every {category})"
    provenance = {**k.provenance, "widened": level}
    return {"scope": {**k.scope, "object": None, "object_category": category}, "effect": effect,
            "statement": statement, "provenance": provenance}


def covers(stored: Knowledge, new: Knowledge) -> bool:
    """True if a stored wide item already says what the narrow `new` says about its instance."""
    if is_narrow(stored) or not stored.active or not is_narrow(new) or stored.kind != new.kind:
        return False
    s, n = stored.scope, new.scope
    if (s.get("skill"), s.get("user"), s.get("site")) != (n.get("skill"), n.get("user"), n.get("site")):
        return False
    es, en = stored.effect, new.effect
    if isinstance(es, PreferredContainer) and isinstance(en, PreferredContainer):
        category = str(n.get("object_category"))
        return es.target == en.target and es.applies_to in (category, group_of(category))
    return s.get("object_category") == n.get("object_category") and same_effect(stored, new)


def supersedes(new: Knowledge, stored: Knowledge) -> bool:
    """True if `new` revises `stored`: the same question answered otherwise, for the same people."""
    if not stored.active or (stored.scope.get("user"), stored.scope.get("site")) != (new.scope.get("user"), new.scope.get("site")):
        return False
    en, es = new.effect, stored.effect
    if isinstance(en, PreferredContainer) and isinstance(es, PreferredContainer):
        if en.target == es.target:
            return False
        if is_narrow(new):  # an exception for one instance revises only what was said about that instance
            return stored.scope.get("object") == new.scope.get("object") and en.applies_to == es.applies_to
        # a rule for a kind revises what was said about that kind and about its instances
        return es.applies_to == en.applies_to or (es.applies_to is not None and group_of(es.applies_to) == en.applies_to)
    if isinstance(en, Order) and isinstance(es, Order):
        return en.then == es.then and en.first != es.first and stored.scope.get("task") == new.scope.get("task")
    if isinstance(en, Alias) and isinstance(es, Alias):
        return en.word == es.word and en.means != es.means
    return False


__all__ = ["VALUE_TOLERANCE", "Widening", "agreement", "covers", "is_narrow", "same_effect", "scope_key", "supersedes",
           "widened_changes"]
