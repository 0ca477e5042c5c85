"""MLflow's tracking REST API as an OpenAPI 3.1 document, generated from the installed MLflow.

Why: MLflow publishes no OpenAPI description (its FastAPI app sets `openapi_url=None`, and the
protos are proto2, which generators reject). The kit already reads every route, field, type,
required field and limit from the installed MLflow; written as OpenAPI 3.1 (whose schemas are
JSON Schema 2020-12), that knowledge serves Postman, Bruno, Schemathesis, client generators and
any JSON-Schema validator.

Layout: helpers/openapi_operations.py reads the routes into plain records, helpers/openapi_build.py
turns them into the document; this module is the face: load, check a body against it, write it.

    python -m helpers openapi --output openapi/mlflow-3.17.2.json
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from helpers.errors import KitError
from helpers.openapi_build import DOUBLE_ENCODED_NOTE, build, json_schema
from helpers.openapi_operations import Operation, Param


def dumps(document: dict[str, Any]) -> str:
    """The document as committed: sorted paths, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def default_output() -> Path:
    return Path(__file__).resolve().parents[1] / "openapi" / f"mlflow-{mlflow.__version__}.json"


def operation_count(document: dict[str, Any]) -> int:
    return sum(1 for item in document["paths"].values() for m in item
               if m in ("get", "post", "put", "patch", "delete"))


def load() -> dict[str, Any]:
    """The committed document for the installed MLflow (generated on the fly if there is none)."""
    path = default_output()
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return build()


def request_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The JSON Schema of one operation's JSON body, standalone (components bundled), e.g.
    `request_schema(doc, "POST", "/api/2.0/mlflow/runs/log-metric")`: what any JSON-Schema
    validator, in any language, needs to check a body before it is sent."""
    operation = document["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "components": document["components"]}


def check_body(document: dict[str, Any], method: str, path: str, body: Any) -> list[str]:
    """Every way `body` breaks the document's schema, one line each ("" path = the body itself)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(request_schema(document, method, path))
    return [f"{'.'.join(str(p) for p in error.absolute_path) or '(body)'}: {_short(error)}"
            for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))]


def _short(error: Any) -> str:
    """jsonschema's message, without repeating a long value back."""
    if error.validator == "maxLength":
        return f"{len(error.instance)} characters, more than the {error.validator_value} allowed"
    if error.validator == "maxItems":
        return f"{len(error.instance)} items, more than the {error.validator_value} allowed"
    return error.message if len(error.message) <= 160 else error.message[:157] + "..."


def write(output: Path | None = None) -> Path:
    """Generate and write the document; returns where it went.

    Atomic: a temporary file in the same folder, renamed over the target, so a reader (or a full
    disk) never leaves half a document; a symbolic link is refused, never followed."""
    target = Path(output) if output else default_output()
    if target.is_symlink():
        raise KitError(f"Cannot write {target}: it is a symbolic link; remove the link or choose "
                       "another --output.")
    text = dumps(build())
    temp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; the document is for everyone
        os.replace(temp, target)
    except OSError as exc:
        if temp:
            Path(temp).unlink(missing_ok=True)
        raise KitError(f"Cannot write {target} ({exc.strerror or exc}): choose another "
                       "--output.") from None
    return target


__all__ = ["DOUBLE_ENCODED_NOTE", "Operation", "Param", "build", "check_body", "dumps", "json_schema", "load",
           "operation_count", "request_schema", "write"]
