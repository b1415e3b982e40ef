"""The scorer's shape, apart from `model` so that reading and checking a checkpoint's config
(and refusing a bad one) does not import torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class ScorerConfig:
    n_ctx: int
    n_cand: int
    text_dim: int = 384
    image_dim: int = 1280
    use_image: bool = False
    proj: int = 32
    image_proj: int = 16
    hidden: int = 64
    dropout: float = 0.1
    image_dropout: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ScorerConfig":
        known = set(ScorerConfig.__dataclass_fields__)
        return ScorerConfig(**{k: v for k, v in d.items() if k in known})
