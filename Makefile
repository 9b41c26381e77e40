# alexnet-book: the README's commands.  Each creates .venv on first use, so both work from a fresh clone.
#   make book    run every notebook headless in quick mode: build/book/*.html, figures/, build/book/timings.json
#   make smoke   the same in smoke mode (seconds of compute per notebook)
#   make test    the test suite (installs Debian's chromium for the browser test when root with apt)
#   make lab     JupyterLab on the notebooks, with the book's environment
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

.PHONY: book smoke test check lab chromium venv clean

book: $(VENV)/.book-installed
	$(BIN)/alexnet-book book --mode $(MODE) $(ONLY_FLAG)

smoke: $(VENV)/.book-installed
	$(BIN)/alexnet-book book --mode smoke $(ONLY_FLAG)

test: $(VENV)/.dev-installed chromium
	$(BIN)/python -m pytest -q

check: $(VENV)/.book-installed
	$(BIN)/alexnet-book book --check

lab: $(VENV)/.book-installed
	$(BIN)/jupyter lab notebooks/00_overview.ipynb

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

# [dev] includes [book], so a test environment also runs the book.
$(VENV)/.dev-installed: pyproject.toml $(VENV)/.torch-installed
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(VENV)/.book-installed

# The browser test drives Debian's chromium; without it that test skips, so a failed install is not fatal.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "make: could not install chromium; the browser test will skip"; \
	else echo "make: chromium not found (apt-get install chromium as root); the browser test will skip"; fi

clean:
	rm -rf build
