"""Evaluations on a checkpoint that is not the zoo's: its own chat template, BOS, <|eot_id|>, no pad."""

from __future__ import annotations

import math

import pytest
import torch

from foreign import BOS, EOT, make_foreign_family, make_tokenizer, write_paper_profile
from reprolib.errors import EvalError
from reprolib.evals import generate as G
from reprolib.evals.ppl import prefix_id
from reprolib.evals.suite import evaluate
from reprolib.zoo import data as D

HEAD = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return make_foreign_family(tmp_path_factory.mktemp("foreign"))


@pytest.fixture(scope="module")
def foreign(paths):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(paths["instruct"]).eval(), AutoTokenizer.from_pretrained(paths["instruct"])


def test_family_profile_and_block_varying_vectors(paths, tmp_path):
    from reprolib.io import Checkpoint
    from reprolib.vectors import is_block, layer_cosines, task_vector
    from reprolib.zoo.profiles import load_paper_profile

    assert set(paths) == {"base", "instruct", "math", "code", "ua", "lang_a", "lang_b", "ua_s1", "ua_s2",
                          "math_s1", "math_s2", "code_s1", "code_s2"}
    profile = write_paper_profile(tmp_path / "paper-foreign.yaml", paths)
    assert load_paper_profile(profile) == paths
    sd = {r: Checkpoint(paths[r]).state_dict() for r in ("base", "instruct", "math")}
    instr = {k: task_vector(sd["instruct"][k], sd["base"][k]) for k in sd["base"]}
    comp = {k: task_vector(sd["math"][k], sd["base"][k]) for k in sd["base"]}
    cos = [c for layer, c in layer_cosines(comp, instr).items() if is_block(layer)]
    assert len(cos) == 4 and max(cos) - min(cos) > 0.1


def test_generate_uses_the_models_template_and_stops_at_eot(foreign):
    model, tok = foreign
    assert tok.pad_token is None and tok.eos_token == EOT and tok.bos_token == BOS
    rendered = G.render(tok, "How many apples?")
    assert rendered == HEAD + "How many apples?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    assert tok(rendered, add_special_tokens=False)["input_ids"].count(tok.bos_token_id) == 1  # no second BOS
    assert G.stop_tokens(tok) == [EOT] and G.stop_ids(tok, model) == [tok.convert_tokens_to_ids(EOT)]
    # steer the random model: a first token, then <|eot_id|>; the batch (uneven lengths) pads with EOS
    first, eot = tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids(EOT)
    model.generation_config.sequence_bias = {(first,): 50.0, (first, eot): 200.0}
    try:
        outs = G.generate(model, tok, ["How many apples?", "Write a Python function that returns x plus 3."],
                          max_new_tokens=8)
    finally:
        model.generation_config.sequence_bias = None
    assert outs == ["a", "a"] and tok.pad_token is None


def test_outputs_are_cut_at_the_first_stop_id(foreign, monkeypatch):
    model, tok = foreign
    eot, a, b = tok.convert_tokens_to_ids(EOT), tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("b")

    def fake_generate(input_ids, **kw):
        assert kw["eos_token_id"] == [eot] and kw["pad_token_id"] == eot   # no pad token: EOS pads
        return torch.cat([input_ids, torch.tensor([[a, eot, b, b]] * len(input_ids))], 1)

    monkeypatch.setattr(model, "generate", fake_generate)
    assert G.generate(model, tok, ["x", "a longer prompt"], max_new_tokens=4) == ["a", "a"]


def test_evaluate_on_a_foreign_model(foreign):
    model, tok = foreign
    sets = {"english": D.english_paragraphs("test")[:2], "harmful": D.harmful_prompts(11, split="test")[:3],
            "math": D.math_problems(3, 0, "test"), "code": D.code_tasks(2, 0, "test")}
    out = evaluate(model, tok, sets, ["ppl", "harm", "math", "code"])
    assert all(math.isfinite(v) for v in out["scores"].values()) and set(out["scores"]) == {"ppl", "harm", "math", "code"}
    assert 1 <= out["scores"]["harm"] <= 5 and out["scores"]["ppl"] > 1
    for m in ("harm", "math", "code"):
        assert out["prompt_text"][m].startswith(HEAD), m
    assert out["prompt_text"]["ppl"] == BOS + sets["english"][0]          # the BOS is the prefix token
    assert prefix_id(tok) == tok.bos_token_id
    assert [len(out["items"][m]) for m in ("ppl", "harm", "math", "code")] == [2, 3, 3, 2]


def test_tokenizer_without_template_errors_unless_raw(tmp_path, foreign):
    from transformers import AutoTokenizer

    model, _ = foreign
    make_tokenizer(chat_template=None).save_pretrained(tmp_path / "base-tokenizer")
    tok = AutoTokenizer.from_pretrained(tmp_path / "base-tokenizer")
    with pytest.raises(EvalError, match="base-tokenizer.*has no chat template.*chat=False"):
        G.generate(model, tok, ["hi"], max_new_tokens=2)
    with pytest.raises(EvalError, match="no chat template"):
        evaluate(model, tok, {"math": D.math_problems(1, 0, "test")}, ["math"])
    assert G.render(tok, "hi", chat=False) == BOS + "hi\n"
    assert len(G.generate(model, tok, ["hi"], max_new_tokens=2, chat=False)) == 1


def test_zoo_tokenizer_renders_the_old_chat_prompt(tmp_path):
    from transformers import AutoTokenizer

    from reprolib.zoo.tokenizer import END, chat_prompt, train_tokenizer

    train_tokenizer(D.english_paragraphs("test")[:50], vocab_size=300).save_pretrained(tmp_path / "zoo-tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "zoo-tok")
    for p in ["How many apples?", "Sentence: a b\nIs it fine?", "  {{ braces }} and trailing space  ", ""]:
        assert G.render(tok, p).encode() == chat_prompt(p).encode()
    assert G.render(tok, "x", chat=False) == "x\n"                          # no BOS: raw format unchanged
    assert G.stop_tokens(tok) == [END] and prefix_id(tok) == tok.convert_tokens_to_ids(END)
