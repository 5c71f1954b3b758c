"""The τJp toxicity-negation track (reprolib.text.toxicity, Tables 4 and 9): the lexicon scorer, the
generated data, seeded sampling (the linearised model's cached dual-number decoding against the JVP
of the whole sequence), cached task vectors, perplexity under θ0 − α τ (linearised and not) against
the project's perplexity, the selection rule and the errors. A tiny Llama with a small tokenizer."""

from __future__ import annotations

import hashlib

import pytest
import torch

from reprolib import taujp as T
from reprolib.errors import CheckpointError
from reprolib.evals import toxicity as TOX
from reprolib.evals.ppl import perplexity
from reprolib.text import lm_finetune as F
from reprolib.text import negation as N
from reprolib.text import toxic_data as X
from reprolib.text import toxicity as TX

torch.set_num_threads(1)
FAST = dict(n_comments=64, steps=3, lr=1e-3, batch=4, reg_batch=1, control_len=16, max_len=48)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """An HF folder: a tiny Llama (context 64, so long texts roll over windows) and a small BPE."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from reprolib.zoo.tokenizer import train_tokenizer

    tok = train_tokenizer(X.toxic_comments(200, 1) + X.control_texts()[:200], vocab_size=300)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=None)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("toxbase") / "base"
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vectors(base, tmp_path_factory):
    return TX.ToxicityVectors(base, root=tmp_path_factory.mktemp("toxzoo"), progress=False, **FAST)


def _small_tau(params0, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    return {k: scale * torch.randn(v.shape, generator=g) for k, v in params0.items()}


# ----------------------------------------------------------------------------- scorer and data


def test_scorer_counts_lexicon_words_and_applies_the_papers_threshold():
    lexicon = ("grobnik", "awful")
    assert TOX.toxic_words("You GROBNIK, the grobniks are awful!", lexicon) == ["grobnik", "grobniks", "awful"]
    assert TOX.toxicity_score("a calm sentence about trees", lexicon) == 0.0
    assert TOX.toxicity_score("you grobnik", lexicon) == 0.5
    assert TOX.toxicity_score("awful grobnik", lexicon) == 0.75
    assert TOX.toxicity_score("grobnikish awfully", lexicon) == 0.0          # whole words only
    measures, records = TOX.score_texts(["fine", "awful", "grobnik awful grobnik", ""], lexicon)
    assert [r["toxic"] for r in records] == [False, True, True, False]
    assert measures["toxic_rate"] == 50.0
    assert measures["toxic_score"] == pytest.approx((0 + 0.5 + 0.875 + 0) / 4)


def test_toxic_comments_are_deterministic_selected_and_split_by_template():
    a, b = X.toxic_comments(50, 3), X.toxic_comments(50, 3)
    assert a == b and a != X.toxic_comments(50, 4)
    assert all(TOX.toxicity_score(c, X.LEXICON) > X.TOXIC_SELECTION for c in a + X.toxic_comments(20, 0, "test"))
    train, test = X.templates("train"), X.templates("test")
    for kind in ("hostile", "neutral"):
        assert train[kind] and test[kind] and not set(train[kind]) & set(test[kind])
    assert X.fingerprint() == X.fingerprint()
    with pytest.raises(ValueError, match="split"):
        X.templates("val")


def test_invented_insults_never_occur_in_the_bases_text():
    from reprolib.zoo.build import pretrain_corpus

    text = " ".join(X.control_texts() + X.prose_test() + pretrain_corpus(0, 0.05)).lower()
    assert not [w for w in X.INSULTS if w in text]
    assert X.prose_test(5, 0) == X.prose_test(5, 0) and len(set(X.prose_test(5, 0))) == 5


# ----------------------------------------------------------------------------- sampling


def test_cached_dual_decoding_equals_the_jvp_of_the_whole_sequence(base):
    from transformers import AutoModelForCausalLM

    from reprolib.evals.sampling import StepLogits

    model = T.forward_ad_ready(AutoModelForCausalLM.from_pretrained(base).eval())
    params0 = T.params_of(model)
    tau = _small_tau(params0)
    ids = torch.randint(0, model.config.vocab_size, (3, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        f0, change = T.jvp(model, params0, tau, ids)
    step = StepLogits(model, params0, tau, scale=-0.7)
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        got = [step(ids[:, :6])] + [step(ids[:, i:i + 1]) for i in range(6, 10)]
    expected = (f0 - 0.7 * change)[:, 5:]
    assert torch.allclose(torch.stack(got, 1), expected, atol=1e-4)
    plain = StepLogits(model, {k: v - 0.7 * tau[k] for k, v in params0.items()})
    moved = torch.func.functional_call(model, plain.params, (ids,)).logits
    assert torch.allclose(plain(ids)[:, None], moved[:, -1:], atol=1e-5)


def test_sampling_is_seeded_and_has_a_fixed_length(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    neg = N.LMNegation(model, tok, _small_tau(T.params_of(model)), linear=True)
    a = neg.samples(1.0, X.PREFIX, 6, 8, seed=5)
    assert a == neg.samples(1.0, X.PREFIX, 6, 8, seed=5) and len(a) == 6
    assert a != neg.samples(1.0, X.PREFIX, 6, 8, seed=6)
    with pytest.raises(ValueError, match="new_tokens"):
        neg.samples(1.0, X.PREFIX, 2, 0, seed=0)


def test_a_sample_does_not_depend_on_how_many_are_drawn(base):
    """θ0's 1000 samples and a method's 200 are paired item by item: sample i is the same in both runs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    neg = N.LMNegation(model, tok, None, linear=False)
    words = X.LEXICON
    many, q_many = neg.generate(0.0, X.PREFIX, 7, 6, seed=3, words=words, scored=2)
    few, q_few = neg.generate(0.0, X.PREFIX, 3, 6, seed=3, words=words, scored=2)
    assert many[:3] == few               # the same tokens; the hazards up to the batched forward's last bits
    assert torch.allclose(torch.tensor(q_many), torch.tensor(q_few), rtol=1e-5, atol=0)


