# One-stop set-up: `make demo` and `make test` build everything they need on a fresh machine.
PYTHON_VERSION := $(shell cat .python-version)
PYENV_ROOT ?= $(HOME)/.pyenv
PY310 := $(firstword $(wildcard $(PYENV_ROOT)/versions/$(PYTHON_VERSION)/bin/python3.10) $(shell command -v python3.10 2>/dev/null))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Runtime dependencies of lava-dl that its --no-deps install leaves out.
LAVA_DL_EXTRAS := "opencv-python-headless>=4.8,<4.12" "pillow>=10,<11" "ninja>=1.10" "numpy>=1.24,<2"

.PHONY: venv demo test study study-av-digits study-quick clean help

help:
	@echo "make demo   build .venv (Python $(PYTHON_VERSION)); AV-Digits -> train TAAF -> NIR export -> reference simulation -> runs/demo/"
	@echo "make test   build .venv and run the test suite"
	@echo "make study  the imbalance study v2 on AV-MNIST-Temporal (equal tuning, 6 methods x 5 presets x 5 seeds, ablations, T sweep; about 4 h on 2 cores, resumable) -> benchmarks/results/study/"
	@echo "make study-av-digits  the same protocol on AV-Digits (the v1 study's data) -> benchmarks/results/study-av-digits/"
	@echo "make study-quick  its smoke version (1 seed, 2 epochs, one preset; a few minutes) -> runs/study-quick/"
	@echo "make clean  remove .venv and runs/"

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -n "$(PY310)" || { echo "error: Python $(PYTHON_VERSION) not found (pyenv install $(PYTHON_VERSION))"; exit 2; }
	$(PY310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps "lava-dl==0.6.0"
	$(PY) -m pip install --quiet $(LAVA_DL_EXTRAS)
	# neurobench 2.3 pulls numba/tonic/torchaudio it does not need at import; our tests use its metrics only.
	$(PY) -m pip install --quiet --no-deps "neurobench==2.3.0"
	$(PY) -c "import lava.magma, lava.lib.dl.netx, snntorch, norse, nir, onnxruntime, neurobench; print('environment ok')"
	@touch $(STAMP)

# The pipeline, one stage per line: model -> export -> hardware (-> benchmarks).
demo: $(STAMP)
	$(VENV)/bin/taaf demo --out runs/demo
	$(VENV)/bin/taaf-export runs/demo/model.pt --target nir -o runs/demo/export
	$(VENV)/bin/taaf-export runs/demo/model.pt --target lava -o runs/demo/lava
	$(VENV)/bin/taaf-export runs/demo/model.pt --target loihi2 -o runs/demo/loihi2
	$(VENV)/bin/taaf simulate runs/demo/model.pt --backend reference --split test --save runs/demo/agreement_reference.json
	$(VENV)/bin/taaf simulate runs/demo/model.pt --backend lava --limit 200 --batch-size 200 --save runs/demo/agreement_lava.json
	$(VENV)/bin/taaf simulate runs/demo/model.pt --backend lava-fixed --limit 200 --batch-size 200 --save runs/demo/agreement_lava_fixed.json
	$(VENV)/bin/taaf train --model ann --epochs 40 --out runs/demo/ann --quiet
	$(VENV)/bin/taaf bench runs/demo/model.pt --ann runs/demo/ann/model.pt --out runs/demo/bench

test: $(STAMP)
	$(PY) -m pytest -q tests

# The imbalance study v2 (AV-MNIST-Temporal, its five presets): equal tuning first (3 learning rates
# per method on `misaligned`), then 5 seeds of every method in every preset and of the ablations on
# `misaligned`; resumable (finished runs in OUT/runs are reused), each step prints its wall time.
STUDY_METHODS = taaf taaf-fused concat concat-aux ogm-ge ogm-ge-published
STUDY_ABLATIONS = taaf-fused-no-warp taaf-fused-no-lr-mod taaf-fused-no-step-loss
# AV-Digits' audio-dominant preset is where the fused design's modality attention collapses.
STUDY_AV_DIGITS_EXTRA = taaf-fused-entropy-0.5 taaf-fused-entropy-0.05

study: $(STAMP)
	$(VENV)/bin/taaf study --tune --variants $(STUDY_METHODS)
	$(VENV)/bin/taaf study --variants $(STUDY_METHODS) $(STUDY_ABLATIONS)

study-av-digits: $(STAMP)
	$(VENV)/bin/taaf study --dataset av-digits --tune --variants $(STUDY_METHODS)
	$(VENV)/bin/taaf study --dataset av-digits --variants $(STUDY_METHODS) $(STUDY_AV_DIGITS_EXTRA)

study-quick: $(STAMP)
	$(VENV)/bin/taaf study --quick --out runs/study-quick

clean:
	rm -rf $(VENV) runs
