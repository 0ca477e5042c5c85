"""Hold preflight's predictions against the live server, case by case.

Each case of tests/preflight_cases.py gets its own new run (param values are write-once), is
sent exactly as written with helpers.wire.send (no redirects followed, no Content-Type added),
and is predicted by preflight() from the same bytes, in state-aware mode (read-only lookups
against the same server settle whether the run exists). A case agrees when the status matches,
a live 400 comes with an `error` finding, a live 200 with none, and any message or error code
preflight claims to know matches the server's.
"""

from __future__ import annotations

import uuid

import pytest

from helpers.diagnose import explain, verdict_of
from helpers.preflight_pipeline import Verdict, preflight
from helpers.wire import Exchange, send
from tests.preflight_cases import CASES, JSON, Case


def _new_run(server_url: str, experiment_id: str) -> str:
    answer = send("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id},
                  base_url=server_url)
    assert answer.status == 200, answer.text
    return answer.json["run"]["info"]["run_id"]


def _disagreements(verdict: Verdict, live: Exchange) -> list[str]:
    problems = []
    diagnosis = explain(live)  # one engine: explain must tell the same story as preflight
    offline = verdict_of(live.request)
    if diagnosis.predicted_status != offline.predicted_status:
        problems.append("explain ran another prediction than preflight")
    if offline.predicted_status == live.status and live.status >= 300 and offline.errors and \
            diagnosis.family != offline.errors[0].id:
        problems.append(f"explain says {diagnosis.family}, preflight {offline.errors[0].id}")
    if live.status < 300 and offline.warnings and \
            diagnosis.family != "ok-but-" + offline.warnings[0].id:
        problems.append(f"explain says {diagnosis.family}, preflight warns "
                        f"{offline.warnings[0].id}")
    if diagnosis.family in ("model-disagrees", "unrecognised"):
        problems.append(f"explain: {diagnosis.family}")
    if verdict.predicted_status != live.status:
        problems.append(f"status: predicted {verdict.predicted_status}, live {live.status}")
    if live.status == 400 and not verdict.errors:
        problems.append("live 400 but no error finding")
    if live.status == 200 and verdict.errors:
        problems.append(f"live 200 but error findings: {[f.message for f in verdict.errors]}")
    if verdict.expected_message is not None and verdict.expected_message != live.message:
        problems.append(f"message: predicted {verdict.expected_message!r}, "
                        f"live {live.message!r}")
    if verdict.expected_error_code is not None and verdict.expected_error_code != live.error_code:
        problems.append(f"error code: predicted {verdict.expected_error_code}, "
                        f"live {live.error_code}")
    return problems


def test_the_case_list_is_broad_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    paths = {c.path for c in CASES}
    for endpoint in ("log-metric", "log-parameter", "set-tag", "log-batch", "runs/create",
                     "runs/update", "experiments/create"):
        assert any(p.endswith(endpoint) for p in paths), endpoint


def test_preflight_agrees_with_the_live_server(server_url: str, fresh_run: dict[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    failures: list[str] = []
    for case in CASES:
        values = _values(case, server_url, fresh_run)
        path, headers, body = case.render(values)
        verdict = preflight(case.method, server_url + path, headers, body, server=server_url)
        live = send(path, method=case.method, headers=headers, data=body, base_url=server_url)
        problems = _disagreements(verdict, live)
        if problems:
            failures.append(f"{case.name}: " + "; ".join(problems))
    agreed = len(CASES) - len(failures)
    figure = f"preflight agreement: {agreed}/{len(CASES)} ({100 * agreed / len(CASES):.1f}%)"
    with capsys.disabled():
        print(f"\n{figure}")
    assert not failures, figure + "\n" + "\n".join(failures)


def _values(case: Case, server_url: str, fresh_run: dict[str, str]) -> dict[str, str]:
    experiment_id = fresh_run["experiment_id"]
    run_id = _new_run(server_url, experiment_id) if "run_id" in case.needs else "unused"
    return {"run_id": run_id, "experiment_id": experiment_id, "unique": uuid.uuid4().hex}


def test_routing_is_werkzeugs_and_starlettes(server_url: str) -> None:
    """Routes the kit once matched with its own regex, against the live server: werkzeug
    answers 405 on a merged '//' path served for another method and 404 on a '//' before a
    path parameter; Starlette's `{artifact_path:path}` also takes an empty rest."""
    for method, path, status in [("GET", "/api/2.0//mlflow/runs/log-metric", 405),
                                 ("POST", "/api/2.0/mlflow-artifacts/mpu/abort//", 404)]:
        live = send(path, method=method, json={}, base_url=server_url)
        assert live.status == status and live.body_kind == "html", live
        assert preflight(method, server_url + path, JSON, b"{}").predicted_status == status
    live = send("/api/2.0/mlflow-artifacts/artifacts/", method="GET", base_url=server_url)
    assert live.status == 400 and "detail" in (live.json or {}), live  # FastAPI's, not Flask's
    assert preflight("GET", server_url + "/api/2.0/mlflow-artifacts/artifacts/").findings[0].id \
        == "not-modelled"
