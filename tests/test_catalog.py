"""Offline tests of helpers.catalog and helpers.server_model: routes, fields and schemas read
from the installed MLflow (protos, and handlers.py with `ast`)."""

from __future__ import annotations

import pytest

from helpers import catalog, server_model
from helpers.catalog import endpoint, endpoints
from helpers.errors import KitError, UnknownEndpoint
from helpers.model_table import STORE
from helpers.source import mlflow_file

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"


def test_log_metric_paths_methods_and_message() -> None:
    ep = endpoint("log-metric")
    assert ep.name == "logMetric"
    assert ep.paths == (LOG_METRIC, "/ajax-api/2.0/mlflow/runs/log-metric")
    assert ep.http_methods == ("POST",)
    assert ep.request == "mlflow.LogMetric"


def test_log_metric_required_fields_in_the_order_the_server_checks_them() -> None:
    assert endpoint("log-metric").required == ("run_id", "key", "value", "timestamp")


def test_log_metric_field_types_and_json_names() -> None:
    ep = endpoint("log-metric")
    by_name = {f.name: f for f in ep.fields}
    assert [f.name for f in ep.fields][:6] == ["run_id", "run_uuid", "key", "value",
                                               "timestamp", "step"]
    assert by_name["run_id"].json_name == "runId"
    assert by_name["value"].type == "double"
    assert by_name["timestamp"].type == "int64"
    assert (by_name["step"].enforced, by_name["step"].documented) == (False, False)
    assert by_name["timestamp"].timestamp and not by_name["step"].timestamp
    assert by_name["timestamp"].handler_checks == ("intlike", "required")


def test_run_id_is_required_by_the_handler_not_by_the_proto() -> None:
    # The proto leaves run_id optional (run_uuid is the old spelling); the handler requires it.
    run_id = endpoint("log-metric").field("run_id")
    assert (run_id.enforced, run_id.documented) == (True, False)


def test_log_param_value_is_documented_required_but_not_enforced() -> None:
    # Verified live: log-parameter without "value" answers 200 and stores "".
    value = endpoint("log-param").field("value")
    assert (value.enforced, value.documented) == (False, True)
    assert "value" not in endpoint("log-param").required


def test_log_param_is_served_at_log_parameter() -> None:
    assert endpoint("logParam").path == "/api/2.0/mlflow/runs/log-parameter"
    with pytest.raises(UnknownEndpoint, match="log-parameter"):
        endpoint("/api/2.0/mlflow/runs/log-param")


def test_the_same_endpoint_from_every_spelling() -> None:
    spellings = ["log-metric", "logMetric", "runs/log-metric", LOG_METRIC,
                 "/ajax-api/2.0/mlflow/runs/log-metric",
                 "http://127.0.0.1:5000/api/2.0/mlflow/runs/log-metric"]
    assert {endpoint(s).name for s in spellings} == {"logMetric"}


def test_unknown_endpoint_raises_a_clear_error_with_a_suggestion() -> None:
    with pytest.raises(UnknownEndpoint) as info:
        endpoint("log-metrics")
    assert "No MLflow REST endpoint matches 'log-metrics'" in str(info.value)
    assert "logMetric" in str(info.value)
    assert isinstance(info.value, LookupError) and isinstance(info.value, KitError)


def test_an_ambiguous_name_lists_the_candidates() -> None:
    with pytest.raises(UnknownEndpoint, match="ambiguous.*createExperiment"):
        endpoint("create")


def test_runs_create_and_experiments_create_are_told_apart_by_path() -> None:
    assert endpoint("runs/create").name == "createRun"
    assert endpoint("experiments/create").name == "createExperiment"


def test_the_http_method_picks_between_rpcs_sharing_a_path() -> None:
    assert endpoint("/api/2.0/mlflow/traces", "GET").name == "searchTraces"
    assert endpoint("/api/2.0/mlflow/traces", "POST").name == "startTrace"
    assert endpoint("/api/3.0/mlflow/traces", "POST").name == "startTraceV3"


def test_path_parameters_match_one_segment() -> None:
    names = {e.name for e in catalog.match_path("/api/2.0/mlflow/traces/tr-1/tags")}
    assert names == {"setTraceTag", "deleteTraceTag"}
    assert catalog.match_path("/api/2.0/mlflow/traces/a/b/tags") == []


