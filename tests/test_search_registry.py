"""The requests users get wrong on search, registry and experiment-id endpoints: offline
preflight's answer, finding id and message against the live session server.

Each case names the finding id it must produce (other code keys on those ids); the status and
message must be the live server's. Cases whose answer depends on what the server holds must be
predicted None with a "state" finding, never guessed.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from helpers.preflight_pipeline import preflight
from tests.test_model_agreement import same_message

JSON = {"Content-Type": "application/json"}
A2, A3 = "/api/2.0/mlflow/", "/api/3.0/mlflow/"
EXP_V3 = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "abc"}}

#: (method, path, body or query, finding id the prediction must carry)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # max_results: absent on experiments/search (docs: optional), 0, over the limit
    ("POST", A2 + "experiments/search", {"filter": "name = 'x'"}, "search-max-results"),
    ("POST", A2 + "experiments/search", {"max_results": 50_001}, "search-max-results"),
    ("GET", A2 + "experiments/search", {"filter": "name = 'x'"}, "search-max-results"),
    ("POST", A2 + "runs/search", {"max_results": 0}, "search-max-results"),
    ("GET", A2 + "model-versions/search", {"max_results": 0}, "search-max-results"),
    ("POST", A3 + "datasets/search", {"max_results": 0}, "search-max-results"),
    ("POST", A2 + "runs/search", {}, "search-ok"),
    ("POST", A3 + "datasets/search", {}, "search-ok"),
    # filters: hyphens, RLIKE, IN, OR, unquoted values
    ("POST", A2 + "runs/search", {"filter": "metrics.my-metric > 1"}, "search-filter-hyphen"),
    ("POST", A2 + "runs/search", {"filter": "metrics.`my-metric` > 1"}, "search-ok"),
    ("POST", A2 + "runs/search", {"filter": "params.learning-rate = '0.1'"},
     "search-filter-hyphen"),
    ("POST", A2 + "runs/search", {"filter": "attributes.run_name RLIKE 'a.*'"},
     "search-filter"),
    ("POST", A2 + "runs/search", {"filter": "attributes.run_name LIKE 'a%'"}, "search-ok"),
    ("POST", A2 + "runs/search", {"filter": "attributes.run_id IN ('a', 'b')"}, "search-ok"),
    ("POST", A2 + "runs/search", {"filter": "params.lr IN ('a', 'b')"}, "search-filter"),
    ("POST", A2 + "runs/search", {"filter": "attributes.run_id IN (a, b)"}, "search-filter"),
    ("POST", A2 + "runs/search", {"filter": "params.a = '1' OR params.b = '2'"},
     "search-filter"),
    ("POST", A2 + "runs/search", {"filter": "params.lr = 0.1"}, "search-filter"),
    ("GET", A2 + "registered-models/search", {"filter": "name RLIKE 'x'"}, "search-filter"),
    ("POST", A2 + "experiments/search", {"filter": "tags.my-tag = 'x'", "max_results": 10},
     "search-filter-hyphen"),
    # order_by and page tokens
    ("POST", A2 + "runs/search", {"order_by": ["metrics.acc SIDEWAYS"]}, "search-order-by"),
    ("POST", A2 + "runs/search", {"order_by": ["start_time", "start_time"]},
     "search-order-by"),
    ("GET", A2 + "registered-models/search", {"order_by": "bogus"}, "search-order-by"),
    ("POST", A2 + "logged-models/search",
     {"experiment_ids": ["0"], "order_by": [{"field_name": "bogus"}]}, "search-order-by"),
    ("POST", A2 + "runs/search", {"page_token": "garbage"}, "search-page-token"),
    ("POST", A2 + "runs/search", {"page_token": "WzFd"}, "search-page-token"),  # [1]: 500
    ("GET", A2 + "model-versions/search", {"page_token": "e30="}, "search-page-token"),
    # experiment ids that are not integers: body and query string
    ("POST", A2 + "runs/search", {"experiment_ids": ["abc"]}, "bad-experiment-id"),
    ("GET", A2 + "experiments/get", {"experiment_id": "abc"}, "bad-experiment-id"),
    ("GET", A2 + "traces", {"experiment_ids": "abc"}, "bad-experiment-id"),  # 500
    ("POST", A3 + "traces/search", {"locations": [EXP_V3]}, "bad-experiment-id"),
    ("POST", A2 + "experiments/update", {"experiment_id": "abc", "new_name": "n"},
     "bad-experiment-id"),
    ("POST", A2 + "logged-models/search", {"experiment_ids": ["abc"]}, "bad-experiment-id"),
    ("POST", A2 + "traces", {}, "bad-experiment-id"),  # start trace: int('') crashes, 500
    ("POST", A2 + "logged-models", {"experiment_id": "abc"}, "bad-experiment-id"),
    # registered model names, aliases, versions
    ("POST", A2 + "registered-models/create", {"name": "team/model"}, "invalid-name"),
    ("POST", A2 + "registered-models/create", {"name": "  "}, "missing-field"),
    ("POST", A2 + "registered-models/rename", {"name": "a", "new_name": "b:c"}, "invalid-name"),
    ("POST", A2 + "registered-models/alias", {"name": "m", "alias": "latest", "version": "1"},
     "invalid-alias"),
    ("POST", A2 + "registered-models/alias", {"name": "m", "alias": "v3", "version": "1"},
     "invalid-alias"),
    ("POST", A2 + "registered-models/alias", {"name": "m", "alias": "champ", "version": "one"},
     "bad-version"),
    ("GET", A2 + "model-versions/get", {"name": "m", "version": "latest"}, "bad-version"),
    ("POST", A2 + "model-versions/set-tag", {"name": "m", "version": "1", "key": "a/../b",
                                             "value": "v"}, "invalid-name"),
    ("POST", A2 + "registered-models/set-tag", {"name": "m", "key": "k" * 251, "value": "v"},
     "too-long"),
    # model version sources
    ("POST", A2 + "model-versions/create", {"name": "m", "source": "/tmp/model"},
     "invalid-source"),
    ("POST", A2 + "model-versions/create", {"name": "m", "source": "runs:/abc/model"},
     "invalid-source"),
    ("POST", A2 + "model-versions/create", {"name": "m", "source": "models:/m-123"},
     "invalid-source"),
    ("POST", A2 + "model-versions/create", {"name": "m", "source": "s3://b/x/../../etc"},
     "invalid-source"),
    ("POST", A2 + "model-versions/create", {"name": "a/b", "source": "s3://b/model"},
     "invalid-name"),
]

#: Valid as sent; what the server holds decides: offline None, with a "state" finding.
STATE_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", A2 + "experiments/get", {"experiment_id": "987654321"}),
    ("POST", A2 + "registered-models/create", {"name": "state-" + uuid.uuid4().hex[:8]}),
    ("POST", A2 + "model-versions/create",
     {"name": "no-such-model", "source": "runs:/0123abcd/model", "run_id": "0123abcd"}),
    ("GET", A2 + "registered-models/get", {"name": "no-such-model"}),
    ("POST", A2 + "registered-models/alias", {"name": "no-such", "alias": "champ",
                                              "version": "1"}),
]


def _send(session: requests.Session, server_url: str, method: str, path: str,
          fields: dict[str, Any]) -> tuple[Any, requests.Response]:
    if method == "GET":
        url = server_url + path + "?" + urlencode(fields, doseq=True)
        return preflight("GET", url), session.get(url, timeout=30)
    body = json.dumps(fields)
    return (preflight(method, server_url + path, JSON, body),
            session.request(method, server_url + path, data=body, headers=JSON, timeout=30))


@pytest.fixture(scope="module")
def session() -> requests.Session:
    return requests.Session()


@pytest.mark.parametrize(("method", "path", "fields", "finding"), CASES,
                         ids=[f"{c[3]}:{c[1].rsplit('/api/', 1)[-1]}:{i}"
                              for i, c in enumerate(CASES)])
def test_prediction_is_the_live_answer(server_url: str, session: requests.Session, method: str,
                                       path: str, fields: dict[str, Any], finding: str) -> None:
    verdict, live = _send(session, server_url, method, path, fields)
    assert live.status_code == verdict.predicted_status, (verdict, live.text[:300])
    assert finding in [f.id for f in verdict.findings], verdict
    said = live.json().get("message") if live.status_code < 500 or live.text.startswith("{") \
        else None
    assert same_message(verdict.expected_message, said), (verdict.expected_message, said)
    if finding == "search-filter-hyphen":
        key = fields["filter"].split(" ")[0]
        error = verdict.errors[0]
        assert key in error.message and "`" in error.fix, error
        quoted = {**fields, "filter": fields["filter"].replace(
            key, key.split(".")[0] + ".`" + key.split(".", 1)[1] + "`")}
        fixed, again = _send(session, server_url, method, path, quoted)
        assert fixed.predicted_status == again.status_code == 200, again.text[:300]


@pytest.mark.parametrize(("method", "path", "fields"), STATE_CASES)
def test_what_state_decides_is_not_guessed(server_url: str, session: requests.Session,
                                           method: str, path: str, fields: dict[str, Any]) -> None:
    verdict, live = _send(session, server_url, method, path, fields)
    assert verdict.predicted_status is None and "state" in [f.id for f in verdict.findings], \
        verdict
    assert verdict.valid, verdict
    assert live.status_code in (200, 400, 404), live.text[:300]  # decided by the server's rows


def test_a_query_string_number_is_not_called_a_coerced_string(server_url: str) -> None:
    """Query strings only carry text: a GET's max_results=5 is how every client sends it."""
    url = server_url + "/api/2.0/mlflow/experiments/search?max_results=5"
    verdict = preflight("GET", url)
    live = requests.get(url, timeout=30)
    assert (verdict.predicted_status, live.status_code) == (200, 200)
    assert "coerced-string" not in [f.id for f in verdict.findings]


