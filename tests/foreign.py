"""A foreign checkpoint family for tests: tiny random Llama models whose tokenizer is not the zoo's.

The tokenizer is a byte-level BPE trained in-process with Llama-3's special tokens and chat
template: BOS ``<|begin_of_text|>`` (also added by the tokenizer itself, as Llama 3's is), EOS
``<|eot_id|>``, no pad token. Experts differ from instruct by small shifts whose size varies by
block, so LATA's per-layer cosines vary. Building a family takes well under a second per role.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

BOS, START, END_HEADER, EOT = "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
ROLES = ("base", "instruct", "math", "code", "ua", "lang_a", "lang_b", "ua_s1", "ua_s2", "math_s1", "math_s2",
         "code_s1", "code_s2")


def corpus() -> list[str]:
    """A few hundred strings of the evaluation domains (the tokenizer's training text)."""
    from reprolib.zoo import data as D

    examples = (D.math_problems(80, 0) + D.code_tasks(40, 0) + D.harmful_prompts(44, split="train")
                + D.instructions(40, 0) + D.sentiment(20, 0) + D.science_qa(20, 0))
    return [e.prompt for e in examples] + [e.answer for e in examples] + D.english_paragraphs("test")[:60]


def make_tokenizer(vocab_size: int = 384, chat_template: str | None = LLAMA3_TEMPLATE):
    """A byte-level BPE with Llama-3 special tokens, BOS added on encode, no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, START, END_HEADER, EOT],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, tok.token_to_id(BOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOT,
                                   additional_special_tokens=[START, END_HEADER])
    fast.chat_template = chat_template
    return fast


def make_model(tokenizer, layers: int = 4, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=None)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


def make_foreign_family(root, roles=ROLES, seed: int = 0) -> dict[str, Path]:
    """Save ``roles`` as HF folders (safetensors + the foreign tokenizer) under ``root``.

    base is random; instruct = base + a small shift; every other role = base + a per-block share
    of instruct's shift + its own small shift (seeded by role), so task vectors measured from
    instruct differ by block.
    """
    root = Path(root)
    tok = make_tokenizer()
    base = make_model(tok, seed=seed)
    n_layers = base.config.num_hidden_layers
    sd = base.state_dict()
    gen = torch.Generator().manual_seed(seed + 1)
    shift = {k: 0.02 * torch.randn(v.shape, generator=gen) for k, v in sd.items()}
    share = torch.linspace(0.2, 0.9, n_layers)
    scale = torch.linspace(0.5, 2.0, n_layers)
    paths = {}
    for i, role in enumerate(roles):
        if role == "base":
            new = sd
        elif role == "instruct":
            new = {k: v + shift[k] for k, v in sd.items()}
        else:
            g = torch.Generator().manual_seed(seed * 1000 + 17 * (i + 1))
            new = {}
            for k, v in sd.items():
                layer = int(k.split(".")[2]) if k.startswith("model.layers.") else 0
                own = 0.02 * scale[layer] * torch.randn(v.shape, generator=g)
                new[k] = v + share[layer] * shift[k] + own
        base.load_state_dict(new)
        paths[role] = root / role
        base.save_pretrained(paths[role])
        tok.save_pretrained(paths[role])
    return paths


def write_paper_profile(path, roles: dict, name: str | None = None, model_type: str = "llama") -> Path:
    """A paper profile YAML (the format ``reprolib.zoo.profiles.load_paper_profile`` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"name": name or path.stem, "model_type": model_type, "roles": {r: str(p) for r, p in roles.items()}}
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def write_sums_task(folder, name: str = "my_sums", filters: bool = False) -> Path:
    """A user's own lm-eval task over local jsonl (four sums; generate_until, exact match), as a
    paper profile's ``lm_eval.include_path`` would hold it; with ``filters``, two answer filters
    (as gsm8k has: lm-eval then logs every document once per filter). Returns the task folder."""
    import json

    folder = Path(folder)
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {a} plus {b}?", "answer": str(a + b)}) + "\n"
                            for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]))
    (folder / "tasks" / f"{name}.yaml").write_text(f"""task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<|eot_id|>"]
  do_sample: false
  max_gen_toks: 8
metric_list:
  - metric: exact_match
""" + ("""filter_list:
  - name: whole
    filter:
      - function: take_first
  - name: last-number
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
        group_select: -1
      - function: take_first
""" if filters else ""))
    return folder / "tasks"
