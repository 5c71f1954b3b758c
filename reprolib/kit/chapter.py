"""Opening a chapter: models for the profile, training seeds, output folder, the scale banner, the
paper's transcribed numbers and the scorer, from a notebook's parameters in one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from reprolib.cache import HASHES_FILE, ResultCache
from reprolib.claims import ClaimRegistry
from reprolib.kit.scorer import Scorer
from reprolib.models import Models, seeded
from reprolib.paths import project_path
from reprolib.published import load_published


@dataclass
class Chapter:
    paper_id: str                    # the transcription's name, e.g. "lata"
    profile: str
    models: Models | None            # the language zoo (None for a chapter on other models: see ``scale_info``)
    seeds: list[int]                 # training seeds present for every seeded role
    out: Path                        # results/<chapter>/<profile>/
    paper: dict                      # reprolib/papers/published/<paper>.yaml
    scorer: Scorer | None
    paper_scale: str                 # the paper's models, in words, for the banner
    eval_size: int
    claims: ClaimRegistry | None = None
    scale_info: dict | None = None   # the scale a page ran at, where it is not the language zoo's
    _verdicts: tuple = field(default=(None, []), repr=False)    # (the evidence it was computed from, verdicts)

    def verdicts(self, evidence: dict) -> list:
        """The registry's verdicts on ``evidence``, computed once per evidence (a page shows them
        under its tables and again in its claims section)."""
        held, verdicts = self._verdicts
        same = isinstance(held, dict) and held.keys() == evidence.keys() and all(held[k] is evidence[k] for k in held)
        if not same:
            self._verdicts = (dict(evidence), self.claims.run(evidence))
        return self._verdicts[1]

    def table(self, table_id: str) -> dict:
        return _by_id(self.paper["tables"], table_id, self.paper_id)

    def figure(self, figure_id: str) -> dict:
        return _by_id(self.paper["figures"], figure_id, self.paper_id)

    def claim(self, claim_id: str) -> dict:
        return _by_id(self.paper["claims"], claim_id, self.paper_id)

    def banner(self):
        from reprolib.kit.pages import banner

        return banner(self.scale(), self.seeds, self.paper_scale)

    def scale(self) -> dict:
        return self.scale_info if self.scale_info is not None else self.models.describe()


def _by_id(entries: list[dict], key: str, paper: str) -> dict:
    for entry in entries:
        if entry["id"] == key:
            return entry
    from reprolib.errors import ConfigError

    raise ConfigError(f"paper {paper!r} has no {key!r} (known: {', '.join(e['id'] for e in entries)})")


def _output_dir(out_dir: str, chapter: str, profile: str) -> Path:
    """``<out_dir>/<chapter>/<profile>/`` (a paper profile's file stem), created."""
    out = project_path(out_dir) / chapter / Path(profile).stem
    out.mkdir(parents=True, exist_ok=True)
    return out


def open_frame(paper: str, chapter: str, *, profile: str, scale: dict, seeds: list[int], out_dir: str = "results",
               eval_size: int = 0, paper_scale: str = "", claims: ClaimRegistry | None = None, threads: int = 2) -> Chapter:
    """A chapter on models other than the language zoo's (the τJp vision zoo): output folder, paper
    numbers, claims and the banner from ``scale`` (``kind`` and ``description``, ``parameters``), no
    scorer."""
    torch.set_num_threads(threads)
    return Chapter(paper, profile, None, list(seeds), _output_dir(out_dir, chapter, profile), load_published(paper), None, paper_scale, eval_size,
                   claims.resolve() if claims else None, scale_info=dict(scale))


def open_chapter(paper: str | None, chapter: str, *, profile: str = "mini", zoo_root: str = "zoo", out_dir: str = "results",
                 cache_dir: str = "results/cache", eval_size: int = 100, n_seeds: int = 3, seeded_roles=(),
                 paper_scale: str = "", eval_seed: int = 0, judge=None, threads: int = 2,
                 claims: ClaimRegistry | None = None, executor: str | None = None) -> Chapter:
    """Everything a chapter notebook needs. ``seeded_roles`` are the roles with training-seed
    replicates (``<role>_s<k>``): the chapter's seeds are those for which every one exists.
    ``executor`` ('local' or 'ray'; default: the environment's ``REPROLIB_EXECUTOR``, set by
    ``reprolib book --executor``, else 'local') is where the scorer's grids run."""
    import os

    from reprolib.kit.executors import check_executor

    from reprolib.zoo.report import eval_sets

    torch.set_num_threads(threads)
    models = Models(profile, root=project_path(zoo_root), progress=False, hashes=project_path(cache_dir) / HASHES_FILE)
    seeds = [s for s in range(n_seeds) if all(models.has(seeded(r, s)) for r in seeded_roles)]
    out = _output_dir(out_dir, chapter, profile)
    cache = ResultCache(project_path(cache_dir), "scores")   # one cache for every chapter: keys are content hashes
    scorer = Scorer(models, eval_sets(eval_size, eval_seed), cache, {"size": eval_size, "seed": eval_seed}, judge=judge,
                    executor=check_executor(executor or os.environ.get("REPROLIB_EXECUTOR") or "local"))
    return Chapter(paper or "", profile, models, seeds, out, load_published(paper) if paper else {}, scorer, paper_scale, eval_size,
                   claims.resolve() if claims else None)
