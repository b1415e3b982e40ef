"""A learned vision-language high-level policy (YAY Robot style, open vocabulary).

    corrigo train --data runs/demos --out runs/policy      # batch training from recorded episodes
    corrigo run --env corrigo/PickPlace-v0 --policy learned:runs/policy

It scores the instructions the skill library can say about the current scene (plus a few
nudges and "done") from MiniLM text embeddings, frozen EfficientNet-lite0 image features,
a colour-naming model for colour words and features of the history; see `model`,
`features`, `candidates`, `data`, `train`.
"""
from __future__ import annotations

from policies.base import HighLevelPolicy, PolicyError
from policies.registry import register_policy


def learned_policy(arg: str) -> HighLevelPolicy:
    if not arg:
        raise PolicyError("the learned policy needs its checkpoint directory: --policy learned:PATH")
    from policies.learned.policy import LearnedPolicy

    return LearnedPolicy(arg)


register_policy("learned", learned_policy, requires=("torch", "safetensors"), usage="learned:PATH")

__all__ = ["LearnedPolicy"]


def __getattr__(name: str):  # LearnedPolicy without importing torch at registry time
    if name == "LearnedPolicy":
        from policies.learned.policy import LearnedPolicy

        return LearnedPolicy
    raise AttributeError(name)
