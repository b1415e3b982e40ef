"""One root for every error corrigo raises on purpose; the standard-library mixins stay."""
from __future__ import annotations

from corrections_kb.errors import EmbeddingUnavailable, InvalidKnowledge, KBError, KnowledgeNotFound, KnowledgeStoreError
from hw_drivers.protocol import Err, ProtocolError
from robot.errors import ActionError, CorrigoError


def test_every_error_derives_from_corrigo_error() -> None:
    for cls in (KBError, InvalidKnowledge, KnowledgeStoreError, KnowledgeNotFound, EmbeddingUnavailable, ProtocolError):
        assert issubclass(cls, CorrigoError), cls
    assert issubclass(InvalidKnowledge, ValueError) and issubclass(KnowledgeNotFound, LookupError)
    assert issubclass(ActionError, ValueError)
    e = ProtocolError(Err.BAD_REQUEST, "a request must be a msgpack map", 7)
    assert isinstance(e, CorrigoError) and (e.code, e.req_id, str(e)) == (Err.BAD_REQUEST, 7, "a request must be a msgpack map")
    assert str(KnowledgeNotFound("no item 12")) == "no item 12"
