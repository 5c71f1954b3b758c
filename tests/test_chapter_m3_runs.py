"""M³'s runs: bad parameters fail before any merge, the Beta(α, α) draws and p-series weights are
seeded and match their definitions, and a stored best merge equals an independent merge + evaluation."""

import statistics

import pytest
import torch

from reprolib.chapters import m3_runs as R
from reprolib.errors import ConfigError
from reprolib.merge import merge_state_dicts
from reprolib.merge.methods import m3_beta_lambda, pseries_lambdas


class NoMerges:
    """A chapter stand-in whose scorer fails the test if anything is merged or scored."""

    seeds = [0]

    class scorer:
        settings = {"seed": 0}

        @staticmethod
        def score_merge(*a, **k):
            pytest.fail("a merge ran before the parameters were checked")

        score_role = score_merge


@pytest.mark.parametrize("call, name", [
    (lambda: R.pair_runs(NoMerges, alphas=(0.5, 0.0)), "alphas"),
    (lambda: R.pair_runs(NoMerges, alphas=(-1,)), "alphas"),
    (lambda: R.pair_runs(NoMerges, alphas=()), "alphas"),
    (lambda: R.pair_runs(NoMerges, n_draws=0), "n_draws"),
    (lambda: R.pair_runs(NoMerges, scaling_terms=()), "scaling_terms"),
    (lambda: R.pair_runs(NoMerges, ties_ks=(0.7, 1.5)), "ties_ks"),
    (lambda: R.pair_runs(NoMerges, methods=("slerp",)), "methods'/'pairs"),
    (lambda: R.pseries_runs(NoMerges, s_grid=(1.0, -0.5)), "s_grid"),
    (lambda: R.pseries_runs(NoMerges, p_grid=(-1,)), "p_grid"),
    (lambda: R.pseries_runs(NoMerges, p_grid=()), "p_grid"),
    (lambda: R.pseries_runs(NoMerges, order=("math", "math", "code")), "order"),
    (lambda: R.order_runs(NoMerges, scale=-1), "s_grid"),
    (lambda: R.attack_runs(NoMerges, [], R.Evidence(__import__("pandas").DataFrame()), attacks=("typo",)), "attacks"),
    (lambda: R.attack_runs(NoMerges, [], R.Evidence(__import__("pandas").DataFrame()), datasets=("mnli",)), "datasets"),
])
def test_bad_parameters_fail_before_any_merge(call, name):
    with pytest.raises(ConfigError, match=f"parameter '{name}'"):
        call()


def test_lambda_draws_are_seeded_and_beta_distributed():
    assert R.lambda_draws((0.5, 2.0), 3, seed=1) == R.lambda_draws((0.5, 2.0), 3, seed=1)
    assert R.lambda_draws((2.0,), 3, seed=1) != R.lambda_draws((2.0,), 3, seed=2)
    for alpha, merge_seed, lam in R.lambda_draws((0.4, 3.0), 2, seed=0):
        assert lam == m3_beta_lambda(alpha, merge_seed)            # the draw the m3 method makes from that seed
    for alpha in (0.4, 2.0):
        lams = [lam for _, _, lam in R.lambda_draws((alpha,), 4000, seed=0)]
        mean, var = statistics.fmean(lams), statistics.pvariance(lams)
        assert abs(mean - 0.5) < 0.02                               # Beta(α, α): mean 1/2 ...
        assert abs(var - 1 / (4 * (2 * alpha + 1))) < 0.1 * var    # ... variance 1 / (4(2α + 1))
        assert abs(sum(x < 0.5 for x in lams) / len(lams) - 0.5) < 0.03   # symmetric about 1/2


def test_the_engine_merges_with_the_drawn_lambda():
    """θ_M = s(λ τ_1 + (1 − λ) τ_2) on orthogonal unit task vectors reads λ back (eq. 2–3)."""
    base = {"w": torch.zeros(2)}
    models = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}]
    [(alpha, merge_seed, lam)] = R.lambda_draws((0.7,), 1, seed=3)
    merged = merge_state_dicts("m3", models, base, params={"alpha": alpha, "scale": 1.6}, seed=merge_seed)[0]["w"]
    assert torch.allclose(merged, torch.tensor([1.6 * lam, 1.6 * (1 - lam)]), atol=1e-6)


