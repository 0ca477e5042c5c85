"""The words preflight says: check names, fixes and hints, and the lint that warns about a body
the server accepts but stores differently from what was meant (helpers/preflight_pipeline.py runs it
after the pipeline). Facts about MLflow come from the server model; this module only words them.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import TYPE_CHECKING, Any

from mlflow.utils.proto_json_utils import parse_dict

from helpers.model_table import SECONDS_THRESHOLD
from helpers.server_model import Endpoint, Field

if TYPE_CHECKING:
    from helpers.preflight_pipeline import Pipeline

H = "mlflow/server/handlers.py::"
UV = "mlflow/utils/validation.py::"
STORE = "mlflow/store/tracking/sqlalchemy_store.py::SqlAlchemyStore."
PARSE = "google/protobuf/json_format.py::ParseDict (from " + H + "_get_request_message)"
ROUTER = "werkzeug routing (Flask url map built by " + H + "get_endpoints)"
SECURITY = "mlflow/server/fastapi_security.py::"
CRASH = ("The server crashes with 500 Internal Server Error (an HTML page, no MLflow error "
         "JSON) instead of answering a clear 400")


def lint(sim: Pipeline) -> None:
    """Warnings about a body the server accepts, or refuses for a reason it explains badly."""
    ep, body = sim.endpoint, _lint_body(sim)
    if ep is None or not isinstance(body, dict) or ep.request is None:
        return
    _timestamp_warnings(sim, body, ep.store.timestamps if ep.store else ())
    _unknown_enum(sim, ep, body)
    _unknown_keys(sim, ep.fields, body)
    _number_warnings(sim, ep, body)
    if isinstance(body.get("key"), str) and body["key"] != body["key"].strip():
        sim.add("warning", "padded-key", UV + "_validate_metric_name",
                f"The key {json.dumps(body['key'])} has spaces at its ends: it is stored "
                f"as written, a different key from {json.dumps(body['key'].strip())}.",
                "Strip keys before sending: key.strip().")
    if ep.name == "logParam" and body.get("value") in (None, ""):
        sim.add("warning", "param-without-value", H + "_log_param",
                "The param has no value: the handler does not require one, so an empty "
                "string is stored, and it can never be changed (params are write-once).",
                "Send the value as a string: {\"key\": ..., \"value\": str(value)}.")
    if ep.reads_run_uuid and "run_uuid" in body and not body.get("run_id"):
        sim.add("info", "deprecated-run-uuid", H + (ep.handler or ""),
                "run_uuid is the deprecated spelling of run_id; the handler still reads "
                "run_id or run_uuid.", "Send run_id instead.")


def _lint_body(sim: Pipeline) -> Any:
    if sim.request_json is not None:
        return sim.request_json
    try:
        raw = json.loads(sim.req.body)
        return json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError):
        return None


def describe_json_error(raw: bytes) -> str | None:
    """Why `json.loads` (what Flask's get_json uses) refuses these bytes, in a learner's words;
    None when it accepts them."""
    if not raw.strip():
        return "the body is empty"
    try:
        json.loads(raw)
        return None
    except RecursionError:
        return "it nests deeper than Python's JSON reader can follow"
    except json.JSONDecodeError as err:
        text, pos, msg = err.doc, err.pos, err.msg
        where = f"(line {err.lineno}, column {err.colno})"
    except ValueError:
        return "the body is not valid UTF-8 text"
    before, here = text[:pos].rstrip()[-1:], text[pos:pos + 1]
    if here == "/":
        return f"a comment, which JSON does not allow {where}"
    if here == "'":
        return f"single-quoted strings, as Python's str(dict) writes them {where}"
    if msg.startswith("Expecting property name"):
        if before == "," and here == "}":
            return f"a trailing comma before the closing brace {where}"
        return f"an unquoted key, which JSON does not allow {where}"
    if pos >= len(text.rstrip()) or msg.startswith("Unterminated string"):
        return f"the body ends before the JSON does, as if cut off {where}"
    return f"not valid JSON: {msg} {where}"


def depth(value: Any) -> int:
    """How deeply JSON containers nest, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)
                  if isinstance(v, (dict, list))]
    return deepest


def content_type_why(value: str) -> str:
    media = value.split(";")[0]
    if media.lower().strip() == "application/json":
        if media.lower() == "application/json":
            return " It is case-sensitive here, although media types are not in HTTP."
        return " The space before ';' makes it 'application/json ', which does not match."
    if "," in media:
        return " Two media types (or two Content-Type headers merged into one) never match."
    if media == "application/x-www-form-urlencoded":
        return " That is what requests sends for data=<dict>; use json=<dict> instead."
    if media == "":
        return " An empty header counts as present but wrong."
    return ""


