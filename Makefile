# Set-up and the two commands of the README: `make demo` and `make test`.
# Each target creates the virtual environment and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint test test-long test-faults test-fuzz test-benchmarks test-wheel test-browser browser-deps \
	test-all mutation demo clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

# Two worker processes (pytest-xdist), each test module (or class: the two
# halves of the combination matrix) on one of them so that its fixtures are
# built once, the longest modules first, and one TensorFlow thread per worker
# (tests/conftest.py). On a clean clone, 2 cores: 651 tests in 4:25 before
# issues 33 and 36; 755 tests in 7:06 on 2026-12-06 (afternoon). Then the
# matrix's export checks moved into its model cells (the all-pairs rows hold
# every pair of graph options), and eight 8-16 s integration tests whose
# parts the matrix covers moved to test-long: 781 tests in 5:35 on a clean
# clone (9bd98ab) on 2026-12-06, with issue 34's detectors and tables added.
# The combination matrix (43 rows: training, evaluation, saving and both
# exports of each) is about half of it. On 2026-12-07, with the
# autoregressive likelihood's context (every channel, local scales) and the
# fused training kernel: 846 tests in 8:05 on the working tree; its matrix
# cells take 21-31 s each, the slowest of the suite. Then (same day) those
# cells at 4x4 images (10 passes of the neighbour model, not 22), its mean
# without the local scales, the scale blocks' softplus and a draw's
# component made once before the passes, and two integration tests moved to
# test-long: 846 tests in 6:34 on the working tree, over the 6-minute target
# (one test, 0.65 s alone, took 42 s in that run; in the run before it, 6:36).
# On a clean clone (ab42fbd, 871 tests): 6:34, still over. Per-test
# distribution (--dist load) was slower on the working tree (over 7:30).
# The 20 slowest tests are listed at the end, to keep the suite short.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=20

# The long tests (marker `long`): models trained on MNIST for accuracy, XLA
# against the plain graph, the example script, a full disk and the resume
# after it (and real full disks on small tmpfs mounts, where mounting is
# allowed), `keras-vae web` served and stopped with Ctrl-C, TensorFlow's
# saved_model_cli on an export, the resnet under mixed_float16 and XLA,
# examples/photos.yaml trained, and integration tests of 8-16 s whose parts
# the matrix covers (the hierarchy and conditional journeys, every LiteRT
# variant from the command line, the conditional run's export, fit-sampler
# from the command line, the sampler's int8 export, the photo script's
# shards, tflite and web exported together, the autoregressive web page's
# float32 and int8 files, a table from its CSV file to a LiteRT file's
# flags). CI runs them after `make test`.
test-long: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m long --durations=10

# The project's ruff settings (pyproject.toml); also checked by the test suite.
lint: $(STAMP)
	$(BIN)/ruff check .

# Processes killed (SIGKILL x5 at random moments, SIGTERM, Ctrl-C) and resumed,
# training in two worker processes (MultiWorkerMirroredStrategy on localhost),
# and the longer command-line runs (a hierarchical model trained, evaluated
# and exported).
test-faults: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/test_faults.py tests/test_cli.py tests/test_resilience.py

# Property-based fuzzing (tests/test_fuzz.py), the long profile: hundreds of
# generated options, config files, npz files, image folders and damaged runs
# per property (a few of each run in `make test`). Failing examples are kept
# in tests/fuzz-examples/ and replayed by every run.
test-fuzz: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/test_fuzz.py

# Each benchmark script's --quick mode writes a report with real numbers.
test-benchmarks: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/test_benchmarks.py

# Build the wheel and sdist, check them, install the wheel into a fresh
# virtual environment and run the quickstart outside the repository.
test-wheel: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/test_install.py

# The web page in headless Chromium (tests/test_browser.py): the pinned npm
# packages of tests/browser (LiteRT.js, puppeteer-core, which never downloads
# a browser) and Debian's chromium. The tests say why they skip where either
# cannot be installed.
browser-deps:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq \
		--no-install-recommends chromium >/dev/null; } || \
		echo "browser-deps: Chromium is not installed and could not be (not root?): apt-get install chromium"
	@if command -v npm >/dev/null; then cd tests/browser && PUPPETEER_SKIP_DOWNLOAD=1 \
		npm ci --no-audit --no-fund --loglevel=error; else echo "browser-deps: npm is not installed"; fi

test-browser: $(STAMP) browser-deps
	$(BIN)/python -m pytest -m browser tests/test_browser.py

# Mutation testing of the maths modules ([tool.mutmut] in pyproject.toml);
# the score goes to docs/mutation.md by hand, with its date. The tests run from
# mutmut's copy (mutants/), so MNIST is named by KERAS_VAE_MNIST_DIR.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[mutation]"
	rm -rf mutants
	KERAS_VAE_MNIST_DIR=$(CURDIR)/data/mnist $(BIN)/mutmut run --max-children 2
	$(BIN)/python .ci/mutation-score

# Everything, the full product of the combination matrix included (hours).
test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

# The main job: train on the bundled MNIST, evaluate, draw, export, summarise.
demo: $(STAMP)
	$(BIN)/keras-vae train --config examples/mnist.yaml --run-dir runs/demo --overwrite
	$(BIN)/keras-vae evaluate runs/demo
	$(BIN)/keras-vae export runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
