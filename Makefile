# Two set-up commands (see README): `make demo` opens the app on the embedded demo,
# `make test` runs the whole test suite. Both create .venv and install on first use.
PYTHON ?= python3
VENV   ?= .venv
# The torch build verified on the reference machine (x86_64, Python 3.11, CPU).
# Elsewhere override it, e.g. make TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.lfs-gui-installed

.PHONY: demo test venv bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(TORCH)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lfs-gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest

clean-venv:
	rm -rf $(VENV)
