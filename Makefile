# The learner's command (make lab, the README) and the contributor's (make test, docs/development.md).
# Both create .venv and install the pins on first use.
PYTHON ?= python3

.PHONY: lab test notebooks lint lock site

# make lab FRESH=1: the lessons with their outputs cleared (copies; see docs/instructor.md)
lab:
	$(PYTHON) tools/bootstrap.py lab $(if $(FRESH),--fresh)

test:
	$(PYTHON) tools/bootstrap.py test

# The lessons as a static website in _build/site/ (no notebook executed, nothing downloaded but the
# pinned packages on first use). Preview: python3 -m http.server --bind 127.0.0.1 -d _build/site
site:
	$(PYTHON) tools/build_site.py

# Maintainers: re-run every notebook against a fresh server and save its outputs.
notebooks:
	.venv/bin/python tools/run_notebooks.py

lint:
	.venv/bin/ruff check .

# Maintainers: after any change to the dependencies in pyproject.toml, regenerate locks/*.txt and
# environment.yml (uv pip compile --universal --generate-hashes), then commit all three.
lock:
	$(PYTHON) tools/lock.py
