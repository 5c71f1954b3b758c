"""lm-eval (EleutherAI harness 0.4) on an in-memory model: any tasks by name, and task YAMLs
written over local data for perplexity and maths.

:func:`run_tasks` scores a model on the tasks a user names (``gsm8k``, ``humaneval``,
``wikitext`` … on a machine that reaches their datasets, or tasks of an ``include_path`` folder).
:func:`write_tasks` writes two tasks over local jsonl that fit the harness as is:

- ``zoo_ppl_<name>``: ``loglikelihood_rolling`` over held-out paragraphs (word/byte perplexity,
  bits per byte — lm-eval's WikiText task, on our text);
- ``zoo_math``: ``generate_until`` on word problems rendered with the tokenizer's chat template,
  stopping at its stop tokens, the last integer of the reply (regex filter, ``group_select: -1``)
  exact-matched to the answer (GSM8K's zero-shot convention).

The in-process functions in :mod:`reprolib.evals.generate` and :mod:`reprolib.evals.ppl` compute
the same numbers without the harness' start-up cost, for the many merged models of a chapter;
``tests/test_lmeval.py`` holds them equal to lm-eval's. Code pass@1 (sandboxed execution of
generated code), the harm judge, refusal and the prompt attacks do not fit lm-eval's metric
interface (they need a subprocess sandbox, a judge model or perturbed prompts), so they are
plain functions.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

from reprolib.errors import EvalError
from reprolib.evals.generate import render, stop_tokens
from reprolib.evals.items import Example

PPL_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""

MATH_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt_text}}}}"
doc_to_target: "{{{{value}}}}"
target_delimiter: ""
generation_kwargs:
  until: {until}
  do_sample: false
  max_gen_toks: 16
filter_list:
  - name: last_number
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
        group_select: -1
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def write_tasks(folder: str | os.PathLike, tokenizer=None, texts: Sequence[str] = (), math: Sequence[Example] = (),
                ppl_name: str = "english") -> list[str]:
    """Write task YAMLs and their jsonl data into ``folder``; return the task names. Maths prompts
    are rendered with ``tokenizer``'s chat template and stop at its stop tokens."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    if texts:
        name = f"zoo_ppl_{ppl_name}"
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        (folder / f"{name}.yaml").write_text(PPL_YAML.format(task=name, data=data))
        names.append(name)
    if math:
        if tokenizer is None:
            raise EvalError("write_tasks: the maths task needs the tokenizer (chat template and stop tokens)")
        data = folder / "zoo_math.jsonl"
        data.write_text("".join(json.dumps({"prompt_text": render(tokenizer, e.prompt), "value": e.meta["value"]}) + "\n"
                                for e in math))
        until = json.dumps(stop_tokens(tokenizer))
        (folder / "zoo_math.yaml").write_text(MATH_YAML.format(task="zoo_math", data=data, until=until))
        names.append("zoo_math")
    return names


