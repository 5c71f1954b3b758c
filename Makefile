# Two entry points for users: `make book` (build the book on the mini zoo) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PROFILE ?= mini
# the zoo groups the book's chapters use (built before the notebooks, with progress bars here);
# (`make zoo` builds every group; the book reads all of them)
ZOO_GROUPS ?= core,lata,m3,ptm,noise
# the τJp chapter's vision zoo (θ0 and every task vector, 3 seeds): tiny for PROFILE=tiny, else mini
VISION_PROFILE ?= $(if $(filter tiny,$(PROFILE)),tiny,mini)
# Table 7's second model size (its regimes only): nano for PROFILE=tiny, else micro
VISION_SIZE ?= $(if $(filter tiny,$(PROFILE)),nano,micro)
# the τJp text task vectors and toxicity vectors (from the language zoo's base; a paper profile's book uses the mini base)
TOX_PROFILE ?= $(if $(filter tiny,$(PROFILE)),tiny,mini)

.PHONY: book chapter html screenshots test bench lab clean zoo zoo-report sandbox

# The code sandbox (bubblewrap): installed with the system's package manager where this user may
# (root with apt-get, dnf or apk); otherwise a message naming what is missing. Without it, root
# falls back to a weaker sandbox and other users cannot run the code evaluations.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the code sandbox) with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1; }; \
	  elif [ "$$(id -u)" = 0 ] && command -v dnf >/dev/null 2>&1; then dnf install -y -q bubblewrap >/dev/null 2>&1; \
	  elif [ "$$(id -u)" = 0 ] && command -v apk >/dev/null 2>&1; then apk add -q bubblewrap >/dev/null 2>&1; fi; \
	  command -v bwrap >/dev/null 2>&1 || echo "bubblewrap (bwrap) is missing and could not be installed here: install the package 'bubblewrap' (e.g. sudo apt-get install bubblewrap); code evaluations need it unless run as root"; }

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP) sandbox
	@$(PY) -m reprolib.evals.sandbox || true
	$(PY) -m pytest tests

# Build/reuse the zoos, execute every chapter notebook with papermill, build the HTML (book/_build/html):
# one stage per zoo group, zoo, notebook and the HTML, one after another (LANES=2 runs two at once: slower
# on 2 cores, see reprolib.stages), logs and per-stage times in results/build/<profile>/. A stage unchanged
# since the last build (same code, sources, packages; its files as it left them) is skipped; FORCE=1 runs all.
LANES ?= 1
FORCE ?=
book: $(STAMP) sandbox
	@$(PY) -m reprolib.evals.sandbox || true
	$(PY) -m reprolib.stages --profile $(PROFILE) --groups $(ZOO_GROUPS) --vision-profile $(VISION_PROFILE) \
	  --vision-size $(VISION_SIZE) --tox-profile $(TOX_PROFILE) --lanes $(LANES) $(if $(FORCE),--force)

# Re-run one chapter with other parameters, then rebuild the HTML:
#   make chapter NB=lata_forgetting PARAMS="-p sigma 0.9"     (or PARAMS="-f params.yaml")
chapter: $(STAMP) sandbox
	$(PY) -m reprolib book --profile $(PROFILE) --only $(NB) $(PARAMS)

html: $(STAMP)
	$(PY) -m reprolib book --profile $(PROFILE) --html-only

# Headless-Chromium screenshots of the built chapter pages, no network (checks figures and math render offline)
screenshots: $(STAMP)
	mkdir -p results/book
	for page in $$($(PY) -c "from reprolib.book import chapter_notebooks as c; print(*c())"); do \
	  $(PY) -m reprolib.bookassets screenshot book/_build/html/executed/$$page.html results/book/$$page.png --height 3000 || exit 1; done

# JupyterLab on notebooks/ with the project's environment and kernel
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

zoo: $(STAMP)
	$(PY) -m reprolib.zoo build --profile $(PROFILE) --groups $(ZOO_GROUPS)

zoo-report: $(STAMP)
	$(PY) -m reprolib.zoo report --profile $(PROFILE) --out results/zoo/$(PROFILE).json

bench: $(STAMP)
	$(PY) bench/merge_bench.py
	$(PY) bench/sweep_bench.py

clean:
	rm -rf book/_build book/executed book/_generated book/.staging-* book/.html-* .book-generated-*
