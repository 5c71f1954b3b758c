"""Shared check of a chapter's claims on the paper's own printed numbers (imported by the chapters'
claim tests): every part reproduces except exactly the parts the transcription lists under
``claim_contradictions``, and a claim fails as a whole exactly when one of its parts is listed."""

from __future__ import annotations

from reprolib.claims import NOT_REPRODUCED, REPRODUCED


def assert_paper_verdicts(verdicts: dict, contradicted: set) -> None:
    tested = {}
    for v in verdicts.values():
        for part in v.parts or [v]:
            tested[part.claim] = part.verdict
            assert part.ci[0] == part.ci[1] == part.estimate      # identical seeds, no items: zero width
        whole = NOT_REPRODUCED if any(p.claim in contradicted for p in v.parts or [v]) else REPRODUCED
        assert v.verdict == whole, v.claim
    assert {c for c, verdict in tested.items() if verdict != REPRODUCED} == contradicted
    assert {c for c, verdict in tested.items() if verdict == NOT_REPRODUCED} == contradicted
