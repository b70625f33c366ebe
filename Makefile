PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# NNCodec 2.1.3 (MPEG NNR) in its own venv: numpy<2 and a C++ build (about 2 minutes cold)
NNC_VENV := bench/.nncodec-venv
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export PYTHONHASHSEED := 0

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,plot,wlan,fast,range,export,flower]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/nnshare demo

# a failed build does not stop the suite: tests/export/test_nnr_roundtrip.py retries it and
# skips with the build's error
$(NNC_VENV)/.ready: bench/nncodec/setup_venv.sh
	bash bench/nncodec/setup_venv.sh || echo "warning: the NNCodec venv could not be built"

test: $(BIN)/.installed $(NNC_VENV)/.ready
	$(BIN)/ruff check nnshare tests bench
	$(BIN)/pytest -p no:cacheprovider

bench: $(BIN)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[bench,fast,export]'
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/wlan_demo.py
	$(BIN)/python bench/wlan_ageing.py
	$(BIN)/python bench/wlan_bandwidth.py
	$(BIN)/python bench/wlan_estimation.py
	$(BIN)/python bench/qat_parameterizations.py
	$(BIN)/python bench/mixed_precision.py
	$(BIN)/python bench/vs_nncodec.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/make_docs.py

clean:
	rm -rf $(VENV) $(NNC_VENV)
