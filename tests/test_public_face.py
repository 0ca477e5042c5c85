"""The kit's public face: notebooks use `helpers` (and `helpers.exercises`) only, never a private name.

Checked by reading the code of every notebook cell, worked solution and integration example with
`ast`, so a notebook that reaches into `helpers.diagnose` or calls `server._health_version` fails
here before a learner copies it. Every name `helpers.__all__` promises must resolve.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCRIPTS = sorted((ROOT / "notebooks" / "solutions").glob("*.py")) + sorted(
    (ROOT / "notebooks" / "integration").glob("*.py"))


def _cells(path: Path) -> Iterator[tuple[str, str]]:
    """(where, code) for each code cell of a notebook, or the whole of a script."""
    if path.suffix != ".ipynb":
        yield path.name, path.read_text(encoding="utf-8")
        return
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            # IPython magics and shell escapes are not Python: blank them, keep line numbers.
            lines = ["" if line.lstrip().startswith(("%", "!")) else line
                     for line in "".join(cell["source"]).splitlines()]
            yield f"{path.name} cell {number} ({cell.get('id')})", "\n".join(lines)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _root(node: ast.AST) -> str | None:
    """The variable an expression starts from: `server` in `server.health_version(url).x`."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def violations(cells: list[tuple[str, str]]) -> list[str]:
    """What breaks the public-face rule in one notebook's cells, in order (names carry across)."""
    kit: set[str] = set()  # names that hold the kit's modules, functions or what they returned
    found = []
    for where, code in cells:
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
                module = node.module or ""
                if module != "helpers" and not module.startswith("helpers.exercises"):
                    found.append(f"{where}: imports from {module}; import from helpers instead")
                for alias in node.names:
                    if _is_private(alias.name):
                        found.append(f"{where}: imports the private name {alias.name}")
                    kit.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] != "helpers":
                        continue
                    if alias.name != "helpers" and not alias.name.startswith("helpers.exercises"):
                        found.append(f"{where}: imports {alias.name}; import from helpers instead")
                    kit.add(alias.asname or "helpers")
        for _ in range(3):  # `server = start_server()`, then `lab = RequestLab(server)`, ...
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr, ast.withitem)):
                    value = node.context_expr if isinstance(node, ast.withitem) else node.value
                    if value is None or not {n.id for n in ast.walk(value)
                                             if isinstance(n, ast.Name)} & kit:
                        continue
                    targets = ([node.optional_vars] if isinstance(node, ast.withitem)
                               else getattr(node, "targets", None) or [node.target])
                    kit |= {n.id for t in targets if t is not None for n in ast.walk(t)
                            if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr) and _root(node) in kit:
                found.append(f"{where}: uses the private {ast.unparse(node)}")
    return found


def test_the_check_catches_what_it_should() -> None:
    bad = [("cell 1", "from helpers import start_server\nfrom helpers.diagnose import explain\n"
                      "import helpers.wire\nfrom helpers import _LAZY\n"),
           ("cell 2", "kit = start_server()\nprint(kit._spawn())\n"),
           ("cell 3", "from helpers import server\nserver._health_version(kit.url, wait=1)")]
    assert violations(bad) == [
        "cell 1: imports from helpers.diagnose; import from helpers instead",
        "cell 1: imports helpers.wire; import from helpers instead",
        "cell 1: imports the private name _LAZY",
        "cell 2: uses the private kit._spawn",
        "cell 3: uses the private server._health_version",
    ]
    good = [("cell 1", "import json\nfrom helpers import runs, start_server\n"
                       "from helpers.exercises.limits import check_batches\n"
                       "server = start_server()\nprint(server.url, json.__name__)\n"
                       "d = {}\nd._private = 1  # not the kit's object\n")]
    assert violations(good) == []


@pytest.mark.parametrize("path", NOTEBOOKS + SCRIPTS, ids=lambda p: p.name)
def test_notebooks_use_only_the_public_face(path: Path) -> None:
    assert violations(list(_cells(path))) == []


def test_every_public_name_resolves() -> None:
    missing = []
    for name in helpers.__all__:
        try:
            getattr(helpers, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert missing == []
    assert set(helpers.__all__) <= set(dir(helpers))


def test_preflight_is_the_function_even_after_the_model_loaded() -> None:
    # The function's module has another name (helpers/preflight_pipeline.py), so loading it as a
    # submodule never shadows the public `helpers.preflight`.
    importlib.import_module("helpers.recorder")  # imports helpers.preflight_pipeline
    from helpers import preflight

    assert isinstance(preflight, types.FunctionType)
    assert preflight is sys.modules["helpers.preflight_pipeline"].preflight