def run_tasks(model, tokenizer, tasks: Sequence[str], include_path: str | os.PathLike | None = None,
              include_defaults: bool = True, batch_size: int = 16, max_length: int | None = None,
              limit: int | None = None, chat: bool = False, samples: bool = False, unsafe_code: bool = False,
              add_bos_token: bool | None = None):
    """Score an in-memory model on lm-eval tasks named by the user; returns ``{task: {metric: value}}``
    (and, with ``samples``, lm-eval's per-sample records by task).

    ``include_path`` adds a folder of task YAMLs (local data); ``include_defaults=False`` skips
    indexing lm-eval's own tasks (faster when every task is local). ``chat`` renders each prompt
    with the tokenizer's chat template (lm-eval's ``apply_chat_template``); ``limit`` caps the
    documents per task; ``add_bos_token`` is HFLM's (None: the tokenizer's default, as ``lm_eval``
    runs it); ``unsafe_code`` lets tasks that execute generated code run (lm-eval's
    ``confirm_run_unsafe_code``, e.g. ``humaneval``: unsandboxed, unlike reprolib's ``code``).
    Metric keys drop lm-eval's filter suffix (``"exact_match,flexible-extract"`` → ``"exact_match"``;
    the first filter's value is kept when a task has several).
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=None if include_path is None else str(include_path),
                          include_defaults=include_defaults)
    # HFLM sets a missing pad token on the tokenizer it is given: hand it a copy
    lm = HFLM(pretrained=model, tokenizer=copy.deepcopy(tokenizer), batch_size=batch_size, max_length=max_length,
              add_bos_token=add_bos_token)
    out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                                  apply_chat_template=chat, confirm_run_unsafe_code=unsafe_code, bootstrap_iters=0,
                                  log_samples=samples, verbosity="ERROR")
    results = {}
    for task, metrics in out["results"].items():
        results[task] = {}
        for key, value in metrics.items():
            name = key.split(",")[0]
            if "," in key and not name.endswith("_stderr") and isinstance(value, (int, float)):
                results[task].setdefault(name, value)
    return (results, out.get("samples", {})) if samples else results


def score_with_tasks(model, tokenizer, spec: dict[str, dict], include_path=None, include_defaults: bool = True) -> dict:
    """Our metrics scored by lm-eval tasks (a paper profile's ``lm_eval``): ``spec`` maps a metric
    name to ``{task, metric, filter (default: the task's first), chat (default: True except ppl),
    unsafe_code, limit}``. Returns the suite's layout: ``{"scores", "items", "prompt_text"}``, the
    items being lm-eval's per-document values under one filter (``[−loglikelihood, count]`` pairs
    for a perplexity metric such as ``word_perplexity``) and the score recomputed from them, so a
    bootstrap over documents is centred on the reported score."""
    from reprolib.errors import EvalError

    out: dict = {"scores": {}, "items": {}, "prompt_text": {}}
    by_chat: dict[bool, dict[str, dict]] = {}
    for ours, s in spec.items():
        by_chat.setdefault(bool(s.get("chat", ours != "ppl")), {})[ours] = s
    for chat, group in by_chat.items():
        tasks = sorted({s["task"] for s in group.values()})
        limits = [s.get("limit") for s in group.values()]
        _, samples = run_tasks(model, tokenizer, tasks, include_path=include_path, include_defaults=include_defaults,
                               chat=chat, samples=True, unsafe_code=any(s.get("unsafe_code") for s in group.values()),
                               limit=None if None in limits else max(limits))
        for ours, s in group.items():
            task, name = s["task"], s["metric"]
            docs = [d for d in samples.get(task, []) if name in d]
            if not docs:
                raise EvalError(f"metric {ours!r}: lm-eval task {task!r} logged no {name!r} per document")
            chosen = s.get("filter") or docs[0].get("filter")
            docs = sorted((d for d in docs if d.get("filter") == chosen), key=lambda d: d["doc_id"])
            if len({d["doc_id"] for d in docs}) != len(docs):
                raise EvalError(f"metric {ours!r}: lm-eval task {task!r} logged a document twice under filter {chosen!r}")
            pairs = isinstance(docs[0][name], (list, tuple))
            if (ours == "ppl") != pairs:
                raise EvalError(f"metric {ours!r}: lm-eval metric {name!r} of task {task!r} is not "
                                f"{'a perplexity' if ours == 'ppl' else 'a per-document score'}")
            items = [[-float(d[name][0]), float(d[name][1])] if pairs else float(d[name]) for d in docs]
            score = (math.exp(sum(i[0] for i in items) / sum(i[1] for i in items)) if pairs
                     else sum(items) / len(items))        # what suite.resample gives over all items
            if not math.isfinite(score):
                raise EvalError(f"metric {ours!r}: lm-eval task {task!r} gave a non-finite score ({score})")
            out["scores"][ours], out["items"][ours] = score, items
            out["prompt_text"][ours] = str(docs[0]["arguments"][0][0])
    return out


def run_lm_eval(model, tokenizer, texts: Sequence[str] = (), math: Sequence[Example] = (), batch_size: int = 16,
                max_length: int | None = None, samples: bool = False):
    """Run the local perplexity and maths tasks (:func:`write_tasks`) on an in-memory model, offline;
    returns what :func:`run_tasks` returns. Texts are tokenised without special tokens
    (``add_bos_token=False``), as :func:`reprolib.evals.ppl.perplexity` does, so a tokenizer that
    adds a BOS of its own (Llama 3) is not scored on it."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="reprolib-lmeval-") as tmp:
        old_home = os.environ.get("HF_HOME")
        os.environ["HF_HOME"] = os.path.join(tmp, "hf")  # datasets' Arrow cache, removed with tmp
        try:
            names = write_tasks(tmp, tokenizer, texts, math)
            return run_tasks(model, tokenizer, names, include_path=tmp, include_defaults=False,
                             batch_size=batch_size, max_length=max_length, samples=samples, add_bos_token=False)
        finally:
            if old_home is None:
                os.environ.pop("HF_HOME", None)
            else:
                os.environ["HF_HOME"] = old_home
