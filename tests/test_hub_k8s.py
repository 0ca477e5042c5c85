"""The Kubernetes room on paper, checked with what runs here (no cluster, no helm, no image build).

- classroom/z2jh-values.yaml, merged over the Zero to JupyterHub 4.4.0 chart's own default values as
  Helm merges them, validates against the chart's own values schema (both files copied unchanged
  from the chart's 4.4.0 release into classroom/z2jh-4.4.0/, with its licence); a misspelt key fails.
- Its hub.extraConfig runs as the Hub would run it (a traitlets Config `c`, the chart's `z2jh`
  helper), and its authenticator and spawn hook behave on the room's credentials file.
- classroom/k8s/mlflow.yaml: the MLflow server is a Deployment of several replicas on PostgreSQL,
  MLflow's basic-auth app, no secret written in the file.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import types
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers import classroom

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "classroom" / "z2jh-4.4.0"
VALUES = ROOT / "classroom" / "z2jh-values.yaml"


def _merge(base: dict, over: dict) -> dict:
    """Helm's merge of user values over chart values: maps merge, other values replace, null deletes."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((CHART / "values.schema.json").read_text()))


def test_values_validate_against_the_charts_own_schema() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    values = yaml.safe_load(VALUES.read_text())
    validator = _validator()
    assert [e.message for e in validator.iter_errors(defaults)] == []
    assert [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_merge(defaults, values))] == []
    typo = _merge(values, {"singleuser": {"defaultURL": "/lab"}})  # the check can fail
    assert any("defaultURL" in e.message for e in validator.iter_errors(_merge(defaults, typo)))
    single = values["singleuser"]
    assert single["defaultUrl"] == "/lab/tree/notebooks/00_start_here.ipynb"
    assert single["extraEnv"]["MLFLOW_TRACKING_URI"] == values["custom"]["mlflow400lab"]["trackingUri"]


def test_extra_config_logs_in_roster_learners_and_hands_each_their_account(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from traitlets.config import Config

    values = yaml.safe_load(VALUES.read_text())
    room = dict(values["custom"]["mlflow400lab"], credentials=str(tmp_path / "credentials.csv"))
    rows = classroom.write_credentials(tmp_path / "credentials.csv", ["ana", "ben"],
                                       admin=("admin", "a" * 20))
    monkeypatch.setitem(sys.modules, "z2jh", types.SimpleNamespace(get_config=lambda key: room))
    sent = []

    class Answer:
        status_code, text = 200, "{}"

        def raise_for_status(self) -> None:
            pass

    monkeypatch.setattr("requests.post", lambda url, **kw: sent.append((url, kw)) or Answer())
    c = Config()
    exec(values["hub"]["extraConfig"]["mlflow400lab"], {"c": c})  # as the chart's Hub runs it
    assert c.Authenticator.allowed_users == {"ana", "ben"}
    auth = c.JupyterHub.authenticator_class()
    login = asyncio.run
    assert login(auth.authenticate(None, {"username": "ana", "password": rows["ana"]})) == "ana"
    assert login(auth.authenticate(None, {"username": "ana", "password": rows["ben"]})) is None
    assert login(auth.authenticate(None, {"username": "admin", "password": "a" * 20})) is None
    spawner = types.SimpleNamespace(user=types.SimpleNamespace(name="ben"), environment={})
    c.KubeSpawner.pre_spawn_hook(spawner)
    assert spawner.environment["MLFLOW_TRACKING_USERNAME"] == "ben"
    assert spawner.environment["MLFLOW_TRACKING_PASSWORD"] == rows["ben"]
    assert sent[0][0] == f"{room['trackingUri']}/api/2.0/mlflow/users/create"
    assert sent[0][1]["json"] == {"username": "ben", "password": rows["ben"]}


def test_mlflow_is_a_replicated_deployment_on_postgresql_with_no_secret_in_the_file() -> None:
    text = (ROOT / "classroom" / "k8s" / "mlflow.yaml").read_text()
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text)}
    deployment = docs[("Deployment", "mlflow")]["spec"]
    assert deployment["replicas"] >= 2
    container = deployment["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("postgresql+psycopg2://")
    assert "basic-auth" in container["command"]
    for name in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "secretKeyRef" in env[name]["valueFrom"]
    ini = docs[("ConfigMap", "mlflow-400-lab")]["data"]["basic_auth.ini"]
    assert "postgresql" in ini and "auth_cache_ttl_seconds = 300" in ini
    assert ("StatefulSet", "postgres") in docs and ("Service", "mlflow") in docs
