"""Corrections: parsing, online handling rules, distillation, storage, retrieval.

Imports nothing from the layers above it.
"""
from corrections_kb.types import KINDS, PLAN_OPS, Correction

__all__ = ["KINDS", "PLAN_OPS", "Correction", "parse"]


def parse(text: str, config: object = None) -> Correction:
    """Parse an utterance into a `Correction`; never raises (see corrections_kb.parser)."""
    from corrections_kb.parser import parse as _parse

    return _parse(text, config)  # type: ignore[arg-type]
