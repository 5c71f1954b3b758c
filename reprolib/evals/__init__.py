"""Evaluation wrappers: one function per metric, each returning a score and per-sample records."""
