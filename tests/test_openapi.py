"""The OpenAPI document: up to date, valid OpenAPI 3.1, complete, and right about the live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import requests

from helpers import openapi

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(openapi.default_output().read_text(encoding="utf-8"))


def test_command_writes_the_committed_document(tmp_path: Path) -> None:
    """The generator, through its command, writes today exactly what is committed."""
    target = tmp_path / "spec.json"
    # Issue 22: written to a temporary file and renamed, so a file sharing the target's inode
    # (a hard link: what a direct rewrite would change) keeps its bytes.
    shared = tmp_path / "shared.json"
    shared.write_text("keep")
    os.link(shared, target)
    done = subprocess.run([sys.executable, "-m", "helpers", "openapi", "--output", str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Wrote {target}."
    assert target.read_bytes() == openapi.default_output().read_bytes(), (
        "openapi/ is stale for the installed MLflow: run `python -m helpers openapi`.")
    assert shared.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.json", "spec.json"]


def test_a_link_or_a_folder_as_output_is_refused_before_generating(tmp_path: Path) -> None:
    """Issue 22: a symbolic link is not followed (its target keeps its bytes), a folder is
    refused by the check that runs before the seconds of generating (its own sentence)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "spec.json"
    link.symlink_to(victim)
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, said in ((link, f"it is a symbolic link (to {victim})"), (folder, "it is a folder")):
        done = subprocess.run([sys.executable, "-m", "helpers", "openapi", "--output", str(target)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert victim.read_text() == "precious" and link.is_symlink()


def test_unwritable_output_gets_one_plain_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run([sys.executable, "-m", "helpers", "openapi", "--output",
                           str(blocker / "spec.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 1
    assert done.stderr.startswith("error: Cannot write ") and "Traceback" not in done.stderr
    assert f"({blocker} is a file, not a folder)" in done.stderr and done.stdout == ""


def test_document_is_valid_openapi_3_1(document: dict) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    validate(document, cls=OpenAPIV31SpecValidator)  # raises on the first error
    assert document["openapi"] == "3.1.0"


_ROUTE_TABLE = """
import json
from mlflow.server.fastapi_app import app
from mlflow.server.handlers import get_endpoints

flask = sorted({(p, m) for p, _, ms in get_endpoints() for m in ms
                if p.startswith(("/api/2.0", "/api/3.0"))})
native = []
def walk(routes, prefix=""):
    for r in routes:
        inner = getattr(getattr(r, "original_router", None), "routes", None)
        if inner is not None:
            walk(inner, prefix + (getattr(getattr(r, "include_context", None), "prefix", "") or ""))
        elif getattr(r, "methods", None) and (prefix + r.path).startswith(("/api/2.0", "/api/3.0")):
            native.extend((prefix + r.path, m) for m in r.methods)
walk(app.routes)
print(json.dumps({"flask": flask, "native": sorted(set(native))}))
"""


def _plain(path: str) -> str:
    """One spelling for Flask (<x>, <path:x>), FastAPI ({x:path}) and OpenAPI ({x}) routes."""
    import re

    return re.sub(r"<(?:\w+:)?(\w+)>|{(\w+)(?::\w+)?}", lambda m: "{" + (m[1] or m[2]) + "}", path)


def test_covers_the_servers_api_route_table(document: dict, capsys) -> None:
    """Against MLflow's own route tables (Flask's get_endpoints() and the FastAPI app's native
    routes), read in a subprocess: it imports mlflow.server."""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _ROUTE_TABLE],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr[-2000:]
    tables = json.loads(done.stdout)
    flask = {(_plain(p), m) for p, m in tables["flask"]}
    served = flask | {(_plain(p), m) for p, m in tables["native"] if m not in ("HEAD", "OPTIONS")}
    # (searchDatasets really is served at /api/2.0mlflow/..., without the slash: handlers.py
    # joins the prefix and a proto path that lacks its leading slash.)
    documented = {(_plain(p), m.upper()) for p, item in document["paths"].items() for m in item
                  if m in ("get", "post", "put", "patch", "delete")}
    with capsys.disabled():
        print(f"\n/api/2.0 and /api/3.0 routes+methods: Flask route table {len(flask)}, documented "
              f"{len(flask & documented)} ({len(flask & documented) / len(flask):.1%}); with the "
              f"FastAPI-native ones {len(served)}, documented {len(served & documented)} "
              f"({len(served & documented) / len(served):.1%}); operations in the document "
              f"{openapi.operation_count(document)}")
    assert len(flask & documented) / len(flask) >= 0.95, sorted(flask - documented)
    assert len(served & documented) / len(served) >= 0.95, sorted(served - documented)
    assert documented <= served, sorted(documented - served)


def test_error_body_schema_lists_every_mlflow_error_code(document: dict) -> None:
    from mlflow.protos import databricks_pb2

    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error_code", "message"]
    assert set(error["properties"]["error_code"]["enum"]) == set(databricks_pb2.ErrorCode.keys())
    responses = document["paths"]["/api/2.0/mlflow/runs/log-metric"]["post"]["responses"]
    assert {"200", "400", "403", "404", "405", "500"} <= set(responses)


def test_get_routes_have_query_parameters_and_bodies_say_content_type(document: dict) -> None:
    search = document["paths"]["/api/2.0/mlflow/experiments/search"]
    names = {p["name"]: p for p in search["get"]["parameters"]}
    assert names["view_type"]["schema"]["enum"] == ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]
    assert names["order_by"]["explode"] is True
    body = search["post"]["requestBody"]
    assert body["required"] is True and list(body["content"]) == ["application/json"]
    assert "Content-Type: application/json" in body["description"]
    assert "silently dropped" in body["description"]


# ---- the document's verdicts against the live server's, on hand-built bodies -----------------


def _body_schema(document: dict, path: str) -> dict:
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


CASES = [
    # (path, body builder, should the document accept it)
    ("/api/2.0/mlflow/runs/log-metric",
     lambda r: {"run_id": r, "key": "m", "value": 0.5, "timestamp": 1700000000000}, True),
    ("/api/2.0/mlflow/runs/log-metric",  # numbers as strings: protobuf's JSON parser takes them
     lambda r: {"run_id": r, "key": "m", "value": "0.5", "timestamp": "1700000000000",
                "step": "3"}, True),
    ("/api/2.0/mlflow/runs/log-metric",
     lambda r: {"run_id": r, "key": "m", "value": 0.5}, False),  # timestamp is required
    ("/api/2.0/mlflow/runs/log-metric",
     lambda r: {"run_id": r, "key": "m", "value": "abc", "timestamp": 1}, False),
    ("/api/2.0/mlflow/runs/log-metric",
     lambda r: {"run_id": r, "key": "m", "value": 1, "timestamp": "1.5"}, False),
    ("/api/2.0/mlflow/runs/log-metric",
     lambda r: {"run_id": r, "key": "k" * 251, "value": 1, "timestamp": 1}, False),  # key > 250
    ("/api/2.0/mlflow/runs/log-metric",  # an unknown field: allowed, and dropped
     lambda r: {"run_id": r, "key": "m", "value": 1, "timestamp": 1, "unit": "s"}, True),
    ("/api/2.0/mlflow/runs/log-parameter",
     lambda r: {"run_id": r, "key": "lr"}, True),  # value is optional in the schema dict
    ("/api/2.0/mlflow/runs/log-parameter",
     lambda r: {"run_id": r, "key": "", "value": "1"}, False),  # "" counts as missing
    ("/api/2.0/mlflow/runs/log-batch",
     lambda r: {"run_id": r, "metrics": [{"key": "m", "value": 1}]}, False),
    ("/api/2.0/mlflow/runs/log-batch",
     lambda r: {"run_id": r, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
     False),
    ("/api/2.0/mlflow/runs/create", lambda r: {"experiment_id": 0}, False),
    ("/api/2.0/mlflow/runs/search", lambda r: {"max_results": 50001}, False),  # a schema= limit
    ("/api/2.0/mlflow/runs/search", lambda r: {"max_results": 5}, True),
]


@pytest.mark.parametrize("path,build,valid", CASES,
                         ids=[f"{p.rsplit('/', 1)[-1]}-{i}" for i, (p, _, _) in enumerate(CASES)])
def test_document_verdict_matches_the_live_server(document, server_url, fresh_run, path, build,
                                                  valid) -> None:
    body = build(fresh_run["run_id"])
    errors = list(jsonschema.Draft202012Validator(_body_schema(document, path)).iter_errors(body))
    assert (not errors) == valid, [e.message for e in errors]
    answer = requests.post(server_url + path, json=body, timeout=30)
    if valid:
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# ---- aliases and leniencies the document states, against the live server ----------------------


def test_run_uuid_is_accepted_exactly_where_the_document_says(document, server_url,
                                                              fresh_run) -> None:
    """Where the handler reads `run_id or run_uuid` (derived from handlers.py), the document
    takes `run_uuid` alone, and so does the server; where it does not (log-batch), both refuse."""
    run = fresh_run["run_id"]
    aliased = {path for path, item in document["paths"].items() for op in item.values()
               if "`run_uuid` (deprecated) is accepted" in op.get("description", "")}
    assert aliased == {"/api/2.0/mlflow/runs/update", "/api/2.0/mlflow/runs/log-metric",
                       "/api/2.0/mlflow/runs/log-parameter", "/api/2.0/mlflow/runs/set-tag",
                       "/api/2.0/mlflow/runs/get", "/api/2.0/mlflow/artifacts/list",
                       "/api/2.0/mlflow/metrics/get-history"}
    bodies = {"/api/2.0/mlflow/runs/update": {"run_uuid": run, "run_name": "renamed"},
              "/api/2.0/mlflow/runs/log-metric": {"run_uuid": run, "key": "m", "value": 1,
                                                  "timestamp": 1},
              "/api/2.0/mlflow/runs/log-parameter": {"run_uuid": run, "key": "p", "value": "1"},
              "/api/2.0/mlflow/runs/set-tag": {"run_uuid": run, "key": "t", "value": "1"}}
    for path, body in bodies.items():
        assert openapi.check_body(document, "POST", path, body) == [], path
        answer = requests.post(server_url + path, json=body, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        empty = {**body, "run_uuid": ""}  # the fallback gets run_id's checks: not empty
        assert openapi.check_body(document, "POST", path, empty), path
        assert requests.post(server_url + path, json=empty, timeout=30).status_code == 400, path
    for path in aliased - set(bodies):  # GET: the document keeps run_id required, and says so
        (param,) = [p for p in document["paths"][path]["get"]["parameters"]
                    if p["name"] == "run_id"]
        assert param["required"] and "`run_uuid` (deprecated) in its place" in param["description"]
        answer = requests.get(server_url + path, params={"run_uuid": run, "metric_key": "m"},
                              timeout=30)
        assert answer.status_code == 200, (path, answer.text)
    batch = {"run_uuid": run, "params": [{"key": "b", "value": "1"}]}  # no fallback there
    assert openapi.check_body(document, "POST", "/api/2.0/mlflow/runs/log-batch", batch)
    answer = requests.post(server_url + "/api/2.0/mlflow/runs/log-batch", json=batch, timeout=30)
    assert answer.status_code == 400 and "run_id" in answer.json()["message"]


def test_a_double_encoded_body_is_taken_as_the_document_says(document, server_url,
                                                            fresh_run) -> None:
    assert openapi.DOUBLE_ENCODED_NOTE in document["info"]["description"]
    body = {"run_id": fresh_run["run_id"], "key": "twice", "value": "encoded"}
    answer = requests.post(server_url + "/api/2.0/mlflow/runs/log-parameter",
                           json=json.dumps(body), timeout=30)  # a JSON string holding the object
    assert answer.status_code == 200, answer.text
    run = requests.get(server_url + "/api/2.0/mlflow/runs/get",
                       params={"run_id": fresh_run["run_id"]}, timeout=30).json()["run"]
    assert {"key": "twice", "value": "encoded"} in run["data"]["params"]
