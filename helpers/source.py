"""Show the lines of MLflow's own source that decide an answer, without importing the server.

Importing `mlflow.server` takes seconds and is not needed to read it: the file is located
through the installed package and the function is cut out with `ast`. The server model reads
MLflow's source through the same functions (`tree`, `server_module`).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from types import ModuleType


def mlflow_file(relative: str) -> Path:
    """The installed file `mlflow/<relative>`, e.g. `server/validation.py`."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MLflow is not installed in this environment.")
    return Path(next(iter(spec.submodule_search_locations))) / relative


@functools.cache
def tree(relative: str) -> ast.Module:
    return ast.parse(mlflow_file(relative).read_text(encoding="utf-8"))


@functools.cache
def server_module(relative: str) -> ModuleType:
    """Load one mlflow/server/*.py file on its own, without running mlflow/server/__init__.py:
    only for files that import nothing of the server (security_utils.py, validation.py)."""
    name = "_lab400_mlflow_" + relative.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, mlflow_file(relative))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load mlflow/{relative}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def security() -> ModuleType:
    """mlflow/server/security_utils.py: allowed hosts, CORS rules, their messages."""
    return server_module("server/security_utils.py")


def function_source(relative: str, name: str, *, contains: str | None = None,
                    context: int = 0) -> str:
    """The numbered source of function `name` in `mlflow/<relative>`.

    With `contains`, only the lines around the first line holding that text (±`context`).
    """
    path = mlflow_file(relative)
    text = path.read_text()
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno)
            first, last = start, node.end_lineno or node.lineno
            if contains is not None:
                hit = next(i for i in range(first, last + 1) if contains in lines[i - 1])
                first, last = max(first, hit - context), min(last, hit + context)
            body = "\n".join(f"{n:5d}  {lines[n - 1]}" for n in range(first, last + 1))
            return f"# mlflow/{relative}\n{body}"
    raise LookupError(f"No function {name!r} in mlflow/{relative}.")


def show(relative: str, name: str, *, contains: str | None = None, context: int = 0) -> None:
    """Print `function_source(...)` — for notebook cells."""
    print(function_source(relative, name, contains=contains, context=context))