def parses(ep: Endpoint, key: str, value: Any) -> bool:
    try:
        parse_dict({key: value}, ep.request_class())
        return True
    except Exception:  # noqa: BLE001 - ParseError, or anything else that stops the parser
        return False


def stop_kind(f: Field, value: Any) -> tuple[str, str, str]:
    """The finding id, a lead sentence and a fix ("": the generic one) for the field protobuf
    could not read."""
    if isinstance(value, float) and not math.isfinite(value):
        return "trap-nan", (f"'{f.name}' is a bare {json.dumps(value)} literal, which JSON does "
                            "not have (Python's json.dumps writes it anyway). "), (
            "Send non-finite values as strings (\"NaN\", \"Infinity\"); "
            "json.dumps(body, allow_nan=False) catches them before sending.")
    if f.type in ("int64", "int32") and (isinstance(value, bool) or isinstance(value, str)
                                         and value != value.strip()):
        # handlers.py::_assert_intlike then passes it (int(True), int(" 5 ")): a 200 with 0 stored
        return "bool-as-number" if isinstance(value, bool) else "trap-parse-stopped", (
            f"'{f.name}' is {json.dumps(value)}: an {f.type} field refuses a JSON "
            f"{'boolean' if isinstance(value, bool) else 'string with spaces'}, and the "
            "handler's _assert_intlike then accepts it, so 0 is stored, with a 200. "), ""
    if f.timestamp and isinstance(value, (int, float)):
        if 0 < abs(value) < SECONDS_THRESHOLD:
            return "trap-seconds-timestamp", (f"{f.name}={value!r} is fractional seconds "
                                              "(time.time()), not integer milliseconds. "), ""
        return "trap-fractional-timestamp", (f"{f.name}={value!r} has a fraction; an int64 "
                                             "timestamp cannot hold one. "), ""
    if f.name == "step" and isinstance(value, float):
        return "trap-fractional-step", f"step={value!r} has a fraction; step is an int64. ", ""
    return "trap-parse-stopped", "", ""


def type_hint(f: Field | None) -> str:
    if f is None:
        return "the documented type"
    if f.repeated:
        return "a JSON array" + (" of objects" if f.message else "")
    if f.timestamp:
        return "a whole number of milliseconds, e.g. int(time.time() * 1000)"
    if f.name == "experiment_id":
        return "a JSON string, e.g. \"0\": ids are strings in MLflow's REST API"
    return {"string": "a JSON string", "double": "a JSON number (or the string \"NaN\")",
            "int64": "a whole JSON number", "int32": "a whole JSON number", "bool": "true or false",
            "message": "a JSON object", "enum": "one of " + ", ".join(f.enum_values),
            }.get(f.type, f"a {f.type}" if f.type else "the documented type")


def crash_fix(body: Any) -> str:
    return ("Send a plain value: a string, a number, or a list of objects where documented."
            if isinstance(body, dict) else "Send one JSON object: {\"field\": value, ...}.")


_NAME_FIX = "Use letters, digits, _ - . space : / only, and no '..' or leading '/'."
_SPLIT = "Split it into several requests."
ID_FIX = ("Experiment ids are the whole numbers the server gave, sent as strings (e.g. \"0\"); "
          "experiments/get-by-name looks one up by name.")
#: MLflow's refusals once the schema passed, by a phrase of the message: (phrase, finding id,
#: fix); the first match wins.
STORE_REFUSALS = (
    ("'run_name' argument and 'mlflow.runName' tag", "store-check",
     "Give one run name, or the same in both."),
    ("fragments or params", "store-check", "Remove the ';params' or '#fragment'."),
    ("custom view", "batch-limit", "Send fewer view tags."),
    ("specifies both", "store-check",
     "Send each field once, by its proto name: the one the handler's checks read."),
    ("batch logging request", "batch-limit", _SPLIT),
    ("at most", "batch-limit", _SPLIT),
    ("exceeds the maximum length", "too-long", "Shorten it to the length the message names."),
    ("Names may only contain", "invalid-name", _NAME_FIX),
    ("resolve to", "invalid-name", _NAME_FIX),
    ("Invalid experiment ID", "bad-experiment-id", ID_FIX),
    ("invalid literal for int()", "bad-experiment-id", ID_FIX),
    ("Names cannot contain", "invalid-name", "Leave '/' and ':' out of model names: they "
     "separate the parts of models:/<name>/<version> URIs."),
    ("alias", "invalid-alias", "Use letters, digits, '_' and '-' for aliases, not 'latest' or "
     "'v<number>' (both are reserved)."),
    ("must be an integer", "bad-version", "Send the version number as a string of digits."),
    ("model version source", "invalid-source", "Register what a run or logged model holds: "
     "runs:/<run_id>/<path> with that run_id, or models:/<model_id> with that model_id."),
    ("Missing value", "missing-field", "Send a non-blank value."),
)


