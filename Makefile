# alexnet-book: the README's commands.  Each creates .venv on first use, so both work from a fresh clone.
#   make book    run every notebook headless in quick mode: build/book/*.html, build/figures/, build/book/timings.json
#   make smoke   the same in smoke mode (seconds of compute per notebook)
#   make test    the test suite; run as root with apt it first installs Debian's chromium for the browser test
#                (ALEXNET_BOOK_NO_APT=1 skips that, and the browser test then skips)
#   make evidence  the evidence runs behind the committed Figs. 1, 3, 4 (hours on a CPU; each resumes where it
#                stopped), then the committed figures drawn from results/ (docs/figures.md)
#   make lab     JupyterLab on the notebooks, with the book's environment (127.0.0.1, a token; as root too)
#   make shell   a shell with .venv activated, where `alexnet-book ...` works
# The commands live in .venv: after `make book` or `make test`, activate it (`. .venv/bin/activate`) or use
# `make shell` before typing `alexnet-book ...`.
# Override on the command line, e.g. `make book MODE=full` or, for CPU-only wheels on a laptop,
#   make book TORCH_PIP="torch torchvision --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
MODE ?= quick
ONLY ?=
# How torch and torchvision are installed before the package (whose own requirement, torch>=2.4, then holds).
TORCH_PIP ?= torch torchvision

BIN := $(VENV)/bin
ONLY_FLAG := $(if $(ONLY),--only $(ONLY),)
ACTIVATE_HINT := echo "make: $(VENV) is ready. To use alexnet-book, jupyter and python from it in your shell: . $(VENV)/bin/activate   (or: make shell)"
# The git filter that strips notebook outputs as notebooks are staged (.gitattributes names it): cell ids are kept,
# and of language_info only the name, so a notebook saved on any machine commits byte-identical metadata.
NBSTRIPOUT_ARGS := --keep-id --extra-keys "metadata.language_info.codemirror_mode metadata.language_info.file_extension metadata.language_info.mimetype metadata.language_info.nbconvert_exporter metadata.language_info.pygments_lexer metadata.language_info.version"

.PHONY: book smoke test check evidence lab shell chromium git-filter venv clean

book: $(VENV)/.book-installed
	$(BIN)/alexnet-book book --mode $(MODE) $(ONLY_FLAG)

smoke: $(VENV)/.book-installed
	$(BIN)/alexnet-book book --mode smoke $(ONLY_FLAG)

test: $(VENV)/.dev-installed chromium git-filter
	$(BIN)/python -m pytest -q

check: $(VENV)/.book-installed
	$(BIN)/alexnet-book book --check

# Each step resumes its runs and reuses finished ones, so an interrupted `make evidence` continues where it stopped.
evidence: $(VENV)/.book-installed
	$(BIN)/alexnet-book figures --fig1-evidence 18pct
	$(BIN)/alexnet-book figures --specialisation-evidence quick
	$(BIN)/alexnet-book figures --fig4-evidence
	$(BIN)/alexnet-book figures --evidence

# 127.0.0.1 with a token, --allow-root when run as root, no news pop-up (alexnet_book/lab.py says how).
lab: $(VENV)/.book-installed git-filter
	$(BIN)/alexnet-book lab

# A subshell with the venv activated (exit or Ctrl-D returns); `alexnet-book`, `jupyter`, `python` are the book's.
shell: $(VENV)/.book-installed
	@echo "make: a shell with $(VENV) activated; exit or Ctrl-D to leave"
	@. $(BIN)/activate && exec "$${SHELL:-/bin/sh}"

# The one shared environment: a venv with torch, then the package in editable mode with its extras.
venv: $(VENV)/.torch-installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch-installed: | $(BIN)/python
	$(BIN)/python -m pip install $(TORCH_PIP)
	touch $@

$(VENV)/.book-installed: pyproject.toml $(VENV)/.torch-installed
	$(BIN)/python -m pip install -e '.[book]'
	touch $@
	@$(ACTIVATE_HINT)

# [dev] includes [book], so a test environment also runs the book.
$(VENV)/.dev-installed: pyproject.toml $(VENV)/.torch-installed
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(VENV)/.book-installed
	@$(ACTIVATE_HINT)

# Commit notebooks without outputs while working copies keep them: configure the nbstripout filter (in the [dev]
# extras) in this clone's .git/config.  Without nbstripout in the venv it says so and changes nothing.
git-filter:
	@if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then :; \
	elif ! $(BIN)/python -c "import nbstripout" >/dev/null 2>&1; then \
		echo "make: nbstripout is not in $(VENV) (make test installs it): notebook outputs are not stripped on commit"; \
	else \
		clean='"$(abspath $(BIN))/python" -m nbstripout $(NBSTRIPOUT_ARGS)'; \
		if [ "$$(git config --get filter.nbstripout.clean)" != "$$clean" ]; then \
			git config filter.nbstripout.clean "$$clean" && git config filter.nbstripout.smudge cat && \
			git config diff.ipynb.textconv '"$(abspath $(BIN))/python" -m nbstripout -t $(NBSTRIPOUT_ARGS)' && \
			echo "make: git now strips notebook outputs as notebooks are staged (filter nbstripout, .gitattributes)"; \
		fi; fi

# The browser test drives Debian's chromium; without it that test skips, so a failed install is not fatal.
# As root with apt it is installed system-wide, saying so; ALEXNET_BOOK_NO_APT=1 (environment or make variable) skips it.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ -n "$(ALEXNET_BOOK_NO_APT)" ] && [ "$(ALEXNET_BOOK_NO_APT)" != 0 ]; then \
		echo "make: ALEXNET_BOOK_NO_APT is set: chromium not installed; the browser test will skip"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing Debian's chromium with apt-get (system-wide, as root) for the browser test;" \
			"ALEXNET_BOOK_NO_APT=1 skips this"; \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "make: could not install chromium; the browser test will skip"; \
	else echo "make: chromium not found (apt-get install chromium as root); the browser test will skip"; fi

clean:
	rm -rf build
