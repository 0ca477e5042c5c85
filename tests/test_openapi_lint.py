"""The committed OpenAPI document under two linters nobody here wrote: Redocly's `recommended`
ruleset and Spectral's `spectral:oas`, at the versions pinned in tools/npm/package-lock.json
(`.ci/run` installs them with `npm ci --prefix tools/npm`). 0 errors and 0 warnings from each.

Node start-up is most of the cost (Spectral ~3 s, Redocly ~1 s): both run at once, and the
figures print with every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import openapi
from tests.conftest import FIGURES

ROOT = Path(__file__).resolve().parents[1]
NPM = ROOT / "tools" / "npm"
BIN = NPM / "node_modules" / ".bin"
#: No telemetry, no update check: the linters only read the file.
ENV = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
       "NO_COLOR": "1"}


def _linters() -> dict[str, list[str]]:
    document = str(openapi.default_output())
    return {
        "redocly": [str(BIN / "redocly"), "lint", "--config", str(NPM / "redocly.yaml"),
                    "--format", "json", "--max-problems", "10000", document],
        "spectral": [str(BIN / "spectral"), "lint", "--ruleset", str(NPM / "spectral.yaml"),
                     "--format", "json", "--quiet", document],
    }


def test_document_is_lint_clean_under_redocly_and_spectral() -> None:
    commands = _linters()
    missing = [name for name, argv in commands.items() if not Path(argv[0]).exists()]
    if missing:
        why = (f"{', '.join(missing)} not installed in tools/npm/node_modules: run "
               "`npm ci --prefix tools/npm` (.ci/run does).")
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    started = time.monotonic()
    running = {name: subprocess.Popen(argv, cwd=NPM, env=ENV, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
               for name, argv in commands.items()}
    try:
        outputs = {name: proc.communicate(timeout=180) for name, proc in running.items()}
    finally:  # a linter that hangs is not left running
        for proc in running.values():
            proc.kill()
    elapsed = time.monotonic() - started

    out, err = outputs["redocly"]
    redocly = json.loads(out)
    totals = redocly["totals"]
    redocly_problems = [f"{p['ruleId']}: {p['message']}" for p in redocly["problems"]]
    out, err = outputs["spectral"]
    spectral = json.loads(out or "[]")  # --quiet prints nothing but the JSON
    severities = {0: "error", 1: "warning", 2: "info", 3: "hint"}
    spectral_problems = [f"{severities[p['severity']]} {p['code']}: {p['message']} "
                         f"({'.'.join(map(str, p['path']))})" for p in spectral]
    line = (f"OpenAPI lint: Redocly recommended {totals['errors']} errors, {totals['warnings']} "
            f"warnings; Spectral spectral:oas {len(spectral)} problems; both linters in "
            f"{elapsed:.1f} s (run at once)")
    FIGURES.append(line)
    print(line)
    assert totals["errors"] == totals["warnings"] == 0, redocly_problems[:20]
    assert running["redocly"].returncode == 0, outputs["redocly"][1][-2000:]
    assert not spectral_problems, spectral_problems[:20]
    assert running["spectral"].returncode == 0, outputs["spectral"][1][-2000:]
