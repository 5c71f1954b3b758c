"""Evaluations for any Hugging Face causal LM (no import from the zoo; the zoo supplies data).

``items`` (what a test item is, how an answer is read), ``metrics`` (the metric names),
``generate`` (chat-template prompts, greedy generation, generation-scored metrics), ``ppl``,
``judge`` (harm 1–5), ``sandbox`` (code execution), ``attacks`` (PDR), ``suite`` (``evaluate``:
any metrics, per-item values, ``resample``) and ``lmeval`` (lm-eval tasks by name or local YAML).
"""
