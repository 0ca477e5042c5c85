"""Offline tests of helpers.preflight_pipeline. Every expected status and message below was observed on
a live MLflow 3.17.2 server (sqlite backend) before it was written here."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from helpers.preflight_pipeline import Verdict, preflight

API = "/api/2.0/mlflow"
LM = f"{API}/runs/log-metric"
LB = f"{API}/runs/log-batch"
JSON = {"Content-Type": "application/json"}
TS = 1700000000000
DOCS = " See the API docs for more information about request parameters."
CT_WRONG = "Bad Request. Content-Type must be one of ['application/json']."


def metric(**overrides: Any) -> dict[str, Any]:
    base = {"run_id": "r1", "key": "loss", "value": 0.5, "timestamp": TS, "step": 1}
    return {k: v for k, v in {**base, **overrides}.items() if v is not ...}


def check(path: str, payload: Any, headers: dict | None = None, method: str = "POST") -> Verdict:
    body = payload if isinstance(payload, (str, bytes)) or payload is None else json.dumps(payload)
    return preflight(method, path, JSON if headers is None else headers, body)


def messages(v: Verdict, severity: str) -> str:
    return "\n".join(f.message for f in v.findings if f.severity == severity)


# --- the article's three examples


def test_article_missing_content_type() -> None:
    v = check(LM, metric(), headers={})
    assert v.predicted_status == 400
    assert v.expected_message == "Bad Request. Content-Type header is missing."
    assert v.expected_error_code == "INVALID_PARAMETER_VALUE"
    assert v.errors[0].check == "mlflow/server/validation.py::_validate_content_type"
    assert "application/json" in v.errors[0].fix


def test_article_missing_timestamp() -> None:
    v = check(LM, metric(timestamp=...))
    assert v.predicted_status == 400
    assert v.expected_message == "Missing value for required parameter 'timestamp'." + DOCS


def test_article_value_of_the_wrong_type() -> None:
    v = check(LM, metric(value="high"))
    assert v.predicted_status == 400
    assert v.expected_message == ("Invalid value \"high\" for parameter 'value' supplied:  "
                                  "Hint: Value was of type 'str'." + DOCS)


def test_a_valid_request_is_accepted_with_a_note_on_server_state() -> None:
    v = check(LM, metric())
    assert (v.predicted_status, v.valid, v.errors, v.warnings) == (None, True, (), ())
    assert [f.id for f in v.findings] == ["state"]
    assert "404" in messages(v, "info")
    assert "'r1'" in messages(v, "info")


# --- Content-Type


@pytest.mark.parametrize("value, status", [
    ("application/json; charset=utf-8", 200),
    ("application/json;charset=latin-1", 200),
    ("application/json ", 200),  # the HTTP parser strips trailing whitespace
    ("Application/JSON", 400),
    ("application/json ; charset=utf-8", 400),
    ("text/plain", 400),
    ("application/vnd.api+json", 400),
    ("", 400),
])
def test_content_type_is_compared_exactly_before_the_semicolon(value: str, status: int) -> None:
    v = check(LM, metric(), headers={"Content-Type": value})
    assert (200 if v.valid else v.predicted_status) == status
    if status == 400:
        assert v.expected_message == CT_WRONG


def test_the_header_name_is_case_insensitive() -> None:
    assert check(LM, metric(), headers={"content-type": "application/json"}).valid


def test_wrong_case_is_explained() -> None:
    v = check(LM, metric(), headers={"Content-Type": "Application/JSON"})
    assert "case-sensitive" in v.errors[0].message


def test_the_next_error_is_shown_once_content_type_is_fixed() -> None:
    v = check(LM, metric(timestamp=...), headers={})
    assert v.expected_message == "Bad Request. Content-Type header is missing."
    later = [f for f in v.errors if f.message.startswith("Once Content-Type is fixed")]
    assert len(later) == 1 and "'timestamp'" in later[0].message
    assert v.message is None  # the server never parsed the body


# --- bodies


@pytest.mark.parametrize("body", ["{'run_id': 'r1'}", "", "null", b"{\"key\": \"\xe9t\xe9\"}"])
def test_an_unreadable_body_becomes_an_empty_object(body: str | bytes) -> None:
    v = check(LM, body)
    assert v.predicted_status == 400
    assert v.expected_message == "Missing value for required parameter 'run_id'." + DOCS


def test_invalid_json_is_reported_although_the_server_does_not_say_so() -> None:
    v = check(LM, "{'run_id': 'r1'}")
    assert "not JSON" in messages(v, "error") and "str(dict)" in messages(v, "error")


def test_double_encoded_json_is_decoded_a_second_time() -> None:
    v = check(LM, json.dumps(json.dumps(metric())))
    assert v.valid
    assert "double-encoded" in messages(v, "info")


@pytest.mark.parametrize("body", [json.dumps([metric()]), "5", "true", json.dumps("\"5\"")])
def test_bodies_that_are_not_objects_crash_the_server(body: str) -> None:
    v = check(LM, body)
    assert v.predicted_status == 500
    assert v.expected_message is None
    assert "500 Internal Server Error" in messages(v, "error")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_utf16_and_bom_bodies_are_read(encoding: str) -> None:
    assert check(LM, json.dumps(metric()).encode(encoding)).valid


def test_a_dict_body_is_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="json.dumps"):
        preflight("POST", LM, JSON, metric())  # type: ignore[arg-type]


# --- values and coercions


def test_a_numeric_string_value_is_accepted() -> None:
    v = check(LM, metric(value="0.5"))
    assert v.valid and v.message.value == 0.5


def test_true_as_a_value_is_stored_as_one() -> None:
    v = check(LM, metric(value=True))
    assert v.valid and v.message.value == 1.0
    assert "boolean" in messages(v, "warning")


@pytest.mark.parametrize("value", [[0.5], {"v": 0.5}])
def test_a_list_or_object_value_crashes_the_server(value: Any) -> None:
    assert check(LM, metric(value=value)).predicted_status == 500


def test_a_bare_nan_is_accepted_and_silently_zeroes_the_rest() -> None:
    v = check(LM, metric(value=float("nan")))  # json.dumps writes NaN
    assert v.valid
    assert (v.message.value, v.message.timestamp, v.message.step) == (0.0, 0, 0)
    warned = messages(v, "warning")
    assert "bare NaN literal" in warned and "timestamp, step" in warned


def test_the_nan_string_is_stored_as_nan() -> None:
    v = check(LM, metric(value="NaN"))
    assert v.valid and math.isnan(v.message.value)


def test_a_fractional_timestamp_is_stored_as_zero() -> None:
    v = check(LM, metric(timestamp=TS + 0.5))
    assert v.valid
    assert (v.message.timestamp, v.message.step) == (0, 0)
    assert "gives up at 'timestamp'" in messages(v, "warning")


def test_a_fractional_step_is_stored_as_zero() -> None:
    v = check(LM, metric(step=1.5))
    assert v.valid and v.message.step == 0


def test_a_whole_float_timestamp_is_fine() -> None:
    v = check(LM, metric(timestamp=float(TS)))
    assert v.valid and v.message.timestamp == TS and not v.warnings


def test_a_timestamp_in_seconds_is_accepted_with_a_warning() -> None:
    v = check(LM, metric(timestamp=TS // 1000))
    assert v.valid
    assert "looks like seconds" in messages(v, "warning")


def test_a_negative_timestamp_is_refused_by_the_store_validator() -> None:
    v = check(LM, metric(timestamp=-1))
    assert v.predicted_status == 400
    assert v.expected_message == ("Invalid value -1 for parameter 'timestamp' supplied: metric "
                                  "'loss' (value=0.5). Timestamp must be a nonnegative long "
                                  "(64-bit integer) ")
    assert v.errors[0].check == "mlflow/utils/validation.py::_validate_metric"


def test_a_timestamp_word_fails_the_intlike_check() -> None:
    v = check(LM, metric(timestamp="now"))
    assert v.expected_message == ("Invalid value \"now\" for parameter 'timestamp' supplied:  "
                                  "Hint: Value was of type 'str'." + DOCS)


# --- names and ids


def test_run_uuid_alone_works_but_is_deprecated() -> None:
    v = check(LM, metric(run_id=..., run_uuid="r1"))
    assert v.valid
    assert "deprecated" in messages(v, "info")


def test_camel_case_run_id_is_parsed_but_not_seen_by_the_check() -> None:
    v = check(LM, metric(run_id=..., runId="r1"))
    assert v.expected_message == "Missing value for required parameter 'run_id'." + DOCS
    assert "runId" in v.errors[0].fix


def test_both_spellings_of_one_field_are_refused() -> None:
    v = check(LM, metric(runId="r1"))
    assert v.expected_message == ("Request specifies both 'run_id' and 'runId'; provide only "
                                  "one of them.")


def test_an_unknown_field_gets_a_did_you_mean() -> None:
    v = check(LM, metric(step=..., stpe=3))
    assert v.valid
    assert "Did you mean 'step'?" in messages(v, "warning")


def test_a_bad_metric_name_is_reported_as_parameter_name() -> None:
    v = check(LM, metric(key="a*b"))
    assert v.expected_message.startswith("Invalid value \"a*b\" for parameter 'name' supplied: "
                                         "Names may only contain")


def test_a_long_metric_name() -> None:
    v = check(LM, metric(key="k" * 251))
    assert v.expected_message == "'Metric name' exceeds the maximum length of 250 characters"


def test_a_long_param_value_is_truncated_not_refused() -> None:
    v = check(f"{API}/runs/log-parameter", {"run_id": "r1", "key": "p", "value": "x" * 6001})
    assert v.valid
    assert "keeps the first 6000" in messages(v, "warning")


# --- routing and security


@pytest.mark.parametrize("path, status", [
    (f"{API}/runs/log-param", 404),
    (f"{API}/runs/log-metrics", 404),
    (LM + "/", 404),
    ("/api/3.0/mlflow/runs/log-metric", 404),
    (f"{API}//runs/log-metric", 308),
    ("/ajax-api/2.0/mlflow/runs/log-metric", 200),
])
def test_routing(path: str, status: int) -> None:
    v = check(path, metric())
    assert (200 if v.valid else v.predicted_status) == status


def test_the_old_log_param_path_suggests_the_real_one() -> None:
    v = check(f"{API}/runs/log-param", {"run_id": "r1", "key": "p", "value": "v"})
    assert "log-parameter" in v.errors[0].fix


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_other_methods_get_405(method: str) -> None:
    assert check(LM, metric(), method=method).predicted_status == 405


def test_a_foreign_origin_is_blocked() -> None:
    v = check(LM, metric(), headers={**JSON, "Origin": "http://evil.example"})
    assert (v.predicted_status, v.expected_message) == (403, "Cross-origin request blocked")
    assert check(LM, metric(), headers={**JSON, "Origin": "http://localhost:3000"}).valid


def test_a_public_host_name_is_refused() -> None:
    v = preflight("POST", "http://mlflow.example.com" + LM, JSON, json.dumps(metric()))
    assert v.predicted_status == 403
    assert v.expected_message == "Invalid Host header - possible DNS rebinding attack detected"
    assert preflight("POST", "http://127.0.0.1:5000" + LM, JSON, json.dumps(metric())).valid


def test_an_endpoint_without_rules_cannot_be_predicted() -> None:
    v = preflight("GET", f"{API}/runs/get?run_id=r1", None, None)
    assert v.predicted_status is None and v.endpoint.name == "getRun"


# --- log-batch


def batch(**fields: Any) -> dict[str, Any]:
    return {"run_id": "r1", **fields}


def item(i: int = 0, **overrides: Any) -> dict[str, Any]:
    return {"key": f"m{i}", "value": 1.0, "timestamp": TS, "step": i, **overrides}


@pytest.mark.parametrize("body", ["{bad json", "null", ""])
def test_log_batch_crashes_on_an_unreadable_body(body: str) -> None:
    assert check(LB, body).predicted_status == 500


def test_log_batch_drops_everything_after_a_bad_metric() -> None:
    v = check(LB, batch(metrics=[item(0, value="high"), item(1)],
                        params=[{"key": "lr", "value": "1"}]))
    assert v.valid
    assert len(v.message.metrics) == 1 and list(v.message.params) == []
    warned = messages(v, "warning")
    assert "Only 1 of the 2 metrics" in warned and "Only 0 of the 1 params" in warned


def test_log_batch_names_the_missing_nested_field() -> None:
    v = check(LB, batch(metrics=[item(0), {"value": 1, "timestamp": TS}]))
    assert v.expected_message == "Missing value for required parameter 'metrics[1].key'." + DOCS


def test_log_batch_limits() -> None:
    v = check(LB, batch(metrics=[item(i) for i in range(1001)]))
    assert v.expected_message == ("A batch logging request can contain at most 1000 metrics. "
                                  "Got 1001 metrics. Please split up metrics across multiple "
                                  "requests and try again.")


def test_log_batch_refuses_duplicate_param_keys_even_with_equal_values() -> None:
    v = check(LB, batch(params=[{"key": "lr", "value": "1"}] * 2))
    assert v.predicted_status == 400 and "Duplicate parameter keys" in v.expected_message


def test_log_batch_ignores_run_uuid() -> None:
    v = check(LB, {"run_uuid": "r1", "metrics": [item()]})
    assert v.expected_message == "Invalid value \"\" for parameter 'run_id' supplied."


def test_log_batch_crashes_on_a_metric_that_is_not_an_object() -> None:
    assert check(LB, batch(metrics=[1])).predicted_status == 500


# --- runs/create, runs/update, experiments/create, delete-run


def test_create_run_without_experiment_id_fails_in_the_database() -> None:
    v = check(f"{API}/runs/create", {})
    assert (v.predicted_status, v.expected_error_code) == (400, "BAD_REQUEST")
    assert v.expected_message is None  # backend-specific SQL text


def test_create_run_with_a_non_numeric_experiment_id() -> None:
    v = check(f"{API}/runs/create", {"experiment_id": "my-exp"})
    assert v.expected_message == ("Invalid experiment ID 'my-exp'. Experiment ID must be a valid "
                                  "integer.")


def test_create_run_drops_tags_sent_as_an_object() -> None:
    v = check(f"{API}/runs/create", {"experiment_id": "1", "tags": {"team": "ml"}})
    assert v.valid and list(v.message.tags) == []
    assert "gives up at 'tags'" in messages(v, "warning")


def test_update_run_ignores_an_unknown_status() -> None:
    v = check(f"{API}/runs/update", {"run_id": "r1", "status": "DONE"})
    assert v.valid and not v.message.HasField("status")
    assert "is not one of" in messages(v, "warning")


def test_experiment_tag_without_key() -> None:
    v = check(f"{API}/experiments/create", {"name": "e", "tags": [{"value": "v"}]})
    assert v.expected_message.startswith("Invalid value \"\" for parameter 'key' supplied: "
                                         "Names may be treated as files")


def test_delete_run_reads_run_id_only() -> None:
    v = check(f"{API}/runs/delete", {"run_uuid": "r1"})
    assert (v.predicted_status, v.expected_message) == (404, "Run with id= not found")


def test_verdict_text_names_status_message_and_check() -> None:
    text = str(check(LM, metric(timestamp=...)))
    assert "predicted 400" in text and "'timestamp'" in text and "handlers.py" in text


# --- hygiene


def test_works_under_python_O_and_never_imports_the_server() -> None:
    """MLflow's validators are `assert`s: compiled from handlers.py with optimize=0 they still
    fire under -O. And neither mlflow.server nor Flask enters the process."""
    import subprocess
    import sys

    code = ("import json, sys; from helpers.preflight_pipeline import preflight; "
            "v = preflight('POST', '/api/2.0/mlflow/runs/log-metric', "
            "{'Content-Type': 'application/json'}, "
            "json.dumps({'run_id': 'r', 'key': 'k', 'value': 1})); "
            "print(v.predicted_status, v.expected_message); "
            "print(sorted(m for m in sys.modules if m.startswith(('mlflow.server', 'flask'))))")
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.splitlines() == [
        "400 Missing value for required parameter 'timestamp'." + DOCS, "[]"]


def test_a_2000_deep_body_is_predicted_500_not_a_recursion_error() -> None:
    # Live: 500 with Flask's HTML page (json.loads raises RecursionError, not ValueError).
    v = check(LM, '{"a":' * 2000 + "1" + "}" * 2000)
    assert v.predicted_status == 500 and v.errors[0].id == "server-error"
    v = check(LM, "[" * 2000 + "]" * 2000)
    assert v.predicted_status == 500


def test_a_percent_encoded_path_is_decoded_like_the_server() -> None:
    # Live: POST /api/2.0/mlflow/runs/log%2Dmetric answers 200 (the path is decoded).
    v = check(f"{API}/runs/log%2Dmetric", metric())
    assert v.valid and v.endpoint is not None and v.endpoint.name == "logMetric"


def test_no_process_wide_logging_toggles_and_no_import_fallbacks() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "helpers"
    for name in ("server_model.py", "model_table.py", "preflight_pipeline.py", "preflight_route.py",
                 "preflight_store.py", "preflight_advice.py", "diagnose.py", "catalog.py"):
        text = (root / name).read_text()
        assert ".disabled" not in text and "logging." not in text, name
        assert "except ImportError" not in text, name
        assert "\n    assert " not in text and "\nassert " not in text, name


# --- state lookups (server=) keep the rules of wire.send (issue 22: 4)


def _lookup_finding(v: Verdict) -> str:
    return " ".join(f"{f.message} {f.fix}" for f in v.findings if f.id == "state-lookup-failed")


def test_lookups_to_this_machine_never_use_a_proxy(server_url: str, fresh_run: dict,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """(a) HTTP_PROXY names a closed port: a lookup sent through it would fail."""
    from helpers.processes import free_port

    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    v = preflight("POST", f"{server_url}/api/2.0/mlflow/runs/log-metric", JSON,
                  json.dumps(metric(run_id=fresh_run["run_id"])), server=server_url)
    assert not _lookup_finding(v) and v.predicted_status == 200, v.findings


def test_a_lookup_that_trickles_stops_at_one_deadline(echo, monkeypatch: pytest.MonkeyPatch) -> None:
    """(c) One byte every 0.2 s never trips a per-read timeout; the one deadline does."""
    import time

    from helpers import wire
    from helpers.errors import ServerUnreachable

    monkeypatch.setattr(wire, "LOOKUP_TIMEOUT", 1.0)
    started = time.monotonic()
    v = preflight("POST", LM, JSON, json.dumps(metric()), server=f"{echo.url}/trickle")
    assert time.monotonic() - started < 4 and "did not answer within 1 s" in _lookup_finding(v)
    for where in ("trickle", "trickle-head"):  # the body, the status line and headers
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="did not answer within 1 s"):
            wire.send(f"{echo.url}/{where}", method="GET", timeout=1.0)
        assert time.monotonic() - started < 4, where


def test_an_empty_404_from_something_else_is_not_run_not_found(echo) -> None:
    """(d) Only MLflow's JSON error bodies say "not found"."""
    v = preflight("POST", LM, JSON, json.dumps(metric()), server=f"{echo.url}/empty404")
    assert v.predicted_status is None and "not found" not in " ".join(f.message for f in v.findings)
    assert "404 Not Found with an empty body, not MLflow's JSON" in _lookup_finding(v)


def test_a_value_the_store_truncates_is_a_finding_not_a_log_line(capfd: pytest.CaptureFixture) -> None:
    """MLflow's validator logs a WARNING when it truncates; preflight runs it, and must not print it
    into the learner's cell (notebook 12 shows the finding instead)."""
    import logging

    logging.getLogger("mlflow").warning("capture works")  # MLflow's own handler writes to stderr
    assert "capture works" in capfd.readouterr().err
    body = json.dumps({"run_id": "a" * 32, "key": "p", "value": "v" * 6001})
    verdict = preflight("POST", "/api/2.0/mlflow/runs/log-parameter", {"Content-Type": "application/json"},
                        body)
    assert "trap-truncated" in [f.id for f in verdict.findings], verdict
    assert "truncated" not in capfd.readouterr().err
