"""String-keyed policies: `rule_based`, `learned:PATH`, and any installed `corrigo.policies` entry point."""
from __future__ import annotations

from typing import Callable, Iterable

from policies.base import HighLevelPolicy, PolicyError
from robot.registry import Registry

PolicyFactory = Callable[[str], HighLevelPolicy]  # gets what follows `name:` ("" for a bare name)
POLICIES: Registry[HighLevelPolicy] = Registry("policy", "corrigo.policies", {"learned": "policies.learned"},
                                               call_with="argument", error=PolicyError)


def register_policy(name: str, factory: PolicyFactory, *, requires: Iterable[str] = (), usage: str = "",
                    install: str = "") -> None:
    """`--policy NAME[:ARG]` builds `factory(ARG)`."""
    POLICIES.register(name, factory, requires=requires, usage=usage, install=install)


def make_policy(spec: str) -> HighLevelPolicy:
    """`name` or `name:argument` (e.g. `learned:runs/ckpt`)."""
    return POLICIES.make(spec)


def known_policies() -> list[str]:
    return POLICIES.known()


def rule_based_policy(arg: str) -> HighLevelPolicy:
    from policies.rule_based import RuleBasedPolicy

    if arg:
        raise PolicyError("the rule_based policy takes no argument")
    return RuleBasedPolicy()


register_policy("rule_based", rule_based_policy)
