"""lm-eval (EleutherAI harness 0.4) tasks over the zoo's local data: perplexity and maths.

Two evals fit the harness as is, and run through it here from task YAMLs over local jsonl:

- ``zoo_ppl_<name>``: ``loglikelihood_rolling`` over held-out paragraphs (word/byte perplexity,
  bits per byte — lm-eval's WikiText task, on our text);
- ``zoo_math``: ``generate_until`` on chat-formatted word problems, stop at ``<|end|>``, the last
  integer of the reply (regex filter, ``group_select: -1``) exact-matched to the answer (GSM8K's
  zero-shot convention).

The in-process functions in :mod:`reprolib.evals.generate` and :mod:`reprolib.evals.ppl` compute
the same numbers without the harness' start-up cost, for the many merged models of a chapter;
``tests/test_lmeval.py`` holds them equal to lm-eval's. Code pass@1 (sandboxed execution of
generated code), the harm judge, refusal and the prompt attacks do not fit lm-eval's metric
interface (they need a subprocess sandbox, a judge model or perturbed prompts), so they are
plain functions.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

from reprolib.zoo.data import Example
from reprolib.zoo.tokenizer import END, chat_prompt

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
doc_to_text: "{{{{chat_prompt}}}}"
doc_to_target: "{{{{value}}}}"
target_delimiter: ""
generation_kwargs:
  until: ["{end}"]
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


def write_tasks(folder: str | os.PathLike, texts: Sequence[str] = (), math: Sequence[Example] = (),
                ppl_name: str = "english") -> list[str]:
    """Write task YAMLs and their jsonl data into ``folder``; return the task names."""
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
        data = folder / "zoo_math.jsonl"
        data.write_text("".join(json.dumps({"chat_prompt": chat_prompt(e.prompt), "value": e.meta["value"]}) + "\n"
                                for e in math))
        (folder / "zoo_math.yaml").write_text(MATH_YAML.format(task="zoo_math", data=data, end=END))
        names.append("zoo_math")
    return names


def run_lm_eval(model, tokenizer, texts: Sequence[str] = (), math: Sequence[Example] = (), batch_size: int = 16,
                max_length: int | None = None, samples: bool = False):
    """Run the zoo's lm-eval tasks on an in-memory model; returns ``{task: {metric: value}}``
    (and, with ``samples``, lm-eval's per-sample records by task).

    Metric keys drop lm-eval's filter suffix (``"exact_match,last_number"`` → ``"exact_match"``).
    """
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="reprolib-lmeval-") as tmp:
        old_home = os.environ.get("HF_HOME")
        os.environ["HF_HOME"] = os.path.join(tmp, "hf")  # datasets' Arrow cache, removed with tmp
        try:
            names = write_tasks(tmp, texts, math)
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)
            out = lm_eval.simple_evaluate(model=lm, tasks=names,
                                          task_manager=TaskManager(include_path=tmp, include_defaults=False),
                                          bootstrap_iters=0, log_samples=samples, verbosity="ERROR")
        finally:
            if old_home is None:
                os.environ.pop("HF_HOME", None)
            else:
                os.environ["HF_HOME"] = old_home
    results = {}
    for task, metrics in out["results"].items():
        results[task] = {k.split(",")[0]: v for k, v in metrics.items()
                         if "," in k and not k.split(",")[0].endswith("_stderr") and isinstance(v, (int, float))}
    return (results, out.get("samples", {})) if samples else results