def test_log_batch_nested_fields_carry_the_handlers_requirements() -> None:
    metrics = endpoint("log-batch").field("metrics")
    assert metrics.repeated and metrics.message == "mlflow.Metric"
    nested = {f.name: f.enforced for f in metrics.fields}
    assert nested["key"] == nested["value"] == nested["timestamp"] is True
    assert nested["step"] is False
    assert [f.name for f in metrics.fields if f.timestamp] == ["timestamp"]
    params = {f.name: f.enforced for f in endpoint("log-batch").field("params").fields}
    assert params == {"key": True, "value": False}


def test_log_batch_checks_run_id_type_before_presence() -> None:
    assert endpoint("log-batch").field("run_id").handler_checks == ("string", "required")


def test_create_run_fields() -> None:
    ep = endpoint("runs/create")
    assert ep.required == ()
    assert ep.field("startTime").name == "start_time"
    tags = ep.field("tags")
    assert (tags.repeated, tags.type, tags.message) == (True, "message", "mlflow.RunTag")


def test_update_run_status_is_an_enum_with_its_names() -> None:
    status = endpoint("runs/update").field("status")
    assert status.type == "enum"
    assert status.enum_values == ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def test_experiments_create_requires_name_only() -> None:
    assert endpoint("experiments/create").required == ("name",)


def test_endpoints_cover_the_other_services_too() -> None:
    eps = endpoints()
    services = {e.service for e in eps}
    assert {"MlflowService", "ModelRegistryService", "WebhookService"} <= services
    assert endpoint("registered-models/create").path == "/api/2.0/mlflow/registered-models/create"


def test_every_store_rule_names_a_real_rpc_with_a_schema() -> None:
    rpcs = {e.name: e for e in endpoints() if e.service == "MlflowService"}
    for name in STORE:
        assert name in rpcs and rpcs[name].schema is not None, name
    for name in ("log-metric", "log-param", "set-tag", "log-batch", "runs/create",
                 "runs/update", "experiments/create"):
        assert endpoint(name).store is not None, name


def test_batch_limits_come_from_mlflow() -> None:
    limits = dict(endpoint("logBatch").store.limits)
    # The live server says "at most 1000 metrics" and "at most 100 params".
    assert limits["metrics"] == 1000
    assert limits["params"] == 100


def test_request_class_parses_json_like_the_server() -> None:
    from google.protobuf import json_format

    msg = json_format.ParseDict({"runId": "r", "value": "0.5"}, endpoint("log-metric")
                                .request_class())
    assert (msg.run_id, msg.value) == ("r", 0.5)


def test_the_model_is_built_once() -> None:
    assert server_model.endpoints() is server_model.endpoints()


def test_every_schema_dict_of_handlers_py_is_in_the_model() -> None:
    import ast

    tree = ast.parse(mlflow_file("server/handlers.py").read_text())
    dicts = [k for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "schema"
             and isinstance(k.value, ast.Dict)]
    assert len(server_model.handlers()) == len(dicts) >= 150
    used = {e.handler for e in endpoints() if e.schema is not None}
    assert used == set(server_model.handlers())
    compiled = [c for e in endpoints() for _, checks in e.schema or () for c in checks]
    assert compiled and all(c.fn is not None for c in compiled)


def test_routes_outside_the_protos_come_from_get_endpoints() -> None:
    # The route the old hand-written table missed (it predicted 404 for it).
    ep = endpoint("/api/3.0/mlflow/scorers/online-config", "PUT")
    assert ep.handler == "_upsert_online_scoring_config"
    assert ep.required == ("experiment_id", "name", "sample_rate")


def test_limits_are_mlflows_own() -> None:
    from mlflow.utils.search_utils import SearchUtils  # noqa: F401 - where the bound lives

    assert dict(endpoint("runs/search").field("max_results").limits) == {"max": 50000}
    bulk = endpoint("/api/2.0/mlflow/metrics/get-history-bulk-interval")
    assert dict(bulk.field("run_ids").limits) == {"max_items": 100}
    assert dict(endpoint("log-metric").field("key").limits) == {"max_length": 250}


def test_the_validators_are_mlflows_own_and_keep_their_order() -> None:
    checks = endpoint("log-batch").schema[0][1]
    assert [c.name for c in checks] == ["string", "required"]
    assert [c.type_check for c in checks] == [True, False]

