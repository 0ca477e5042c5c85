"""Request parts: each choice produces the bytes it names, and the live server answers them as MLflow does.

Ground truth is the live session server (statuses and messages of MLflow 3.17.2) or a loopback
server that records the raw bytes it receives, never the module's own output.
"""

from __future__ import annotations

import ast
import json
import time

import pytest

from helpers import request_parts as rp
from helpers import runs
from tests.loopback import RecordingServer

MISSING_RUN_ID = ("Missing value for required parameter 'run_id'. See the API docs for more "
                  "information about request parameters.")
PAYLOAD = {"run_id": "abc", "key": "it's", "value": 0.5, "timestamp": 1_700_000_000_000,
           "step": 0, "tags": [{"key": "k", "value": "v"}]}


def _ctx(fresh_run: dict) -> rp.LabContext:
    return rp.LabContext(run_id=fresh_run["run_id"], experiment_id=fresh_run["experiment_id"])


def _with(choices: rp.Choices, **fields: object) -> rp.Choices:
    rows = dict(choices.fields)
    for name, value in fields.items():
        rows[name] = (rp.FieldChoice(False, rows[name].text) if value is rp.OMIT
                      else rp.FieldChoice(True, rp.value_text(value)))
    return rp.Choices(choices.endpoint, choices.method, choices.content_type, choices.body_style,
                      rows)


def _style(choices: rp.Choices, *, content_type: str | None = None, body_style: str | None = None,
           method: str | None = None) -> rp.Choices:
    return rp.Choices(choices.endpoint, method or choices.method,
                      content_type or choices.content_type, body_style or choices.body_style,
                      choices.fields)


# ------------------------------------------------------------------ the bytes of each body style


def test_valid_json_and_double_encoded_decode_to_the_payload() -> None:
    assert json.loads(rp.render_body(PAYLOAD, "valid JSON")) == PAYLOAD
    once = json.loads(rp.render_body(PAYLOAD, "double-encoded"))
    assert isinstance(once, str) and json.loads(once) == PAYLOAD


@pytest.mark.parametrize("style", ["unquoted keys", "trailing comma", "single quotes", "empty"])
def test_broken_styles_are_not_json(style: str) -> None:
    with pytest.raises(ValueError):
        json.loads(rp.render_body(PAYLOAD, style))


def test_each_broken_style_is_broken_only_the_way_it_says() -> None:
    unquoted = rp.render_body(PAYLOAD, "unquoted keys").decode()
    assert unquoted.startswith('{run_id: "abc", key: "it\'s"')
    assert "tags: [{key: " in unquoted  # nested keys too, as a JS object literal writes them
    trailing = rp.render_body(PAYLOAD, "trailing comma").decode()
    assert trailing.endswith(",}") and json.loads(trailing[:-2] + "}") == PAYLOAD
    single = rp.render_body(PAYLOAD, "single quotes").decode()
    assert '"' not in single and ast.literal_eval(single) == PAYLOAD  # Python's dict syntax
    assert rp.render_body(PAYLOAD, "empty") == b""


def test_unknown_style_is_a_plain_sentence() -> None:
    with pytest.raises(ValueError, match="choose one of valid JSON"):
        rp.render_body(PAYLOAD, "yaml")


def test_value_boxes_hold_json_and_forgive_missing_quotes() -> None:
    assert rp.parse_value('"0.5"') == "0.5"
    assert rp.parse_value("0.5") == 0.5
    assert rp.parse_value("null") is None
    assert rp.parse_value("invalid_run_id") == "invalid_run_id"  # not JSON: sent as a string
    assert rp.parse_value("") == ""
    for value in ("abc", 0.95, None, 1_700_000_000_000, [{"key": "k"}]):
        assert rp.parse_value(rp.value_text(value)) == value


# ------------------------------------------------------------------ headers and what goes out


def test_content_type_none_sends_no_header(echo: RecordingServer) -> None:
    ctx = rp.LabContext("abc", "1")
    for content_type in rp.CONTENT_TYPES:
        parts = rp.build(_style(rp.default_choices("log-metric", ctx), content_type=content_type))
        rp.send_parts(parts, base_url=echo.url)
        got = echo.received[-1].headers.get("Content-Type")
        assert got == (None if content_type == rp.NO_CONTENT_TYPE else content_type)


def test_preview_is_what_the_server_receives(echo: RecordingServer) -> None:
    ctx = rp.LabContext("abc", "1")
    base = rp.default_choices("log-metric", ctx)
    cases = [base, _style(base, content_type=rp.NO_CONTENT_TYPE),
             _style(base, body_style="empty"), _style(base, method="GET", body_style="empty"),
             _style(base, method="PUT", body_style="single quotes"),
             rp.default_choices("log-batch", ctx)]
    for choices in cases:
        parts = rp.build(choices)
        shown = rp.preview(parts, echo.url)
        rp.send_parts(parts, base_url=echo.url)
        received = echo.received[-1]
        assert (received.method, received.path) == (shown.method, shown.path)
        assert received.body == shown.body == parts.body
        assert {k.lower(): v for k, v in received.headers.items()} == \
            {k.lower(): v for k, v in shown.headers}


