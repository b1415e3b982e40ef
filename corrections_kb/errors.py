"""Errors of the knowledge base. Each message is one line meant for a user.

They derive from `robot.errors.CorrigoError`, the root of every error corrigo raises
on purpose (`corrections_kb` may import `robot`, the leaf layer), so callers catch one type.
"""
from __future__ import annotations

from robot.errors import CorrigoError


class KBError(CorrigoError):
    """Base of every error the knowledge base raises on purpose."""


class InvalidKnowledge(KBError, ValueError):
    """A `Knowledge` item (or its JSON) with a bad field: wrong kind, non-JSON effect, bad embedding..."""


class KnowledgeStoreError(KBError):
    """The store cannot do what was asked: not a knowledge base, corrupt, newer schema, locked, ..."""


class KnowledgeNotFound(KnowledgeStoreError, LookupError):
    """No item with that id."""

    def __str__(self) -> str:  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else "no such item"


class EmbeddingUnavailable(KBError):
    """An embedding model's package is missing or its weights cannot be loaded."""
