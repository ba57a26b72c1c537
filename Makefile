# Two entry points (see README): `make demo` and `make test`. Both install what they need first.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install install-test demo test test-slow bench

# CPU torch first: with no torch present, an open range would pull a multi-GB CUDA build.
install:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

install-test: install
	bash scripts/install-test-deps.sh

demo: install
	faultlens demo

test: install-test
	$(PY) -m pytest -q

test-slow: install-test
	$(PY) -m pytest -q -m slow

bench: install
	$(PIP) -e ".[bench]"
