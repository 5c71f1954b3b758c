"""Merge methods (pure tensor functions), their registry, and the streaming engine."""

from reprolib.merge import methods
from reprolib.merge.engine import MergeSpec, PreparedMerge, merge, merge_state_dicts
from reprolib.merge.registry import REGISTRY, get_method

__all__ = ["MergeSpec", "PreparedMerge", "REGISTRY", "get_method", "merge", "merge_state_dicts", "methods"]
