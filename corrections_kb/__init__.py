"""Corrections: parsing, distillation, storage, retrieval.

Imports only `robot` (the vocabulary leaf and the lexicon types); each skill's words come
in as the `Lexicon` the caller hands over.
"""
from corrections_kb.types import KINDS, PLAN_OPS, Correction

__all__ = ["KINDS", "PLAN_OPS", "Correction", "parse"]


def parse(text: str, config: object = None, lexicon: object = None) -> Correction:
    """Parse an utterance into a `Correction`; never raises (see corrections_kb.parser)."""
    from corrections_kb.parser import parse as _parse

    return _parse(text, config, lexicon)  # type: ignore[arg-type]
