"""The chapter kit: one shared path from roles to verdicts.

``open_chapter`` (profile → models, seeds, banner, paper numbers, scorer), ``Scorer`` (merge any
method from any role into any role, one evaluation suite, cache), ``pages`` (side-by-side tables,
doubts, glue, summaries) and the claim registry in ``reprolib.claims``.
"""

from reprolib.kit.chapter import Chapter, open_chapter, open_frame
from reprolib.kit.scorer import Scorer, resolved

__all__ = ["Chapter", "open_chapter", "open_frame", "Scorer", "resolved"]
