"""Mechanical fixes for what preflight finds: each takes a request and the finding, and returns
the corrected request(s), or None when the fix needs a choice only the user can make.

Why keyed on finding ids: preflight's ids are stable (helpers/preflight_pipeline.py::Finding), so a fix
is chosen by what the server model found, never by guessing from the bytes. The fixes only
rewrite the request; whether the result is right is decided by running preflight on it again
(helpers/request_check.py), never assumed here.
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from helpers.model_table import SECONDS_THRESHOLD
from helpers.request_input import HttpRequest


def body_json(req: HttpRequest) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return json.loads(req.body)
    except ValueError:
        return None


def with_json(req: HttpRequest, payload: Any) -> HttpRequest:
    """The same request with `payload` as its JSON body (compact, as `requests` json= writes)."""
    return replace(req, body=json.dumps(payload).encode("utf-8"))


def with_header(req: HttpRequest, name: str, value: str) -> HttpRequest:
    """The same request with header `name` set once to `value` (other spellings dropped)."""
    kept = tuple((k, v) for k, v in req.headers if k.lower() != name.lower())
    return replace(req, headers=(*kept, (name, value)))


def literal_body(text: str) -> Any:
    """A Python dict literal (str(dict), single quotes, True/None) or a JavaScript object literal
    (bare keys, true/null, trailing commas) as a value, or None when it is neither.

    ast.literal_eval reads Python's own spelling; the JavaScript words and bare keys are mapped
    on the parsed tree, so nothing is rewritten by pattern and no code runs."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    words = {"true": True, "false": False, "null": None, "True": True, "False": False,
             "None": None, "NaN": math.nan, "Infinity": math.inf}

    def value(node: ast.AST, key: bool = False) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if key:
                return node.id
            if node.id in words:
                return words[node.id]
            raise ValueError(node.id)
        if isinstance(node, ast.Dict):
            return {value(k, True): value(v) for k, v in zip(node.keys, node.values)
                    if k is not None}
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(x) for x in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            if isinstance(inner, (int, float)) and not isinstance(inner, bool):
                return -inner if isinstance(node.op, ast.USub) else inner
        raise ValueError(type(node).__name__)

    try:
        return value(tree.body)
    except (ValueError, TypeError, RecursionError):
        return None


# ------------------------------------------------------------------------------------ fixes
# Each fix: (request, finding message, finding fix text) -> (corrected requests, what it did)
# or None when it does not apply to this request.

Fixed = tuple[list[HttpRequest], str]


def _content_type(req: HttpRequest, _msg: str, _fix: str) -> Fixed | None:
    if (req.header("Content-Type") or "").strip() == "application/json":
        return None
    return [with_header(req, "Content-Type", "application/json")], \
        "set Content-Type: application/json"


def _python_body(req: HttpRequest, _msg: str, _fix: str) -> Fixed | None:
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    parsed = literal_body(text)
    if not isinstance(parsed, (dict, list)):
        return None
    try:
        json.dumps(parsed, allow_nan=True)
    except (TypeError, ValueError):
        return None
    return [with_json(req, parsed)], "rewrote the body as JSON (it was a Python or JavaScript literal)"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _timestamp_paths(message: str) -> list[str]:
    found = re.findall(r"'((?:\w+\[\d+\]\.)?(?:timestamp|start_time|end_time))'", message)
    return list(dict.fromkeys(found))


def _missing_timestamp(req: HttpRequest, msg: str, _fix: str) -> Fixed | None:
    paths = _timestamp_paths(msg)
    body = body_json(req)
    if not paths or not isinstance(body, dict):
        return None
    now = _now_ms()
    for path in paths:
        found = re.fullmatch(r"(\w+)\[\d+\]\.(\w+)", path)
        if found:  # every item of the list that lacks it, not only the first one named
            outer, inner = found.groups()
            for item in body.get(outer) or []:
                if isinstance(item, dict) and item.get(inner) is None:
                    item[inner] = now
        elif body.get(path) is None:
            body[path] = now
    return [with_json(req, body)], f"added {', '.join(paths)} = now in milliseconds ({now})"


def _set_path(body: Any, path: str, convert: Callable[[Any], Any]) -> bool:
    found = re.fullmatch(r"(\w+)(?:\[(\d+)\])?(?:\.(\w+))?", path)
    if not found or not isinstance(body, dict):
        return False
    outer, index, inner = found.groups()
    target, key = body, outer
    if index is not None:
        items = body.get(outer)
        if not isinstance(items, list) or int(index) >= len(items):
            return False
        target, key = items[int(index)], inner
    if not isinstance(target, dict) or key not in target:
        return False
    target[key] = convert(target[key])
    return True


