# r1ci — every stage is a file target, so an interrupted run resumes where it stopped and `make -n all`
# reads as the pipeline. Real runs change only variables (see README "Cluster runs").
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
R1CI := $(BIN)/r1ci
# torch is pinned: a plain requirement pulls several GB of CUDA wheels on a CPU machine.
TORCH_PIN := torch==2.13.0
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.torch_extensions

.PHONY: install sandbox-tools test test-fast bench all clean help data-bbh

help:
	@echo "make install     venv in $(VENV) with r1ci, torch (CPU) and test tools; firejail + bubblewrap if apt works"
	@echo "make all         the whole method on the built-in tiny model, on CPU (see README)"
	@echo "make test        the test suite, slow end-to-end tests included (not the GPU ones)"
	@echo "make test-fast   the fast tests only"
	@echo "make bench       the benchmarks under bench/ (results go to the README by hand)"
	@echo "make data-bbh    build BBH-style files for the 7 knowledge-bound BBH tasks from bigbench 1.0.0 (PyPI)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(MAKE) --no-print-directory sandbox-tools
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_PIN)" -e '.[train,dev]'
	touch $@

# The sandbox's optional wrappers (the default zygote isolation needs neither). Skipped without apt or root.
sandbox-tools:
	@if command -v firejail >/dev/null && command -v bwrap >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firejail bubblewrap >/dev/null; \
	else echo "note: firejail/bubblewrap not installed (needs apt as root); --isolation auto uses the zygote"; fi

test: install
	$(BIN)/pytest -m "not gpu" -p no:cacheprovider || [ $$? -eq 5 ]

test-fast: install
	$(BIN)/pytest -p no:cacheprovider || [ $$? -eq 5 ]

bench: install
	$(BIN)/python bench/sandbox.py

# The 7 knowledge-bound BBH subtasks need data: BBH-style items built from the BIG-bench source tasks
# (bigbench 1.0.0 sdist on PyPI, Apache-2.0). Use them with `r1ci gen-tasks --data-dir data/bbh`.
data-bbh: data/bbh/.built
data/bbh/.built: r1ci_cli/tasks/bbh/_bigbench_build.py | install
	PYTHON=$(BIN)/python shell/make-data-bbh.sh data/bbh data/cache/bigbench
	touch $@

clean:
	rm -rf runs .pytest_cache
