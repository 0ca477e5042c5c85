"""Generated agreement test: the server model (through preflight) against the live server, on
every endpoint of /api/2.0 and /api/3.0 that has a schema in handlers.py: body-carrying ones
with a JSON body, GET ones with the same fields as a query string.

Per endpoint the cases are built from the model itself: a valid request where it can, then each
required field missing, each type-checked field sent with a wrong JSON type, and each limit the
model knows (the handler's validators, the store table) exceeded by one. Expected answers are
not written anywhere: the live server is the ground truth. A case is *covered* when offline
preflight predicts a status (no server state involved); it must then agree with the live status,
always. Message agreement is reported separately. Valid requests of the RPCs whose store is
modelled are then predicted in state-aware mode and held to the live status too.

Every search endpoint (a `filter` and an `order_by` field) also gets the filters, order_by
items, page tokens and max_results users get wrong; every field holding experiment ids gets a
non-integer one. Coverage has a floor, overall and per search endpoint: the test cannot pass
by predicting nothing.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from helpers import server_model
from helpers.preflight_pipeline import preflight
from helpers.server_model import Endpoint, Field
from tests.conftest import FIGURES

JSON = {"Content-Type": "application/json"}
TS = 1700000000000
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
WRONG = {"string": 12345, "intlike": "abc", "floatlike": "abc", "array": "abc", "bool": "abc",
         "item_type_string": [1], "dict": "abc"}
#: What users send to search endpoints, tried on each (the live server says what each gets).
FILTERS = ("metrics.my-metric > 1", "metrics.`my-metric` > 1", "name RLIKE 'a.*'",
           "name LIKE 'a%'", "name = 'a' OR name = 'b'", "name IN ('a', 'b')", "name IN (a, b)",
           "attributes.run_id IN ('a', 'b')", "params.lr = 0.1", "tags.team = 'x'",
           "name = 'a';", "trace.status = 'OK'", "name = \"a\"", "run_id = 'x'")
ORDER_BY = (["name DESC"], ["bogus DESC"], ["name SIDEWAYS"], ["name", "name"],
            ["metrics.`m-1` DESC"], ["creation_time"], ["attributes.start_time ASC"])
PAGE_TOKENS = ("garbage", "WzFd", "e30=", "eyJvZmZzZXQiOiAxfQ==")  # junk, [1], {}, offset 1
MAX_RESULTS = (0, -1, 1, 100_000, 1_000_000)
#: Expected figures (measured on MLflow 3.17.2, less a small margin): the floor of coverage.
MIN_COVERED, MIN_COVERED_PER_SEARCH = 880, 25


@dataclass
class Case:
    endpoint: Endpoint
    method: str
    path: str
    kind: str  # valid | missing:<f> | type:<f> | limit:<f>
    body: dict[str, Any]


def _api_path(ep: Endpoint) -> str | None:
    path = next((p for p in ep.paths if p.startswith(("/api/2.0/", "/api/3.0/"))), None)
    if path is None:
        return None
    import re

    return re.sub(r"<(?:\w+:)?\w+>", "x1", path)


def _value(f: Field | None, name: str, ids: dict[str, str]) -> Any:
    checks = f.handler_checks if f is not None else ()
    if name in ("run_id", "run_uuid"):
        return ids["run_id"]
    if name == "experiment_id":
        return ids["experiment_id"]
    if name == "experiment_ids":
        return [ids["experiment_id"]]
    if name == "name":
        return "gen-" + uuid.uuid4().hex[:12]
    if f is None:
        return "v"
    if f.repeated or "array" in checks:
        if f.fields:
            return [_item(f, ids)]
        return ["v"] if f.type in ("string", "") else []
    if f.message:
        return {}
    if f.enum_values:
        return next((v for v in f.enum_values if "UNSPECIFIED" not in v), f.enum_values[0])
    return {"string": "v" + uuid.uuid4().hex[:6], "int64": 1, "int32": 1, "uint64": 1,
            "double": 0.5, "float": 0.5, "bool": True}.get(
        f.type, 1 if "intlike" in checks else ("v" if "string" in checks else "v"))


def _item(f: Field, ids: dict[str, str], i: int = 0) -> dict[str, Any]:
    item = {g.name: _value(g, g.name, ids) for g in f.fields if g.enforced or g.documented}
    if "key" in item:
        item["key"] = f"k{i}"
    if "timestamp" in item:
        item["timestamp"] = TS
    return item


def is_search(ep: Endpoint) -> bool:
    names = {f.name for f in ep.fields}
    return bool(names & {"filter", "filter_string"}) and "order_by" in names


def cases(ids: dict[str, str]) -> Iterator[Case]:
    for ep in server_model.endpoints():
        body = next((m for m in ep.http_methods if m in BODY_METHODS), None)
        for method in (body, "GET" if "GET" in ep.http_methods else None):
            if method is not None:
                yield from _endpoint_cases(ep, method, ids)


def _endpoint_cases(ep: Endpoint, method: str, ids: dict[str, str]) -> Iterator[Case]:
    for case in _schema_cases(ep, method, ids):
        if method != "GET" or _query(case.body) is not None:
            yield case


def _schema_cases(ep: Endpoint, method: str, ids: dict[str, str]) -> Iterator[Case]:
    path = _api_path(ep)
    if ep.schema is None or path is None:
        return
    fields = {f.name: f for f in ep.fields}
    required = [k for k, cs in ep.schema if any(c.name == "required" for c in cs)]
    base = {k: _value(fields.get(k), k, ids) for k in required}
    yield Case(ep, method, path, "valid", base)
    for k in required:
        yield Case(ep, method, path, f"missing:{k}", {x: v for x, v in base.items() if x != k})
    for k, checks in ep.schema:
        wrong = next((WRONG[c.name] for c in checks if c.type_check and c.name in WRONG), None)
        if wrong is not None:
            yield Case(ep, method, path, f"type:{k}", {**base, k: wrong})
    checked = {k for k, cs in ep.schema if any(c.type_check for c in cs)}
    for f in ep.fields:  # fields without a type check: protobuf alone decides
        if f.name not in checked and f.type:
            wrong_proto = "abc" if f.repeated or f.message or f.type != "string" else 12345
            yield Case(ep, method, path, f"type:{f.name}", {**base, f.name: wrong_proto})
    for f in ep.fields:
        for limit, n in f.limits:
            value: Any
            if limit == "max":
                value = n + 1
            elif limit == "min":
                value = n - 1
            elif limit == "max_items":
                value = ([_item(f, ids, i) for i in range(n + 1)] if f.fields
                         else [ids["run_id"]] * (n + 1))
            else:  # max_length of a string
                value = "k" * (n + 1)
            yield Case(ep, method, path, f"limit:{f.name}:{limit}", {**base, f.name: value})
    for f in ep.fields:  # non-integer experiment ids
        if f.name in ("experiment_id", "experiment_ids"):
            value = ["abc"] if f.repeated else "abc"
            yield Case(ep, method, path, f"expid:{f.name}", {**base, f.name: value})
    if is_search(ep):
        yield from _search_cases(ep, method, path, base)


def _search_cases(ep: Endpoint, method: str, path: str, base: dict[str, Any]) -> Iterator[Case]:
    fields = {f.name: f for f in ep.fields}
    key = "filter" if "filter" in fields else "filter_string"
    for i, text in enumerate(FILTERS):
        yield Case(ep, method, path, f"search:filter:{i}", {**base, key: text})
    if fields["order_by"].message:  # searchLoggedModels: order_by items are objects
        for name in ("bogus", "metrics.m", "params.p", "creation_timestamp"):
            yield Case(ep, method, path, f"search:order_by:{name}",
                       {**base, "order_by": [{"field_name": name}]})
    else:
        for i, items in enumerate(ORDER_BY):
            yield Case(ep, method, path, f"search:order_by:{i}", {**base, "order_by": items})
    for token in PAGE_TOKENS:
        yield Case(ep, method, path, f"search:page_token:{token}", {**base, "page_token": token})
    for n in MAX_RESULTS:
        yield Case(ep, method, path, f"search:max_results:{n}", {**base, "max_results": n})
    if "locations" in fields:  # searchTracesV3: experiment ids inside locations
        where = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "abc"}}
        yield Case(ep, method, path, "expid:locations", {**base, "locations": [where]})


def _query(body: dict[str, Any]) -> str | None:
    """The body as a query string (lists repeat the key), or None when it cannot be one."""
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (dict, list)):
                return None
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return urlencode(pairs)


def _url(server_url: str, case: Case) -> tuple[str, str | None, dict[str, str]]:
    """URL, body and headers of a case as sent: a GET carries its fields in the query."""
    if case.method == "GET":
        query = _query(case.body)
        return server_url + case.path + (f"?{query}" if query else ""), None, {}
    return server_url + case.path, json.dumps(case.body), JSON


def same_message(predicted: str | None, live: str | None) -> bool:
    """Equal, up to what varies between processes: the order of a Python set MLflow prints, and
    object addresses in a Python error."""
    def norm(text: str | None) -> str | None:
        return text if text is None else re.sub(
            r"\{('[^{}]*')\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
            re.sub(r" at 0x[0-9a-f]+", "", text))
    return norm(predicted) == norm(live)


@pytest.fixture(scope="module")
def ids(server_url: str) -> dict[str, str]:
    from helpers import runs

    run = runs.new_run("model-agreement", base_url=server_url)
    return {"run_id": run.run_id, "experiment_id": run.experiment_id}


def test_every_body_endpoint_with_a_schema_is_generated(ids: dict[str, str]) -> None:
    generated = {(c.endpoint.name, c.method) for c in cases(ids)}
    # The online-config route of the issue: registered outside the protos, and in the model.
    assert ("upsert_online_scoring_config", "PUT") in generated
    assert len(generated) >= 90, len(generated)


def test_the_model_agrees_with_the_live_server(server_url: str, ids: dict[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    session = requests.Session()
    all_cases = list(cases(ids))
    covered = agreed = messages = messages_agreed = 0
    per_search: dict[str, int] = {}
    failures: list[str] = []
    message_misses: list[str] = []
    for case in all_cases:
        url, body, headers = _url(server_url, case)
        verdict = preflight(case.method, url, headers, body)
        if is_search(case.endpoint):
            per_search.setdefault(f"{case.endpoint.name} {case.method}", 0)
        if verdict.predicted_status is None:
            continue  # state-dependent or not modelled: said by a finding, not a guess
        covered += 1
        if is_search(case.endpoint):
            per_search[f"{case.endpoint.name} {case.method}"] += 1
        live = session.request(case.method, url, data=body, headers=headers,
                               allow_redirects=False, timeout=30)
        label = f"{case.method} {url.removeprefix(server_url)} [{case.kind}]"
        if live.status_code != verdict.predicted_status:
            failures.append(f"{label}: predicted {verdict.predicted_status}, live "
                            f"{live.status_code} {live.text[:160]}")
            continue
        agreed += 1
        if verdict.expected_message is not None:
            messages += 1
            said = _message(live)
            if same_message(verdict.expected_message, said):
                messages_agreed += 1
            else:
                message_misses.append(f"{label}: predicted {verdict.expected_message!r}, "
                                      f"live {said!r}")
    endpoints = len({(c.endpoint.name, c.method) for c in all_cases})
    figures = (f"model agreement: {endpoints} endpoints, {len(all_cases)} cases, "
               f"{covered} covered, {agreed} agreed ({100 * agreed / max(covered, 1):.1f}%); "
               f"messages {messages_agreed}/{messages} "
               f"({100 * messages_agreed / max(messages, 1):.1f}%); "
               f"{time.perf_counter() - started:.1f} s")
    searches = ", ".join(f"{k} {v}" for k, v in sorted(per_search.items()))
    FIGURES.extend([figures, f"covered per search endpoint: {searches}"])
    with capsys.disabled():
        print(f"\n{figures}\ncovered per search endpoint: {searches}")
        for miss in message_misses:
            print("  message differs:", miss)
    assert not failures, figures + "\n" + "\n".join(failures)
    assert messages_agreed >= 0.95 * messages, figures
    assert covered >= MIN_COVERED, figures
    assert len(per_search) >= 8 and min(per_search.values()) >= MIN_COVERED_PER_SEARCH, searches


def test_state_aware_mode_predicts_the_valid_requests(server_url: str, ids: dict[str, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The valid request of every RPC whose store is modelled, predicted with lookups."""
    session = requests.Session()
    fresh = dict(ids)
    checked: list[str] = []
    failures: list[str] = []
    for case in cases(fresh):
        if case.kind != "valid" or case.endpoint.store is None:
            continue
        body = json.dumps(case.body)
        offline = preflight(case.method, server_url + case.path, JSON, body)
        aware = preflight(case.method, server_url + case.path, JSON, body, server=server_url,
                          session=session)
        live = session.request(case.method, server_url + case.path, data=body, headers=JSON,
                               timeout=30)
        checked.append(case.endpoint.name)
        if offline.predicted_status is not None and offline.predicted_status != live.status_code:
            failures.append(f"{case.endpoint.name} offline {offline.predicted_status}")
        if aware.predicted_status != live.status_code:
            failures.append(f"{case.endpoint.name}: state-aware {aware.predicted_status}, live "
                            f"{live.status_code} {live.text[:160]}")
    with capsys.disabled():
        print(f"\nstate-aware: {len(checked)} valid requests, {len(failures)} disagreements")
    assert len(checked) >= 10 and not failures, "\n".join(failures)