def _to_ms(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return int(round(value * 1000)) if abs(value) < SECONDS_THRESHOLD else int(value)
    return value


def _seconds(req: HttpRequest, msg: str, _fix: str) -> Fixed | None:
    found = re.match(r"([\w\[\].]+)=", msg)
    body = body_json(req)
    if not found or not _set_path(body, found.group(1), _to_ms):
        return None
    return [with_json(req, body)], f"{found.group(1)}: seconds to whole milliseconds"


def _run_uuid(req: HttpRequest, _msg: str, _fix: str) -> Fixed | None:
    body = body_json(req)
    if not isinstance(body, dict) or "run_uuid" not in body:
        return None
    value = body.pop("run_uuid")
    if body.get("run_id") in (None, ""):
        body["run_id"] = value
    return [with_json(req, body)], "renamed run_uuid to run_id"


def _split_batch(req: HttpRequest, _msg: str, _fix: str) -> Fixed | None:
    from mlflow.utils import validation as uv

    body = body_json(req)
    if not isinstance(body, dict) or not urlsplit(req.url).path.endswith("/runs/log-batch"):
        return None
    limits = {"metrics": uv.MAX_METRICS_PER_BATCH, "params": uv.MAX_PARAMS_TAGS_PER_BATCH,
              "tags": uv.MAX_PARAMS_TAGS_PER_BATCH}
    items = [(kind, item) for kind in ("params", "tags", "metrics")
             for item in (body.get(kind) or [])]
    chunks: list[dict[str, list]] = [{}]
    for kind, item in items:
        chunk = chunks[-1]
        if len(chunk.get(kind, ())) >= limits[kind] or \
                sum(map(len, chunk.values())) >= uv.MAX_ENTITIES_PER_BATCH:
            chunk = {}
            chunks.append(chunk)
        chunk.setdefault(kind, []).append(item)
    if len(chunks) < 2:
        return None
    rest = {k: v for k, v in body.items() if k not in limits}
    out = [with_json(req, {**rest, **chunk}) for chunk in chunks]
    return out, (f"split the batch into {len(out)} requests (at most {limits['metrics']} metrics, "
                 f"{limits['params']} params or tags, {uv.MAX_ENTITIES_PER_BATCH} in all, each)")


def _max_results(req: HttpRequest, _msg: str, fix: str) -> Fixed | None:
    # The finding's fix names the value MLflow's own client sends ("... client sends 1000"),
    # else a max_results=N example; else the largest number it names (a limit).
    wanted = re.search(r"sends (\d+)", fix) or re.search(r"max_results=(\d+)", fix)
    numbers = [int(n) for n in re.findall(r"\b\d+\b", fix)]
    value = int(wanted.group(1)) if wanted else max(numbers, default=1000)
    parts = urlsplit(req.url)
    if req.method == "GET":
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k != "max_results"] + [("max_results", str(value))]
        return [replace(req, url=urlunsplit(parts._replace(query=urlencode(query))))], \
            f"set max_results={value}"
    body = body_json(req)
    if not isinstance(body, dict) or body.get("max_results") == value:
        return None
    body["max_results"] = value
    return [with_json(req, body)], f"set max_results to {value}"


def _filter_hyphen(req: HttpRequest, _msg: str, _fix: str) -> Fixed | None:
    from helpers.store_checks import quote_hyphenated as quote_filter

    parts = urlsplit(req.url)
    if req.method == "GET" and parts.query:
        query = parse_qsl(parts.query, keep_blank_values=True)
        fixed = [(k, quote_filter(v) if k in ("filter", "filter_string") else v) for k, v in query]
        if fixed == query:
            return None
        return [replace(req, url=urlunsplit(parts._replace(query=urlencode(fixed))))], \
            "quoted hyphenated names in the filter with backticks"
    body = body_json(req)
    if not isinstance(body, dict):
        return None
    changed = False
    for key in ("filter", "filter_string"):
        if isinstance(body.get(key), str) and quote_filter(body[key]) != body[key]:
            body[key], changed = quote_filter(body[key]), True
    return ([with_json(req, body)], "quoted hyphenated names in the filter with backticks") \
        if changed else None


def _missing_field(req: HttpRequest, msg: str, fix: str) -> Fixed | None:
    if _timestamp_paths(msg):
        return _missing_timestamp(req, msg, fix)
    if "'run_id'" in msg:
        return _run_uuid(req, msg, fix)
    return None


def _empty_run_id(req: HttpRequest, msg: str, fix: str) -> Fixed | None:
    """log-batch has no run_uuid field: the parser drops it and the store sees run_id ""."""
    return _run_uuid(req, msg, fix) if "'run_id'" in msg else None


#: Finding id -> its mechanical fix. Ids not listed need a choice, or no fix at all.
FIXES: dict[str, Callable[[HttpRequest, str, str], Fixed | None]] = {
    "content-type-missing": _content_type,
    "content-type-wrong": _content_type,
    "malformed-json": _python_body,
    "missing-field": _missing_field,
    "trap-seconds-timestamp": _seconds,
    "trap-fractional-timestamp": _seconds,
    "deprecated-run-uuid": _run_uuid,
    "store-check": _empty_run_id,
    "batch-limit": _split_batch,
    "search-max-results": _max_results,
    "search-filter-hyphen": _filter_hyphen,
}

#: Finding id -> what the user must decide (no corrected request is offered for these).
CHOICES: dict[str, str] = {
    "param-overwrite": "The param already has another value in this run, and params are "
                       "write-once: decide whether to log the same value, use a new key, or "
                       "start a new run (a value that changes belongs in a metric).",
    "invalid-name": "MLflow refuses characters in this name: decide on a new name using "
                    "letters, digits and _ - . space : / only (no '..', no leading '/').",
    "already-exists": "Something with this name already exists: decide on a unique name, or "
                      "use the existing one.",
    "too-long": "The value is longer than MLflow allows: decide what to shorten, or log it "
                "as an artifact instead.",
    "bad-type": "A field has the wrong type: decide which value you meant and send it as the "
                "type the message names.",
    "run-not-found": "No run has this id on the server: decide which run to log to (runs/create "
                     "makes one; runs/search lists them).",
}


def apply_one(req: HttpRequest, findings: Any) -> Fixed | None:
    """The first mechanical fix that applies to one of `findings` (errors first, in order)."""
    ordered = sorted(findings, key=lambda f: {"error": 0, "warning": 1}.get(f.severity, 2))
    for f in ordered:
        fixer = FIXES.get(f.id)
        if fixer is None:
            continue
        fixed = fixer(req, f.message, f.fix)
        if fixed is not None and any(r != req for r in fixed[0]):
            return fixed
    return None


__all__ = ["CHOICES", "FIXES", "apply_one", "body_json", "literal_body",
           "with_header", "with_json"]