#: Searches whose max_results finding names a bound and the client's default (extra fields they need).
BOUNDED = [("POST", A2 + "experiments/search", {}), ("POST", A2 + "runs/search", {}),
           ("GET", A2 + "model-versions/search", {}),
           ("POST", A3 + "datasets/search", {}),
           ("POST", A3 + "traces/search", {"locations": [{**EXP_V3, "mlflow_experiment": {
               "experiment_id": "0"}}]})]


@pytest.mark.parametrize(("method", "path", "extra"), BOUNDED, ids=[c[1] for c in BOUNDED])
def test_the_max_results_fix_names_the_live_bound(server_url: str, session: requests.Session,
                                                  method: str, path: str, extra: dict) -> None:
    """"From 1 to N (the client sends D)": N and D are accepted live, N + 1 is refused."""
    verdict, _ = _send(session, server_url, method, path, {**extra, "max_results": 0})
    fix = next(f.fix for f in verdict.findings if f.id == "search-max-results")
    bound, default = (int(n) for n in re.search(r"from 1 to (\d+) .*sends (\d+)\)", fix).groups())
    for value, status in ((bound, 200), (default, 200), (bound + 1, 400)):
        _, live = _send(session, server_url, method, path, {**extra, "max_results": value})
        assert live.status_code == status, (path, value, live.text[:200])