def test_pseries_weights_match_eq_4():
    assert pseries_lambdas(3, 0) == pytest.approx([1 / 3] * 3)                     # p = 0: the centroid
    assert pseries_lambdas(3, 1) == pytest.approx([6 / 11, 3 / 11, 2 / 11])         # 0.545 / 0.273 / 0.182
    for p in (0.5, 1, 2, 3):
        w = pseries_lambdas(3, p)
        assert sum(w) == pytest.approx(1) and w[0] > w[1] > w[2]
    assert pseries_lambdas(3, 3)[0] == pytest.approx(0.861, abs=5e-4)                   # "0.861 at p = 3" (line 252)


@pytest.fixture(scope="module")
def tiny_chapter(tiny_zoo, tmp_path_factory):
    from reprolib.kit.chapter import open_chapter

    return open_chapter("m3", "m3", profile="tiny", zoo_root=str(tiny_zoo.root.parent), eval_size=6, n_seeds=1,
                        seeded_roles=R.SEEDED_ROLES, out_dir=str(tmp_path_factory.mktemp("out")),
                        cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_stored_best_merge_is_an_independent_merge_and_evaluation(tiny_chapter):
    """The M³ row's λ is its draw with the best validation score, and its test scores are those of
    the same merge built and evaluated without the chapter's code."""
    from reprolib.evals.suite import evaluate

    ch = tiny_chapter
    ev, draws, chosen = R.pair_runs(ch, pairs=("math_code",), methods=("task_arithmetic",), alphas=(0.3, 4.0),
                                    n_draws=2, scaling_terms=(0.5, 1.0), val_size=6, progress=False)
    rows = ev.records()
    assert [(r["m3"], r["models"]) for r in rows] == [(False, "math_code"), (True, "math_code")]
    search = draws[draws.search == "m3"]
    best = search.loc[search.validation.idxmax()]
    m3_row = rows[1]
    assert m3_row["lam"] == best.lam and m3_row["alpha"] == best.alpha and len(search) == 4
    scales = draws[draws.search == "scale"]
    scale = scales.loc[scales.validation.idxmax()].s           # the first best, as the search keeps it
    assert m3_row["s"] == rows[0]["s"] == scale
    sd = ch.models.state_dict
    merged, _ = merge_state_dicts("m3", [sd("math_b"), sd("code_b")], sd("base"),
                                  params={"interpolation": m3_row["lam"], "scale": m3_row["s"]})
    model = ch.models.load("instruct")
    model.load_state_dict(merged, strict=False)
    if model.config.tie_word_embeddings:
        model.tie_weights()
    again = evaluate(model, ch.models.tokenizer("instruct"), {k: ch.scorer.sets[k] for k in ("math", "code")},
                     ["math", "code"])["scores"]
    assert (m3_row["gsm8k"], m3_row["humaneval"]) == (again["math"], again["code"])


def test_average_merging_is_the_mean_of_the_experts_weights():
    """Average Merging (no hyperparameters, line 636) at the centroid is (θ_a + θ_b) / 2; with M³'s
    λ it is λ θ_a + (1 − λ) θ_b, with DARE the same after dropping."""
    g = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(6, 5, generator=g)}
    a, b = ({"w": base["w"] + 0.1 * torch.randn(6, 5, generator=g)} for _ in range(2))
    for lam in (0.5, 0.8):
        params, model_params = R.Merge(("math", "code"), "average", lambdas=(lam, 1 - lam)).args()
        merged, _ = merge_state_dicts("m3", [a, b], base, params=params, model_params=model_params)
        assert torch.allclose(merged["w"], lam * a["w"] + (1 - lam) * b["w"], atol=1e-6)
    params, _ = R.Merge(("math", "code"), "average_dare", lambdas=(0.5, 0.5)).args()
    assert params["drop_rate"] == R.DARE_P and params["combine"] == "dare" and params["scale"] == 1.0
    assert R.LABELS["average"] == ("average", False) and R.LABELS["average_dare"] == ("average", True)
