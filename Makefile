# The two commands of the README:
#   make book   environment if needed, every chapter at the default budget (best: paper where its runs
#               are complete, else cpu), HTML in _build/html
#   make test   pytest (library, runner, a smoke execution of every chapter, the book build and
#               a headless-browser check), then nbval on the committed executed notebooks
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# kernels started by papermill/nbval run `python` from PATH: make it the project's
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
BUDGET ?= best
# executed pages (not the results template, which papermill instantiates per dataset × BN)
NOTEBOOKS := $(filter-out chapters/04_results_template.ipynb,$(wildcard chapters/*.ipynb))

.PHONY: env test book pipeline html bench long-run clean-env mathjax
# MathJax served with the book, not from a CDN: offline readers see rendered math
MATHJAX_VERSION := 3.2.2
MATHJAX := _static/mathjax/tex-chtml.js

# setup.py and the C source too: pip install -e compiles bnnlib/_binary.c in place (the binary kernel)
$(VENV)/.installed: pyproject.toml setup.py bnnlib/_binary.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,book,cluster]"
	touch $@

env: $(VENV)/.installed

$(MATHJAX):
	mkdir -p $(dir $(MATHJAX))
	cd $(dir $(MATHJAX)) && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && \
	    tar xzf mathjax-$(MATHJAX_VERSION).tgz --strip-components=2 package/es5/tex-chtml.js \
	        package/es5/output/chtml/fonts && rm mathjax-$(MATHJAX_VERSION).tgz

mathjax: $(MATHJAX)

test: env $(MATHJAX)
	$(PY) -m pytest -q tests
	figures=$$(mktemp -d) && BNNLIB_FIGURES_DIR=$$figures $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOKS); status=$$?; rm -rf $$figures; exit $$status

pipeline: env
	$(PY) -m bnnlib book --budget $(BUDGET)

html: env $(MATHJAX)
	$(VENV)/bin/jupyter-book build . -W --keep-going --all  # --all: a changed _static/ file is copied too

book: pipeline html

bench: env
	$(PY) benchmarks/train_speed.py

# the paper budget in the background-friendly way (see the README): low priority (a session of its
# own, whose scheduling group takes its nice value: cores.session_priority), two
# single-threaded workers, one run per member group; resumable; progress in long-run.log;
# `kill -USR1 -PGID` stops it once the runs in progress are recorded (none is left half-trained,
# and the book's own runs do not start after a stop). First the paper's protocol, then the
# book's own runs (SHALLOW's grid, the evaluation check, the mechanism's probed runs, SHALLOW's finals);
# `python -m bnnlib status results/paper` shows both, stage by stage
LONG_RUN := setsid -w nice -n 19 $(PY) -m bnnlib protocol --budget paper --workers 2 --max-members 1 --quiet
long-run: env
	$(LONG_RUN) >> long-run.log 2>&1
	$(LONG_RUN) --book-runs >> long-run.log 2>&1

clean-env:
	rm -rf $(VENV)
