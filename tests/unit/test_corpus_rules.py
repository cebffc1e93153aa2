"""The strictness corpus through httptools + rota.http.rules, without sockets.

The same corpus runs through the whole proxy in tests/integration/test_corpus.py; here it pins
the parser-level decision of every case, and that a hidden request never parses as one.
"""

from __future__ import annotations

import pytest

from tests.support.corpus import CASES, MARKER, Case
from tests.support.rules_harness import read_stream


def test_corpus_is_large_and_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    assert sum(case.status == 200 for case in CASES) >= 20
    assert all(case.rfc.startswith("RFC ") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
@pytest.mark.parametrize("piece", [65536, 1], ids=["whole", "bytewise"])
def test_case(case: Case, piece: int) -> None:
    result = read_stream(case.raw, piece=piece)
    assert result.status == case.status, result.error
    targets = [forwarded.head.target for forwarded in result.requests]
    assert MARKER not in targets
    if case.status == 200:
        assert len(result.requests) == case.requests
        assert all(forwarded.complete for forwarded in result.requests)
    elif case.stage == "head":
        # Refused before its head was complete: nothing of it would be forwarded.
        assert result.requests == []
    else:
        assert len(result.requests) == 1
        assert not result.requests[0].complete