def store_refusal(message: str, default: str = "store-check") -> tuple[str, str]:
    """The finding id and fix for MLflow's refusal `message` (STORE_REFUSALS)."""
    return next(((id_, fix) for phrase, id_, fix in STORE_REFUSALS if phrase in message),
                (default, "Change the value the message names."))


#: Unknown fields named one by one (each costs a difflib search); the rest get one summary.
_UNKNOWN_NAMED = 20


def _unknown_keys(sim: Pipeline, fields: tuple[Field, ...], body: dict) -> None:
    """Unknown keys at the top level and in lists of messages, without recursion."""
    unknown = 0
    stack: list[tuple[tuple[Field, ...], dict, str, int]] = [(fields, body, "", 0)]
    while stack:
        fields_, obj, where, depth = stack.pop(0)
        known = {k: f for f in fields_ for k in (f.name, f.json_name)}
        for key, value in obj.items():
            f = known.get(key)
            if f is None:
                unknown += 1
                if unknown > _UNKNOWN_NAMED:
                    continue
                close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                sim.add("warning", "unknown-field", PARSE + " ignore_unknown_fields=True",
                        f"Unknown field '{where}{key}': the server drops it silently.{hint}",
                        f"Rename it to '{close[0]}'." if close else "Remove it.")
            elif key == f.json_name != f.name and f.handler_checks:
                sim.add("warning", "json-name", H + "_validate_request_json_with_schema",
                        f"'{where}{key}' is the proto's JSON name: the parser accepts it, but "
                        f"the handler's checks look for '{f.name}' only.", f"Send '{f.name}'.")
            elif f.fields and isinstance(value, list) and depth < 2:
                stack += [(f.fields, item, f"{where}{f.name}[{i}].", depth + 1)
                          for i, item in enumerate(value[:_UNKNOWN_NAMED])
                          if isinstance(item, dict)]
    if unknown > _UNKNOWN_NAMED:
        sim.add("warning", "unknown-field", PARSE + " ignore_unknown_fields=True",
                f"{unknown - _UNKNOWN_NAMED} more unknown fields: the server drops them "
                "silently too.", "Remove them.")


def _unknown_enum(sim: Pipeline, ep: Endpoint, body: dict) -> None:
    for f in ep.fields:
        value = body.get(f.name, body.get(f.json_name))
        if f.enum_values and isinstance(value, str) and value not in f.enum_values:
            sim.add("warning", "unknown-enum", PARSE + " ignore_unknown_fields=True",
                    f"'{f.name}' = {json.dumps(value)} is not one of {', '.join(f.enum_values)}: "
                    "protobuf skips unknown enum names, so that field is not changed.",
                    f"Use one of the enum's names exactly: {', '.join(f.enum_values)}.")


def _timestamp_warnings(sim: Pipeline, body: dict, paths: tuple[str, ...]) -> None:
    """Whole-number timestamps the store keeps as sent (a float stops the parse: `stop_kind`)."""
    for path in paths:
        outer, _, inner = path.rpartition("[].")
        items = body.get(outer) if outer else [body]
        for i, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(inner) if isinstance(item, dict) else None
            where = f"{outer}[{i}].{inner}" if outer else inner
            if isinstance(value, bool) or not isinstance(value, int):
                continue
            if 0 < value < SECONDS_THRESHOLD:
                sim.add("warning", "trap-seconds-timestamp", "MLflow timestamps are milliseconds "
                        "since the epoch", f"{where}={value!r} looks like seconds: it is stored as "
                        f"{value} ms, i.e. early 1970.", "Send int(time.time() * 1000).")
            elif value < 0 and not where.endswith("timestamp"):
                sim.add("warning", "negative-timestamp", STORE + "create_run / update_run_info",
                        f"{where}={value!r} is negative; runs/create and runs/update store it as "
                        "is.", "Send milliseconds since the epoch.")


def _number_warnings(sim: Pipeline, ep: Endpoint, body: dict) -> None:
    for f in (f for f in ep.fields if f.type in ("double", "float", "int64", "int32")):
        value = body.get(f.name)
        if isinstance(value, bool) and f.name != sim.stopped_at:
            sim.add("warning", "bool-as-number", PARSE,
                    f"'{f.name}' was sent as {json.dumps(value)}: protobuf reads a JSON boolean "
                    f"as a number, so {int(value)} is stored.", "Send the number you mean.")
        elif isinstance(value, str) and sim.req.method != "GET" and sim.message is not None \
                and parses(ep, f.name, value):
            sim.add("info", "coerced-string", PARSE,
                    f"'{f.name}' is the string {json.dumps(value)}: protobuf's JSON parser "
                    f"converts numeric strings, so {getattr(sim.message, f.name)!r} is stored.",
                    "Send numbers as JSON numbers.")
