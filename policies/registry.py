"""String-keyed policies: `rule_based`, `learned:PATH`, `vlm:...` (registered by their modules)."""
from __future__ import annotations

import importlib
from typing import Callable

from policies.base import HighLevelPolicy, PolicyError

PolicyFactory = Callable[[str], HighLevelPolicy]
_FACTORIES: dict[str, PolicyFactory] = {}
_LAZY = {"learned": "policies.learned", "vlm": "policies.vlm"}


def register_policy(name: str, factory: PolicyFactory) -> None:
    _FACTORIES[name] = factory


def make_policy(spec: str) -> HighLevelPolicy:
    """`name` or `name:argument` (e.g. `learned:runs/ckpt`)."""
    name, _, arg = spec.partition(":")
    if name not in _FACTORIES and name in _LAZY:
        importlib.import_module(_LAZY[name])
    if name not in _FACTORIES:
        raise PolicyError(f"unknown policy {spec!r} (known: {', '.join(sorted(set(_FACTORIES) | set(_LAZY)))})")
    return _FACTORIES[name](arg)


def _rule_based(arg: str) -> HighLevelPolicy:
    from policies.rule_based import RuleBasedPolicy

    if arg:
        raise PolicyError("the rule_based policy takes no argument")
    return RuleBasedPolicy()


register_policy("rule_based", _rule_based)