def test_fields_come_from_the_catalog() -> None:
    from helpers import catalog

    for endpoint, path in rp.ENDPOINTS.items():
        specs = rp.fields_for(endpoint)
        found = catalog.endpoint(path)
        assert [(s.name, s.type, s.repeated, s.required) for s in specs] == \
            [(f.name, f.type, f.repeated, f.enforced) for f in found.fields], endpoint


def test_describe_changes_names_what_was_toggled() -> None:
    ctx = rp.LabContext("abc", "1")
    base = rp.default_choices("log-metric", ctx)
    assert rp.describe_changes(base, base) == []
    changed = _with(_style(base, content_type=rp.NO_CONTENT_TYPE, body_style="trailing comma"),
                    timestamp=rp.OMIT, value="abc")
    assert rp.describe_changes(changed, base) == [
        "Content-Type: (none)", "body: trailing comma", 'value = "abc"', "timestamp omitted"]
    later = _with(base, timestamp=runs.now_ms() + 5000)  # a fresh "now in ms" is no change
    assert rp.describe_changes(later, base) == []


# ------------------------------------------------------------------ the live server's answers


@pytest.mark.parametrize(("style", "status", "message"), [
    ("valid JSON", 200, None),
    ("double-encoded", 200, None),  # MLflow decodes a JSON string a second time
    ("unquoted keys", 400, MISSING_RUN_ID),
    ("trailing comma", 400, MISSING_RUN_ID),
    ("single quotes", 400, MISSING_RUN_ID),
    ("empty", 400, MISSING_RUN_ID),
])
def test_body_styles_live(fresh_run: dict, style: str, status: int, message: str | None) -> None:
    parts = rp.build(_style(rp.default_choices("log-metric", _ctx(fresh_run)), body_style=style))
    answer = rp.send_parts(parts)
    assert (answer.status, answer.message) == (status, message)


@pytest.mark.parametrize(("content_type", "status", "message"), [
    ("application/json", 200, None),
    ("application/json; charset=utf-8", 200, None),
    ("text/plain", 400, "Bad Request. Content-Type must be one of ['application/json']."),
    ("application/x-www-form-urlencoded", 400,
     "Bad Request. Content-Type must be one of ['application/json']."),
    (rp.NO_CONTENT_TYPE, 400, "Bad Request. Content-Type header is missing."),
])
def test_content_types_live(fresh_run: dict, content_type: str, status: int,
                            message: str | None) -> None:
    parts = rp.build(_style(rp.default_choices("log-metric", _ctx(fresh_run)),
                            content_type=content_type))
    answer = rp.send_parts(parts)
    assert (answer.status, answer.message) == (status, message)


def test_every_endpoints_default_request_is_accepted(fresh_run: dict) -> None:
    for endpoint in rp.ENDPOINTS:
        answer = rp.send_parts(rp.build(rp.default_choices(endpoint, _ctx(fresh_run))))
        assert answer.status == 200, (endpoint, answer.message)
    stored = runs.get_run(fresh_run["run_id"])["data"]
    assert {p["key"]: p["value"] for p in stored["params"]} == {"learning_rate": "0.01",
                                                                  "batch_size": "32"}


def test_quick_choices_live(fresh_run: dict) -> None:
    ctx = _ctx(fresh_run)
    base = rp.default_choices("log-metric", ctx)
    choose = {field: {label: fn(ctx) for label, fn in options.items()}
              for field, options in rp.QUICK_CHOICES.items()}
    nonexistent = rp.send_parts(rp.build(_with(base, run_id=choose["run_id"]["nonexistent"])))
    assert (nonexistent.status, nonexistent.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    empty = rp.send_parts(rp.build(_with(base, run_id=choose["run_id"]["empty"])))
    assert (empty.status, empty.message) == (400, MISSING_RUN_ID)
    assert choose["timestamp"]["omit"] is rp.OMIT
    omitted = rp.send_parts(rp.build(_with(base, timestamp=rp.OMIT)))
    assert omitted.status == 400 and "'timestamp'" in (omitted.message or "")
    abc = rp.send_parts(rp.build(_with(base, value=choose["value"]['"abc"'])))
    assert abc.status == 400 and "Invalid value \"abc\" for parameter 'value'" in abc.message
    null = rp.send_parts(rp.build(_with(base, value=choose["value"]["null"])))
    assert null.status == 400 and "'value'" in null.message

    seconds = choose["timestamp"]["seconds as float"]
    assert isinstance(seconds, float) and abs(seconds - time.time()) < 60
    seconds += 0.5 if seconds.is_integer() else 0  # protobuf accepts a float with no fraction
    accepted = rp.send_parts(rp.build(_with(base, key="float_seconds", timestamp=seconds)))
    assert accepted.status == 200
    stored = runs.metric_history(fresh_run["run_id"], "float_seconds")
    assert [int(p["timestamp"]) for p in stored] == [0]  # a 200, and the timestamp is lost