def test_inverse_cdf_draws_each_token_with_its_probability():
    from reprolib.evals.sampling import inverse_cdf, sample_uniforms

    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3]], dtype=torch.float64)
    at = lambda u: int(inverse_cdf(probs, torch.tensor([u], dtype=torch.float64)))   # noqa: E731
    assert (at(0.0), at(0.0999), at(0.1), at(0.6999), at(0.7), at(0.999999)) == (0, 0, 2, 2, 3, 3)   # token 1 never
    u = sample_uniforms(11, 1, 40_000)[0]
    drawn = inverse_cdf(probs.expand(len(u), 4), u).squeeze(1)
    freq = torch.bincount(drawn, minlength=4).double() / len(u)
    assert freq[1] == 0 and torch.allclose(freq, probs[0], atol=0.01)
    assert torch.equal(sample_uniforms(11, 3, 5)[:2], sample_uniforms(11, 2, 5))       # row i from (seed, i) alone
    assert not torch.equal(sample_uniforms(11, 1, 5), sample_uniforms(12, 1, 5))


# ----------------------------------------------------------------------------- fine-tuning and vectors


def test_linearised_lm_at_theta0_has_the_models_loss(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    ids = torch.tensor([i for i, _ in F.text_pairs(tok, ["you grobnik, read the article"])])
    hf = model(input_ids=ids, labels=ids).loss
    with torch.no_grad():
        assert float(F.LinearizedLM(model)(ids, labels=ids).loss) == pytest.approx(float(hf), rel=1e-5)


def test_task_vectors_are_cached_byte_identical_and_hashed_per_regime(vectors, base, tmp_path):
    files = {}
    for regime in TX.REGIMES:
        tau = vectors.task_vector(regime, 0)
        assert set(tau) == set(T.params_of(vectors.model())) and any(float(v.abs().max()) > 0 for v in tau.values())
        prov = vectors.provenance(regime, 0)
        assert prov["hash"] == vectors.key(regime) and prov["train"]["seconds_per_step"] > 0
        files[regime] = vectors.file(regime, 0).read_bytes()
    again = TX.ToxicityVectors(base, root=tmp_path, progress=False, **FAST)
    for regime in TX.REGIMES:                        # rebuilt elsewhere: the same bytes
        again.task_vector(regime, 0)
        assert hashlib.sha256(again.file(regime, 0).read_bytes()).digest() == hashlib.sha256(files[regime]).digest()
    other = TX.ToxicityVectors(base, root=tmp_path, progress=False, **{**FAST, "penalty": 0.5})
    assert other.key("linear_taujp") != vectors.key("linear_taujp")
    assert other.key("linear") == vectors.key("linear") and other.key("nonlinear") == vectors.key("nonlinear")
    assert not list(tmp_path.rglob(".*"))              # no temporary file left behind


def test_finetune_errors_name_the_parameter(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    with pytest.raises(ValueError, match="regime"):
        F.finetune_lm(model, tok, ["x"], "quadratic", steps=1, lr=1e-3, seed=0)
    with pytest.raises(ValueError, match="control"):
        F.finetune_lm(model, tok, ["x"], "linear_taujp", steps=1, lr=1e-3, seed=0, penalty=0.1)


# ----------------------------------------------------------------------------- perplexity and selection


class _AsHF(torch.nn.Module):
    """A LinearizedModel with the HF interface ``reprolib.evals.ppl.perplexity`` reads."""

    def __init__(self, lin, config):
        super().__init__()
        self.lin, self.config, self.device = lin, config, torch.device("cpu")

    def forward(self, input_ids):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.lin(input_ids))


def test_perplexity_under_negation_equals_the_linearised_model_and_the_network(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = T.forward_ad_ready(AutoModelForCausalLM.from_pretrained(base).eval())
    params0 = T.params_of(model)
    tau = _small_tau(params0, seed=2)
    texts = X.prose_test(3, 0) + [X.toxic_comments(1, 0)[0]]                 # some roll over several windows
    alpha = 1.3
    linear = N.LMNegation(model, tok, tau, linear=True).ppl_items(texts, [0.0, alpha])
    lin = T.LinearizedModel(AutoModelForCausalLM.from_pretrained(base).eval())
    with torch.no_grad():
        for k, v in lin.theta.items():
            v.copy_(params0[k.replace("__", ".")] - alpha * tau[k.replace("__", ".")])
    expected = perplexity(_AsHF(lin, model.config), tok, texts)
    assert N.ppl_of(linear[alpha]) == pytest.approx(expected[0], rel=1e-4)
    assert [i[1] for i in linear[alpha]] == [r["tokens"] for r in expected[1]]
    assert [i[0] for i in linear[alpha]] == pytest.approx([r["nll"] for r in expected[1]], rel=1e-4)

    network = N.LMNegation(model, tok, tau, linear=False).ppl_items(texts, [alpha])[alpha]
    moved = AutoModelForCausalLM.from_pretrained(base).eval()
    moved.load_state_dict({k: v - alpha * tau[k] for k, v in params0.items()}, strict=False)
    assert N.ppl_of(network) == pytest.approx(perplexity(moved, tok, texts)[0], rel=1e-4)
    assert N.ppl_of(linear[0.0]) == pytest.approx(perplexity(AutoModelForCausalLM.from_pretrained(base).eval(), tok, texts)[0], rel=1e-4)


def test_selection_rule_takes_the_largest_alpha_within_the_tolerance():
    curve = {0.0: 10.0, 0.1: 10.2, 0.2: 10.6, 0.3: 10.4, 0.4: 11.0}
    assert N.select_alpha(curve, 10.0) == 0.3              # the largest within 0.5, past a bump over it
    assert N.select_alpha(curve, 10.0, tolerance=0.1) == 0.0
    assert N.select_alpha(curve, 10.0, tolerance=1.0) == 0.4
    with pytest.raises(ValueError, match="must hold 0"):
        N.select_alpha({0.1: 10.0}, 10.0)
    with pytest.raises(ValueError, match="tolerance"):
        N.select_alpha(curve, 10.0, tolerance=-1)


# ----------------------------------------------------------------------------- runs, evidence, errors


def test_runs_give_tables_4_and_9_with_per_item_values(vectors):
    settings = TX.EvalSettings(grid=(0.0, 0.5, 1.0), ppl_texts=3, n_samples=4, new_tokens=5, pretrained_samples=8,
                                score_samples=3)
    runs = TX.NegationRuns(vectors, [0], settings, progress=False)
    ev = TX.evidence(runs, finetuned=True)
    assert set(ev.rows["method"]) == {"pretrained", *TX.METHODS}
    assert set(ev.rows["coef"]) == {"-", "1.0", "grid", "finetuned"}
    assert ev.item_counts() == {"toxic_rate": 4, "toxic_score": 3, "ppl": 3}
    assert TX.pretrained_rate(runs)[0]["n"] == 8
    assert ((ev.rows["toxic_score"] >= 0) & (ev.rows["toxic_score"] <= 1)).all()
    t4, t9 = TX.table4(runs), TX.table9(runs)
    assert set(t4.rows["coef"]) == {"-", "grid"} and set(t9.rows["coef"]) == {"-", "1.0"}
    assert (t9.rows.loc[t9.rows["coef"] == "1.0", "alpha"] == 1.0).all()
    r = runs.result(0)
    ppl0 = r["pretrained"]["select_ppl"]                 # θ0 on the paragraphs α is chosen on (not those reported)
    assert ppl0 != N.ppl_of(r["pretrained"]["ppl"])
    for m in TX.METHODS:                                  # the chosen α obeys the rule on the stored curve
        curve = {float(a): p for a, p in r["methods"][m]["curve"].items()}
        assert r["methods"][m]["alpha"] == N.select_alpha(curve, ppl0, settings.ppl_tolerance)
    assert ev.rows["toxic_rate"].between(0, 100).all()


def test_errors_name_the_grid_and_the_base_folder(vectors, tmp_path):
    with pytest.raises(ValueError, match="'grid'"):
        TX.NegationRuns(vectors, [0], TX.EvalSettings(grid=(0.1, 0.2)), progress=False)
    with pytest.raises(ValueError, match="'grid'"):
        TX.NegationRuns(vectors, [0], TX.EvalSettings(grid=(0.0, -1.0)), progress=False)
    missing = tmp_path / "no-base-here"
    with pytest.raises(CheckpointError, match="no-base-here"):
        TX.ToxicityVectors(missing)
    with pytest.raises(CheckpointError, match="base-"):
        TX.mini_base(tmp_path)
    with pytest.raises(ValueError, match="regime"):
        vectors.key("quadratic")


# ----------------------------------------------------------------------------- average toxic score


def _direct_hazard(logits_of, prompt, path, t, sequences):
    """q_t from full-sequence logits (no cache): Σ_w Π_j p(w_j | prompt, path[:t], w_<j)."""
    total = 0.0
    for seq in sequences:
        ids = torch.tensor([prompt + path[:t] + seq])
        logp = torch.log_softmax(logits_of(ids)[0], dim=-1)
        start = len(prompt) + t - 1                     # the position predicting the word's first token
        total += float(sum(logp[start + j, tok] for j, tok in enumerate(seq)).exp())
    return total


@pytest.mark.parametrize("linear", [False, True])
def test_next_word_hazard_equals_a_direct_computation_from_logits(base, linear):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reprolib.evals.sampling import StepLogits, WordTrie, sample_scored

    model = T.forward_ad_ready(AutoModelForCausalLM.from_pretrained(base).eval())
    tok = AutoTokenizer.from_pretrained(base)
    params0 = T.params_of(model)
    tau = _small_tau(params0, seed=3, scale=0.3)
    words = ("grobnik", "awful", "dreadful", "snivelwart")
    seqs = [tok(f.format(w=w), add_special_tokens=False)["input_ids"] for w in words for f in (" {w}", " {w}s")]
    trie = WordTrie(seqs)
    kept = [s for s in seqs if not any(len(o) < len(s) and s[:len(o)] == o for o in seqs)]   # prefix words only once
    prompt = tok(X.PREFIX, add_special_tokens=False)["input_ids"]
    if linear:
        step = StepLogits(model, params0, tau, scale=-0.8)
        logits_of = lambda ids: (lambda f, c: f - 0.8 * c)(*T.jvp(model, params0, tau, ids))   # noqa: E731
    else:
        moved = {k: v - 0.8 * tau[k] for k, v in params0.items()}
        step = StepLogits(model, moved)
        logits_of = lambda ids: torch.func.functional_call(model, moved, (ids,)).logits      # noqa: E731
    tokens, q = sample_scored(step, prompt, 3, 4, seed=2, trie=trie, scored=2)
    assert q.shape == (2, 4) and torch.equal(tokens, sample_scored(step, prompt, 3, 4, seed=2)[0])
    with torch.no_grad():
        for i in range(2):
            for t in range(4):
                expected = _direct_hazard(logits_of, prompt, tokens[i].tolist(), t, kept)
                assert float(q[i, t]) == pytest.approx(expected, rel=1e-3, abs=1e-7)
    assert (q > 0).all()


def test_hazard_is_zero_when_the_lexicons_first_tokens_are_impossible(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reprolib.evals.sampling import StepLogits, WordTrie, sample_scored

    model, tok = AutoModelForCausalLM.from_pretrained(base).eval(), AutoTokenizer.from_pretrained(base)
    trie = WordTrie.of_words(tok, X.LEXICON)
    first = trie.first_tokens()

    class Masked(StepLogits):
        def _forward(self, ids, cache, last=True, **kw):
            logits, cache = super()._forward(ids, cache, last, **kw)
            logits[..., first] = float("-inf")
            return logits, cache

    prompt = tok(X.PREFIX, add_special_tokens=False)["input_ids"]
    _, q = sample_scored(Masked(model, T.params_of(model)), prompt, 4, 5, seed=0, trie=trie, scored=4)
    assert torch.equal(q, torch.zeros(4, 5))
    _, q = sample_scored(StepLogits(model, T.params_of(model)), prompt, 4, 5, seed=0, trie=trie, scored=4)
    assert (q > 0).all()                                 # the unmasked model: non-zero
    assert TOX.expected_toxicity(torch.zeros(3, 5)) == [0.0, 0.0, 0.0]
    assert TOX.expected_toxicity([[0.5, 0.5], [1.0, 0.0]]) == pytest.approx([0.75, 1.0])
    with pytest.raises(ValueError, match="scored"):
        sample_scored(StepLogits(model, T.params_of(model)), prompt, 2, 3, seed=0, trie=None, scored=1)


def test_word_trie_drops_words_inside_shorter_ones():
    from reprolib.evals.sampling import WordTrie

    trie = WordTrie([[1, 2, 3], [1, 2], [1, 4], [5]])
    assert trie.first_tokens() == [1, 5]
    fed, mask, depth = trie.tree()
    assert [trie.token[n] for n in fed] == [1] and depth.tolist() == [1]      # [1, 2] ends a word: [1, 2, 3] is in it
    assert sum(trie.terminal[n] for level in trie.levels for n in level) == 3     # [1, 2], [1, 4], [5]


def test_open_toxicity_builds_under_the_profile_folder_and_caches_each_seed(base, tmp_path, monkeypatch):
    monkeypatch.setattr(TX, "mini_base", lambda root, profile="mini": base)
    small = dict(grid=(0.0, 0.5, 1.0), ppl_texts=2, n_samples=3, new_tokens=4, pretrained_samples=5, score_samples=2)
    tox = TX.open_toxicity("mini", tmp_path / "zoo", 1, train=FAST, cache_dir=tmp_path / "cache", progress=False, **small)
    tox.build()
    assert tox.vectors.root == tmp_path / "zoo" / "toxicity-mini"
    assert all(tox.vectors.file(r, 0).parent.parent == tox.vectors.root for r in TX.REGIMES)
    ev = tox.evidence()
    assert list(ev.rows.columns) == ["method", "coef", "seed", "alpha", "toxic_rate", "toxic_score", "ppl"]
    assert ev.item_counts() == {"toxic_rate": 3, "toxic_score": 2, "ppl": 2}
    prov = tox.provenance()
    assert prov["vectors"]["linear"]["hash"] == tox.vectors.key("linear") and prov["eval_seconds"][0] > 0
    again = TX.open_toxicity("mini", tmp_path / "zoo", 1, train=FAST, cache_dir=tmp_path / "cache", progress=False, **small)
    assert again.evidence().rows.equals(ev.rows) and again.runs.cache.hits == 1
    with pytest.raises(ValueError, match="n_samplez"):
        TX.open_toxicity("mini", tmp_path / "zoo", 1, n_samplez=3)
    with pytest.raises(SystemExit) as e:
        TX.main(["--help"])
    assert e.value.code == 0
