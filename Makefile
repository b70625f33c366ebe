PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export PYTHONHASHSEED := 0

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,plot,wlan,fast,range,export]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/nnshare demo

test: $(BIN)/.installed
	$(BIN)/ruff check nnshare tests bench
	$(BIN)/pytest -p no:cacheprovider

bench: $(BIN)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[bench,fast,export]'
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/wlan_demo.py
	$(BIN)/python bench/qat_parameterizations.py
	$(BIN)/python bench/mixed_precision.py
	$(BIN)/python bench/vs_nncodec.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/make_docs.py

clean:
	rm -rf $(VENV)