def _message(live: requests.Response) -> str | None:
    try:
        return live.json().get("message")
    except ValueError:
        return live.text.strip() or None


def test_state_aware_mode_predicts_what_state_decides(server_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Each kind of state rule of helpers/model_table.py, on a live server: offline says None
    and names the state; with server= the prediction is the live status."""
    from helpers import runs

    api = server_url + "/api/2.0/mlflow/"
    session = requests.Session()

    def post(path: str, body: dict[str, Any]) -> requests.Response:
        return session.post(api + path, json=body, timeout=30)

    run = runs.new_run("state-aware", base_url=server_url)
    gone = runs.new_run("state-aware-deleted", base_url=server_url)
    assert post("runs/delete", {"run_id": gone.run_id}).status_code == 200
    assert post("runs/log-parameter", {"run_id": run.run_id, "key": "lr",
                                       "value": "0.1"}).status_code == 200
    name = "state-aware-" + uuid.uuid4().hex[:8]
    assert post("experiments/create", {"name": name}).status_code == 200
    metric = {"key": "m", "value": 1, "timestamp": TS}
    cases = [
        ("runs/log-metric", {"run_id": "0" * 32, **metric}, "run-not-found"),
        ("runs/log-metric", {"run_id": gone.run_id, **metric}, "not-active"),
        ("runs/log-metric", {"run_id": run.run_id, **metric}, None),
        ("runs/log-parameter", {"run_id": run.run_id, "key": "lr", "value": "0.2"},
         "param-overwrite"),
        ("runs/log-parameter", {"run_id": run.run_id, "key": "lr", "value": "0.1"}, None),
        ("runs/log-batch", {"run_id": run.run_id, "params": [{"key": "lr", "value": "0.3"}]},
         "param-overwrite"),
        ("experiments/create", {"name": name}, "already-exists"),
        ("experiments/restore", {"experiment_id": run.experiment_id}, "resource-not-found"),
        ("runs/delete-tag", {"run_id": run.run_id, "key": "no-such-tag"}, "resource-not-found"),
        ("runs/create", {"experiment_id": "987654321"}, "resource-not-found"),
        ("runs/delete", {"run_id": gone.run_id}, None),
    ]
    failures = []
    for path, body, expected_id in cases:
        data = json.dumps(body)
        offline = preflight("POST", api + path, JSON, data)
        aware = preflight("POST", api + path, JSON, data, server=server_url, session=session)
        live = session.post(api + path, data=data, headers=JSON, timeout=30)
        ids = [f.id for f in aware.findings]
        if offline.predicted_status is not None or "state" not in [f.id for f in offline.findings]:
            failures.append(f"{path}: offline {offline.predicted_status}, no state finding")
        if aware.predicted_status != live.status_code:
            failures.append(f"{path} {body}: state-aware {aware.predicted_status}, live "
                            f"{live.status_code} {live.text[:120]}")
        elif expected_id is not None and expected_id not in ids:
            failures.append(f"{path}: findings {ids}, expected {expected_id}")
        elif aware.expected_message is not None and \
                aware.expected_message != live.json().get("message"):
            failures.append(f"{path}: message {aware.expected_message!r} != "
                            f"{live.json().get('message')!r}")
    with capsys.disabled():
        print(f"\nstate kinds: {len(cases)} cases, {len(cases) - len(failures)} agreed")
    assert not failures, "\n".join(failures)
