"""The behaviours deep dives 10-13 (once notebooks 03 and 05) claim, asserted against the live session server.

Each test is one sentence of a notebook: if MLflow changes what it answers or what it stores,
the test names the claim that is no longer true. Expected values are what MLflow 3.17.2 was
seen to answer; stored data is always read back from the server, never assumed.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from mlflow.utils import validation as v

from helpers import runs
from helpers.wire import Exchange, send

API = "/api/2.0/mlflow"
LOG_METRIC = f"{API}/runs/log-metric"
LOG_BATCH = f"{API}/runs/log-batch"
LOG_PARAM = f"{API}/runs/log-parameter"
SET_TAG = f"{API}/runs/set-tag"
JSON = {"Content-Type": "application/json"}
MISSING = "Missing value for required parameter '{}'"


@pytest.fixture
def post(server_url: str):
    def _post(path: str, body: Any = None, *, raw: str | None = None,
              headers: dict[str, str] | None = None) -> Exchange:
        if raw is not None:
            return send(path, headers=JSON if headers is None else headers, data=raw,
                        base_url=server_url)
        return send(path, json=body, headers=headers, base_url=server_url)
    return _post


@pytest.fixture
def stored(server_url: str):
    def _stored(run_id: str, key: str) -> list[tuple[Any, int, int]]:
        return [(p["value"], int(p["timestamp"]), int(p["step"]))
                for p in runs.metric_history(run_id, key, base_url=server_url)]
    return _stored


def _metric(run_id: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "key": key, "value": 0.5, "timestamp": runs.now_ms(), **extra}


def _assert_400(answer: Exchange, text: str) -> None:
    assert answer.status == 400, answer.text
    assert answer.error_code == "INVALID_PARAMETER_VALUE"
    assert text in (answer.message or ""), answer.message


# ---------------------------------------------------------------- 03: example 3 and the 404


def test_article_example_3_as_written_is_400_for_the_missing_timestamp(post) -> None:
    body = {"run_id": "invalid_run_id_123", "key": "accuracy", "value": 0.95}
    answer = post(LOG_METRIC, raw=json.dumps(body))
    _assert_400(answer, MISSING.format("timestamp"))


def test_nonexistent_run_with_timestamp_is_404_resource_does_not_exist(post) -> None:
    body = {"run_id": "invalid_run_id_123", "key": "accuracy", "value": 0.95,
            "timestamp": runs.now_ms()}
    answer = post(LOG_METRIC, body)
    assert answer.status == 404
    assert answer.body_kind == "mlflow-json"
    assert answer.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert answer.message == "Run with id=invalid_run_id_123 not found"


def test_run_id_shape_is_not_validated_before_the_lookup(post) -> None:
    answer = post(LOG_METRIC, _metric("../etc", "accuracy"))
    assert (answer.status, answer.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_order_of_checks_one_layer_at_a_time(post, fresh_run) -> None:
    """Content-Type → JSON parse (silent) → schema in order → metric rules → run lookup."""
    ts = runs.now_ms()
    steps = [
        ({}, '{"run_id": "invalid_run_id_123", "key": "acc!", "value": "abc",}',
         "Bad Request. Content-Type header is missing."),
        (JSON, '{"run_id": "invalid_run_id_123", "key": "acc!", "value": "abc",}',
         MISSING.format("run_id")),
        (JSON, '{"run_id": "invalid_run_id_123", "key": "acc!", "value": "abc"}',
         "Invalid value \"abc\" for parameter 'value' supplied:  Hint: Value was of type 'str'"),
        (JSON, '{"run_id": "invalid_run_id_123", "key": "acc!", "value": 0.95}',
         MISSING.format("timestamp")),
        (JSON, f'{{"run_id": "invalid_run_id_123", "key": "acc!", "value": 0.95, '
               f'"timestamp": {ts}}}',
         "Invalid value \"acc!\" for parameter 'name' supplied: Names may only contain"),
    ]
    for headers, raw, text in steps:
        _assert_400(post(LOG_METRIC, raw=raw, headers=headers), text)
    lookup = post(LOG_METRIC, raw=f'{{"run_id": "invalid_run_id_123", "key": "acc", '
                                  f'"value": 0.95, "timestamp": {ts}}}')
    assert (lookup.status, lookup.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    good = post(LOG_METRIC, raw=f'{{"run_id": "{fresh_run["run_id"]}", "key": "acc", '
                                f'"value": 0.95, "timestamp": {ts}}}')
    assert good.status == 200


def test_schema_reports_key_before_timestamp(post) -> None:
    _assert_400(post(LOG_METRIC, {"run_id": "invalid_run_id_123", "value": 0.95}),
                MISSING.format("key"))


# ---------------------------------------------------------------- 03: types and coercions


def test_value_abc_is_400_with_a_type_hint(post, fresh_run) -> None:
    answer = post(LOG_METRIC, _metric(fresh_run["run_id"], "abc", value="abc"))
    _assert_400(answer, "Hint: Value was of type 'str'")


@pytest.mark.parametrize("sent, expected", [("0.5", 0.5), (" 0.5 ", 0.5), ("1e3", 1000.0),
                                            (True, 1.0)])
def test_value_coercions_are_accepted_and_stored_as_numbers(post, stored, fresh_run, sent,
                                                            expected) -> None:
    answer = post(LOG_METRIC, _metric(fresh_run["run_id"], "coerced", value=sent))
    assert answer.status == 200, answer.text
    assert [p[0] for p in stored(fresh_run["run_id"], "coerced")] == [expected]


def test_value_with_a_decimal_comma_is_400(post, fresh_run) -> None:
    _assert_400(post(LOG_METRIC, _metric(fresh_run["run_id"], "comma", value="0,5")),
                "Hint: Value was of type 'str'")


def test_value_null_is_reported_missing(post, fresh_run) -> None:
    _assert_400(post(LOG_METRIC, _metric(fresh_run["run_id"], "null", value=None)),
                MISSING.format("value"))


def test_run_id_as_a_number_is_400_with_a_type_hint(post) -> None:
    _assert_400(post(LOG_METRIC, _metric(123, "k")), "Hint: Value was of type 'int'")


def test_run_uuid_still_works_as_an_alias(post, stored, fresh_run) -> None:
    body = _metric(fresh_run["run_id"], "via_uuid")
    body["run_uuid"] = body.pop("run_id")
    assert post(LOG_METRIC, body).status == 200
    assert len(stored(fresh_run["run_id"], "via_uuid")) == 1


# ---------------------------------------------------------------- 03: names and limits


@pytest.mark.parametrize("key, text", [
    ("", MISSING.format("key")),
    (None, MISSING.format("key")),
    ("acc@1", "Names may only contain alphanumerics"),
    ("../acc", "Names may be treated as files"),
    ("/acc", "Names may be treated as files"),
    ("k" * (v.MAX_ENTITY_KEY_LENGTH + 1),
     f"'Metric name' exceeds the maximum length of {v.MAX_ENTITY_KEY_LENGTH} characters"),
])
def test_illegal_metric_names_are_400(post, fresh_run, key, text) -> None:
    _assert_400(post(LOG_METRIC, _metric(fresh_run["run_id"], key)), text)


@pytest.mark.parametrize("key", ["val acc", "val/acc", "top-1:acc", "k" * v.MAX_ENTITY_KEY_LENGTH])
def test_legal_metric_names_are_accepted(post, fresh_run, key) -> None:
    assert post(LOG_METRIC, _metric(fresh_run["run_id"], key)).status == 200


def test_name_rules_fire_before_the_run_lookup(post) -> None:
    _assert_400(post(LOG_METRIC, _metric("invalid_run_id_123", "acc@1")),
                "Names may only contain")


def test_experiment_name_limits(post) -> None:
    _assert_400(post(f"{API}/experiments/create", {"name": ""}), MISSING.format("name"))
    _assert_400(post(f"{API}/experiments/create", {"name": "x" * (v.MAX_EXPERIMENT_NAME_LENGTH + 1)}),
                f"'name' exceeds the maximum length of {v.MAX_EXPERIMENT_NAME_LENGTH} characters")


def _batch_message(count: int, what: str, limit: int) -> str:
    return (f"A batch logging request can contain at most {limit} {what}. Got {count} {what}.")


def test_log_batch_limits_come_from_mlflow_utils_validation(post, fresh_run) -> None:
    run_id, ts = fresh_run["run_id"], runs.now_ms()
    metrics = [{"key": f"m{i}", "value": 1, "timestamp": ts}
               for i in range(v.MAX_METRICS_PER_BATCH + 1)]
    _assert_400(post(LOG_BATCH, {"run_id": run_id, "metrics": metrics}),
                _batch_message(len(metrics), "metrics", v.MAX_METRICS_PER_BATCH))
    params = [{"key": f"p{i}", "value": "1"} for i in range(v.MAX_PARAMS_TAGS_PER_BATCH + 1)]
    _assert_400(post(LOG_BATCH, {"run_id": run_id, "params": params}),
                _batch_message(len(params), "params", v.MAX_PARAMS_TAGS_PER_BATCH))
    tags = [{"key": f"t{i}", "value": "1"} for i in range(v.MAX_PARAMS_TAGS_PER_BATCH + 1)]
    _assert_400(post(LOG_BATCH, {"run_id": run_id, "tags": tags}),
                _batch_message(len(tags), "tags", v.MAX_PARAMS_TAGS_PER_BATCH))
    total = {"run_id": run_id, "metrics": metrics[:v.MAX_METRICS_PER_BATCH], "params": params[:1]}
    _assert_400(post(LOG_BATCH, total),
                _batch_message(v.MAX_METRICS_PER_BATCH + 1, "metrics, params, and tags",
                               v.MAX_ENTITIES_PER_BATCH))


def test_log_batch_limit_fires_before_the_run_lookup(post) -> None:
    ts = runs.now_ms()
    metrics = [{"key": f"m{i}", "value": 1, "timestamp": ts}
               for i in range(v.MAX_METRICS_PER_BATCH + 1)]
    _assert_400(post(LOG_BATCH, {"run_id": "invalid_run_id_123", "metrics": metrics}),
                "A batch logging request can contain at most")


def test_log_batch_split_into_chunks_is_stored(post, stored, fresh_run) -> None:
    ts, size = runs.now_ms(), v.MAX_METRICS_PER_BATCH
    points = [{"key": "loss", "value": i / 10, "timestamp": ts, "step": i}
              for i in range(size + 200)]
    for start in range(0, len(points), size):
        answer = post(LOG_BATCH, {"run_id": fresh_run["run_id"], "metrics": points[start:start + size]})
        assert answer.status == 200, answer.text
    assert len(stored(fresh_run["run_id"], "loss")) == len(points)


def test_param_overwrite_is_refused_and_same_value_is_accepted(post, fresh_run) -> None:
    run_id = fresh_run["run_id"]
    assert post(LOG_PARAM, {"run_id": run_id, "key": "lr", "value": "0.01"}).status == 200
    assert post(LOG_PARAM, {"run_id": run_id, "key": "lr", "value": "0.01"}).status == 200
    _assert_400(post(LOG_PARAM, {"run_id": run_id, "key": "lr", "value": "0.02"}),
                "Changing param values is not allowed. Param with key='lr' was already logged "
                "with value='0.01'")


def test_param_value_must_be_a_string(post, fresh_run) -> None:
    _assert_400(post(LOG_PARAM, {"run_id": fresh_run["run_id"], "key": "lr", "value": 0.01}),
                "Hint: Value was of type 'float'")


def test_runs_create_with_an_int_experiment_id_is_400(post) -> None:
    answer = post(f"{API}/runs/create", {"experiment_id": 0, "start_time": runs.now_ms()})
    _assert_400(answer, "Invalid value 0 for parameter 'experiment_id' supplied:  "
                        "Hint: Value was of type 'int'")
    fixed = post(f"{API}/runs/create", {"experiment_id": "0", "start_time": runs.now_ms()})
    assert fixed.status == 200
    assert fixed.json["run"]["info"]["experiment_id"] == "0"


# ---------------------------------------------------------------- 05: 200 but stored otherwise


def test_float_timestamp_in_seconds_is_stored_as_zero(post, stored, fresh_run) -> None:
    answer = post(LOG_METRIC, _metric(fresh_run["run_id"], "ts_float", timestamp=time.time()))
    assert answer.status == 200
    assert stored(fresh_run["run_id"], "ts_float") == [(0.5, 0, 0)]


def test_fractional_millisecond_timestamp_is_stored_as_zero(post, stored, fresh_run) -> None:
    answer = post(LOG_METRIC, _metric(fresh_run["run_id"], "ts_ms_float",
                                      timestamp=runs.now_ms() + 0.5))
    assert answer.status == 200
    assert stored(fresh_run["run_id"], "ts_ms_float") == [(0.5, 0, 0)]


def test_integer_timestamp_in_seconds_is_stored_as_seconds(post, stored, fresh_run) -> None:
    seconds = int(time.time())
    assert post(LOG_METRIC, _metric(fresh_run["run_id"], "ts_s", timestamp=seconds)).status == 200
    assert stored(fresh_run["run_id"], "ts_s") == [(0.5, seconds, 0)]


def test_fractional_step_is_stored_as_zero(post, stored, fresh_run) -> None:
    body = _metric(fresh_run["run_id"], "step_frac", step=1.5)
    assert post(LOG_METRIC, body).status == 200
    assert stored(fresh_run["run_id"], "step_frac") == [(0.5, body["timestamp"], 0)]


def test_fields_after_an_unreadable_one_are_lost(post, stored, fresh_run) -> None:
    ts = runs.now_ms()
    body = {"run_id": fresh_run["run_id"], "key": "order", "step": 1.5, "value": 0.9,
            "timestamp": ts}
    assert post(LOG_METRIC, body).status == 200
    assert stored(fresh_run["run_id"], "order") == [(0.0, 0, 0)]


def test_unknown_field_typo_is_dropped(post, stored, fresh_run) -> None:
    body = _metric(fresh_run["run_id"], "typo", stpe=5)
    assert post(LOG_METRIC, body).status == 200
    assert stored(fresh_run["run_id"], "typo") == [(0.5, body["timestamp"], 0)]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_bare_non_finite_literals_store_zero_at_time_zero(post, stored, fresh_run,
                                                          literal) -> None:
    key = f"bare_{literal.strip('-').lower()}{'_neg' if literal.startswith('-') else ''}"
    raw = (f'{{"run_id": "{fresh_run["run_id"]}", "key": "{key}", "value": {literal}, '
           f'"timestamp": {runs.now_ms()}, "step": 4}}')
    assert post(LOG_METRIC, raw=raw).status == 200
    assert stored(fresh_run["run_id"], key) == [(0.0, 0, 0)]


def test_quoted_non_finite_values_are_stored(post, stored, fresh_run) -> None:
    run_id = fresh_run["run_id"]
    for key, sent in (("q_nan", "NaN"), ("q_inf", "Infinity"), ("q_ninf", "-Infinity")):
        assert post(LOG_METRIC, _metric(run_id, key, value=sent)).status == 200
    assert stored(run_id, "q_nan")[0][0] == "NaN"
    assert stored(run_id, "q_inf")[0][0] == 1.7976931348623157e308
    assert stored(run_id, "q_ninf")[0][0] == -1.7976931348623157e308


def test_requests_json_argument_refuses_nan() -> None:
    import requests

    with pytest.raises(requests.exceptions.InvalidJSONError):
        requests.Request("POST", "http://127.0.0.1:9/", json={"value": math.nan}).prepare()
    assert json.dumps({"value": math.nan}) == '{"value": NaN}'


def test_double_encoded_body_is_accepted_and_stored(post, stored, fresh_run) -> None:
    body = _metric(fresh_run["run_id"], "double")
    assert post(LOG_METRIC, json.dumps(body)).status == 200
    assert stored(fresh_run["run_id"], "double") == [(0.5, body["timestamp"], 0)]


def test_trailing_space_makes_another_metric(post, fresh_run, server_url) -> None:
    assert post(LOG_METRIC, _metric(fresh_run["run_id"], "accuracy ")).status == 200
    keys = [m["key"] for m in runs.get_run(fresh_run["run_id"], base_url=server_url)["data"]["metrics"]]
    assert "accuracy " in keys and "accuracy" not in keys


def test_long_param_and_tag_values_are_truncated(post, fresh_run, server_url) -> None:
    run_id = fresh_run["run_id"]
    long_param = "p" * (v.MAX_PARAM_VAL_LENGTH + 1)
    long_tag = "t" * (v.MAX_TAG_VAL_LENGTH + 1)
    assert post(LOG_PARAM, {"run_id": run_id, "key": "long", "value": long_param}).status == 200
    assert post(SET_TAG, {"run_id": run_id, "key": "long", "value": long_tag}).status == 200
    data = runs.get_run(run_id, base_url=server_url)["data"]
    params = {p["key"]: p["value"] for p in data["params"]}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert params["long"] == long_param[:v.MAX_PARAM_VAL_LENGTH]
    assert tags["long"] == long_tag[:v.MAX_TAG_VAL_LENGTH]


def test_param_without_value_is_stored_empty(post, fresh_run, server_url) -> None:
    assert post(LOG_PARAM, {"run_id": fresh_run["run_id"], "key": "novalue"}).status == 200
    params = {p["key"]: p["value"]
              for p in runs.get_run(fresh_run["run_id"], base_url=server_url)["data"]["params"]}
    assert params["novalue"] == ""


def test_identical_point_twice_is_stored_once(post, stored, fresh_run) -> None:
    body = _metric(fresh_run["run_id"], "retry", step=1)
    assert post(LOG_METRIC, body).status == 200
    assert post(LOG_METRIC, body).status == 200
    assert len(stored(fresh_run["run_id"], "retry")) == 1


# ---------------------------------------------------------------- 05: 500 instead of 400


def _assert_html_500(answer: Exchange) -> None:
    assert answer.status == 500, answer.text
    assert answer.body_kind == "html"
    assert "Internal Server Error" in answer.text


@pytest.mark.parametrize("field, value", [("value", [0.95]), ("value", {"v": 0.95}),
                                          ("timestamp", [1]), ("step", [1])])
def test_list_or_object_in_a_number_field_is_500(post, fresh_run, field, value) -> None:
    body = _metric(fresh_run["run_id"], "shape")
    body[field] = value
    _assert_html_500(post(LOG_METRIC, body))


@pytest.mark.parametrize("raw", ['[{"key": "a"}]', "42", "true", '"hello"'])
def test_body_that_is_not_an_object_is_500(post, raw) -> None:
    _assert_html_500(post(LOG_METRIC, raw=raw))


def test_body_null_is_400_not_500(post) -> None:
    _assert_400(post(LOG_METRIC, raw="null"), MISSING.format("run_id"))


@pytest.mark.parametrize("raw", ['{"run_id": "x", "key": "k", "value": 1, "timestamp": 1,}',
                                 "{'run_id': 'x', 'key': 'k', 'value': 1}",
                                 '{"run_id": "x", "ke', "", "{}"])
def test_a_log_metric_body_that_is_not_json_reads_as_empty(post, raw) -> None:
    """Notebooks 02 and 13: whatever the syntax error, the answer is the one `{}` gets."""
    _assert_400(post(LOG_METRIC, raw=raw), MISSING.format("run_id"))


def test_list_in_a_string_field_is_400_not_500(post, fresh_run) -> None:
    _assert_400(post(LOG_METRIC, _metric([fresh_run["run_id"]], "k")),
                "Hint: Value was of type 'list'")


@pytest.mark.parametrize("raw", ["", "{bad", "7"])
def test_log_batch_with_a_body_that_is_not_an_object_is_500(post, raw) -> None:
    _assert_html_500(post(LOG_BATCH, raw=raw))


def test_500_is_deterministic(post, fresh_run) -> None:
    body = _metric(fresh_run["run_id"], "again", value=[0.95])
    assert [post(LOG_METRIC, body).status for _ in range(3)] == [500, 500, 500]


# ------------------------------------------------------- issue 20: claims corrected in 10-13

@pytest.mark.parametrize("sent", [True, False, " 5 ", 1.5])
def test_an_int64_field_the_parser_refuses_is_stored_as_zero_with_200(post, stored, fresh_run,
                                                                       sent) -> None:
    """10: int64 fields refuse booleans, spaced strings and fractions; _assert_intlike then passes
    them, and the field keeps its default. Preflight warns about each."""
    from helpers import preflight

    body = _metric(fresh_run["run_id"], "int64", timestamp=sent)
    assert post(LOG_METRIC, body).status == 200
    assert [t for _, t, _ in stored(fresh_run["run_id"], "int64")] == [0]
    warned = preflight("POST", LOG_METRIC, JSON, json.dumps(body)).warnings
    assert warned and any(w in warned[0].message for w in ("0 is stored", "as 0")), warned


def test_a_timestamp_true_is_not_called_seconds_by_preflight() -> None:
    from helpers import preflight

    body = json.dumps({"run_id": "0" * 32, "key": "k", "value": 1, "timestamp": True})
    found = preflight("POST", LOG_METRIC, JSON, body).warnings[0]
    assert found.id == "bool-as-number" and "boolean" in found.message
    assert "seconds" not in found.message


@pytest.mark.parametrize("key, ok", [("..acc", False), ("a..b", True), ("acc..", True)])
def test_a_name_must_not_start_with_two_dots(post, fresh_run, key, ok) -> None:
    """10: the path rule is "does not start with ..", not "no .." anywhere."""
    answer = post(LOG_METRIC, _metric(fresh_run["run_id"], key))
    assert answer.status == (200 if ok else 400), answer.text


def test_log_batch_checks_each_item_before_the_limits(post, fresh_run) -> None:
    """11: SqlAlchemyStore.log_batch runs _validate_batch_log_data before _validate_batch_log_limits."""
    ts = runs.now_ms()
    metrics = [{"key": f"m{i}", "value": 1, "timestamp": ts} for i in range(v.MAX_METRICS_PER_BATCH)]
    metrics.append({"key": "acc@1", "value": 1, "timestamp": ts})
    _assert_400(post(LOG_BATCH, {"run_id": fresh_run["run_id"], "metrics": metrics}),
                "Names may only contain")


def test_a_json_array_body_crashes_in_the_schema_walk_not_a_validator() -> None:
    """13: the crash is request_json.get in _validate_request_json_with_schema."""
    from helpers import preflight

    found = preflight("POST", LOG_METRIC, JSON, '[{"key": "a"}]').errors[0]
    assert found.id == "server-error"
    assert "_validate_request_json_with_schema" in found.check and "AttributeError" in found.message
