# The two commands of the README. Both create .venv and install the pins on first use.
PYTHON ?= python3

.PHONY: lab test notebooks lint

lab:
	$(PYTHON) tools/bootstrap.py lab

test:
	$(PYTHON) tools/bootstrap.py test

# Maintainers: re-run every notebook against a fresh server and save its outputs.
notebooks:
	.venv/bin/python tools/run_notebooks.py

lint:
	.venv/bin/ruff check .
