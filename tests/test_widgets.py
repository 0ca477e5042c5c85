"""RequestLab without a browser: controls change the request they should, Send gets the live answer.

The widgets run without a kernel (ipywidgets needs none to hold state and fire callbacks), so
each test sets controls or clicks buttons exactly as notebook cells do. Expected answers are
MLflow 3.17.2's, checked against the same bytes sent with plain `requests`.
"""

from __future__ import annotations

import html
import importlib
import json

import ipywidgets
import pytest
import requests

from helpers import errors, runs, widgets
from helpers import request_parts as rp
from helpers.exercises.request_lab import check_challenges, send_with_fields
from helpers.processes import free_port
from helpers.server import ServerHandle
from helpers.widgets import RequestLab
from tests.solutions import load_solution

CT_MISSING = "Bad Request. Content-Type header is missing."
MISSING = ("Missing value for required parameter '{}'. See the API docs for more information "
           "about request parameters.")


@pytest.fixture
def lab(server: ServerHandle) -> RequestLab:
    return RequestLab(server)


def _body(lab: RequestLab) -> bytes:
    return lab.request_parts().body


def _plain_requests(lab: RequestLab) -> requests.Response:
    """The request the controls describe, sent again with plain `requests` (ground truth)."""
    parts = lab.request_parts()
    return requests.request(parts.method, lab.base_url + parts.path, headers=parts.headers,
                            data=parts.body, timeout=10)


# ------------------------------------------------------------------ controls -> request


def test_starts_on_a_known_good_request_to_its_own_run(lab: RequestLab) -> None:
    body = json.loads(_body(lab))
    assert body["run_id"] == lab.ctx.run_id and len(lab.ctx.run_id) == 32
    assert set(body) == {"run_id", "key", "value", "timestamp", "step"}
    assert abs(body["timestamp"] - runs.now_ms()) < 60_000
    assert lab.request_parts().headers == {"Content-Type": "application/json"}
    lab.send_button.click()
    assert lab.last_exchange.status == 200
    assert lab.last_exchange.request.body == _body(lab)
    assert runs.get_run(lab.ctx.run_id)["info"]["experiment_id"] == lab.ctx.experiment_id


def test_endpoint_picker_switches_path_and_field_rows(lab: RequestLab) -> None:
    from helpers import catalog

    for label, path in rp.ENDPOINTS.items():
        lab.endpoint.value = label
        assert lab.request_parts().path == path
        assert lab.preview_text().splitlines()[0] == f"POST {path}"
        shown = [row.include.description.rstrip(" *") for row in
                 (lab.field(f.name) for f in catalog.endpoint(path).fields)]
        assert shown == [f.name for f in catalog.endpoint(path).fields]
        assert [lab.field(f.name).box for f in catalog.endpoint(path).fields] == \
            list(lab.fields_box.children)


def test_edits_survive_switching_endpoints(lab: RequestLab) -> None:
    lab.field("key").value.value = '"kept"'
    lab.endpoint.value = "log-param"
    lab.endpoint.value = "log-metric"
    assert json.loads(_body(lab))["key"] == "kept"


def test_method_picker_sends_that_method(lab: RequestLab) -> None:
    for method in ("GET", "PUT"):
        lab.method.value = method
        lab.send_button.click()
        assert lab.last_exchange.request.method == method
        assert lab.last_exchange.status == _plain_requests(lab).status_code == 405


def test_content_type_picker_sets_or_removes_the_header(lab: RequestLab) -> None:
    for content_type in rp.CONTENT_TYPES:
        lab.content_type.value = content_type
        lab.send_button.click()
        sent = lab.last_exchange.request.header("Content-Type")
        if content_type == rp.NO_CONTENT_TYPE:
            assert sent is None and "(no Content-Type header)" in lab.preview_text()
        else:
            assert sent == content_type and f"Content-Type: {content_type}" in lab.preview_text()


def test_body_style_picker_writes_the_body_that_way(lab: RequestLab) -> None:
    run_id = lab.ctx.run_id
    seen = {}
    for style in rp.BODY_STYLES:
        lab.body_style.value = style
        lab.send_button.click()
        seen[style] = lab.last_exchange.request.body.decode()
    assert json.loads(seen["valid JSON"])["run_id"] == run_id
    assert json.loads(json.loads(seen["double-encoded"]))["run_id"] == run_id
    assert seen["unquoted keys"].startswith(f'{{run_id: "{run_id}", key: ')
    assert seen["trailing comma"].endswith(", \"step\": 0,}")
    assert seen["single quotes"].startswith(f"{{'run_id': '{run_id}', 'key': 'accuracy'")
    assert seen["empty"] == ""


def test_field_rows_include_and_value(lab: RequestLab) -> None:
    lab.field("step").include.value = False
    assert "step" not in json.loads(_body(lab))
    lab.field("run_uuid").include.value = True
    lab.field("run_uuid").value.value = "abc"  # unquoted text is sent as a string
    assert json.loads(_body(lab))["run_uuid"] == "abc"
    lab.field("value").value.value = '"0.5"'
    assert json.loads(_body(lab))["value"] == "0.5"
    with pytest.raises(errors.LabError, match="log-metric has no field 'nope'; its fields are run_id"):
        lab.field("nope")


def test_quick_choice_buttons(lab: RequestLab) -> None:
    lab.field("run_id").choice_buttons["nonexistent"].click()
    assert json.loads(_body(lab))["run_id"] == rp.NONEXISTENT_RUN_ID
    lab.field("run_id").choice_buttons["empty"].click()
    assert json.loads(_body(lab))["run_id"] == ""
    lab.field("run_id").choice_buttons["live run"].click()
    assert json.loads(_body(lab))["run_id"] == lab.ctx.run_id
    lab.field("timestamp").choice_buttons["seconds as float"].click()
    assert isinstance(json.loads(_body(lab))["timestamp"], float)
    lab.field("timestamp").choice_buttons["omit"].click()
    assert "timestamp" not in json.loads(_body(lab)) and not lab.field("timestamp").include.value
    lab.field("timestamp").choice_buttons["now in ms"].click()
    assert abs(json.loads(_body(lab))["timestamp"] - runs.now_ms()) < 60_000
    for label, expected in (('"abc"', "abc"), ("null", None), ("number", 0.95)):
        lab.field("value").choice_buttons[label].click()
        assert json.loads(_body(lab))["value"] == expected
    with pytest.raises(errors.LabError, match="has no quick choice"):
        lab.field("key").choose("live run")


def test_preview_and_curl_follow_the_controls(lab: RequestLab) -> None:
    lab.content_type.value = rp.NO_CONTENT_TYPE
    assert "(no Content-Type header)" in lab.preview.value
    assert "-H 'Content-Type:'" in lab.curl()
    lab.body_style.value = "empty"
    assert "(empty body)" in lab.preview.value


# ------------------------------------------------------------------ Send: the article's cases, live


def _article_steps(lab: RequestLab) -> list[tuple[str, int, str | None]]:
    """Break and fix the article's three examples with the lab's controls; record each answer."""
    out = []

    def send(label: str) -> None:
        truth = _plain_requests(lab)
        lab.send_button.click()
        assert lab.last_exchange.status == truth.status_code, label
        out.append((label, lab.last_exchange.status, lab.last_exchange.message))

    lab.content_type.value = rp.NO_CONTENT_TYPE
    send("example 1")
    lab.content_type.value = "application/json"
    send("example 1 fixed")
    lab.body_style.value = "single quotes"
    send("example 2")
    lab.body_style.value = "valid JSON"
    send("example 2 fixed")
    lab.field("run_id").value.value = "invalid_run_id"
    lab.field("timestamp").include.value = False
    lab.field("step").include.value = False
    send("example 3")
    lab.field("timestamp").choose("now in ms")
    send("example 3 with a timestamp")
    lab.field("run_id").choose("live run")
    send("example 3 fixed")
    return out


def test_send_on_the_articles_cases_gives_the_live_answer(lab: RequestLab) -> None:
    assert _article_steps(lab) == [
        ("example 1", 400, CT_MISSING),
        ("example 1 fixed", 200, None),
        ("example 2", 400, MISSING.format("run_id")),
        ("example 2 fixed", 200, None),
        ("example 3", 400, MISSING.format("timestamp")),
        ("example 3 with a timestamp", 404, "Run with id=invalid_run_id not found"),
        ("example 3 fixed", 200, None),
    ]
    assert [a.status for a in lab.history] == [400, 200, 400, 200, 400, 404, 200]
    assert lab.history[0].changes == ["Content-Type: (none)"]
    assert lab.history[4].changes == ["run_id = invalid_run_id", "timestamp omitted",
                                      "step omitted"]
    assert "Content-Type: (none)" in repr(lab.history_table())


def test_the_answer_shows_status_message_diagnosis_and_prediction(lab: RequestLab) -> None:
    from helpers.diagnose import explain
    from helpers.preflight_pipeline import preflight

    lab.content_type.value = rp.NO_CONTENT_TYPE
    parts = lab.request_parts()
    predicted = preflight(parts.method, parts.path, parts.headers, parts.body,
                          server=lab.base_url).predicted_status
    lab.send_button.click()
    diagnosis = explain(lab.last_exchange)
    shown = lab.answer.value
    assert '<span class="lab400-badge"' in shown and ">400 Bad Request</span>" in shown
    assert "INVALID_PARAMETER_VALUE" in shown and CT_MISSING in shown
    assert diagnosis.check in lab.answer_text() and diagnosis.fix in lab.answer_text()
    assert lab.history[-1].predicted_status == predicted
    verdict = "matched" if predicted == 400 else "did not match"
    assert verdict in lab.answer_text() and verdict in shown


def test_each_send_is_announced_in_words_even_when_the_answer_repeats(lab: RequestLab) -> None:
    assert lab.announcement() == "Not sent yet: press Send."
    lab.content_type.value = rp.NO_CONTENT_TYPE
    said = []
    for _ in range(2):
        lab.send_button.click()
        said.append(lab.announcement())
    message = lab.last_exchange.message  # the live server's words
    assert message.startswith("Bad Request. ")
    assert said == [f"Answer {n}: 400 Bad Request. {message.removeprefix('Bad Request. ')}"
                    for n in (1, 2)]
    assert lab.status.value.startswith('<div role="status" aria-live="polite"')


def test_every_control_has_a_name_and_pickers_expose_their_choice(lab: RequestLab) -> None:
    """Screen readers name a control from its description (a <label for=...>); pickers are
    <select> list boxes; Font Awesome icons would put a glyph into a button's name; a tooltip of
    None becomes title="null"."""
    pickers = (lab.endpoint, lab.method, lab.content_type, lab.body_style)
    assert all(isinstance(p, ipywidgets.Select) and p.description for p in pickers)
    assert [p.rows for p in pickers] == [len(p.options) for p in pickers]
    lab.load("curl -X POST http://h/api/2.0/mlflow/runs/log-metric -H 'Content-Type: text/csv'")
    assert "text/csv" in lab.content_type.options
    assert lab.content_type.rows == len(rp.CONTENT_TYPES) + 1  # an imported type shows too
    for name in lab.choices().fields:
        assert lab.field(name).value.description == f"{name} value"
    controls = _descendants(lab.widget)
    assert len(controls) > 20
    assert [w for w in controls if getattr(w, "icon", "")] == []
    assert [w for w in controls if getattr(w, "tooltip", "") is None] == []


def _descendants(box: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    return [box, *(w for child in getattr(box, "children", ()) for w in _descendants(child))]


def test_a_failing_diagnosis_or_prediction_is_one_line_not_a_traceback(
        lab: RequestLab, monkeypatch: pytest.MonkeyPatch) -> None:
    # The modules, not `helpers.preflight_pipeline` (the package's public name for the function).
    diagnose_module = importlib.import_module("helpers.diagnose")
    preflight_module = importlib.import_module("helpers.preflight_pipeline")

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(diagnose_module, "explain", broken)
    monkeypatch.setattr(preflight_module, "preflight", broken)
    lab.content_type.value = rp.NO_CONTENT_TYPE
    lab.send_button.click()
    assert lab.last_exchange.status == 400  # the answer itself is still shown
    assert "(diagnosis failed: ValueError: boom)" in lab.answer_text()
    assert "(prediction failed: ValueError: boom)" in lab.prediction.value
    assert "Traceback" not in lab.answer.value + lab.prediction.value


# ------------------------------------------------------------------ a server that is down


def _one_plain_sentence(text: str) -> None:
    assert "Traceback" not in text and "Error(" not in text
    assert "\n" not in text.strip() and text.strip().endswith(".")


def test_a_down_server_shows_one_plain_sentence_when_the_lab_starts() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    lab = RequestLab(base_url=dead)  # must not raise
    _one_plain_sentence(lab.problem)
    assert f"Could not connect to {dead}" in lab.problem
    assert lab.announcement() == f"No answer: {lab.problem}"
    assert ">no answer</span>" in lab.answer.value and html.escape(lab.problem) in lab.answer.value
    assert lab.send() is None and lab.last_exchange is None
    assert lab.answer_text() == f"no answer: {lab.problem}"


def test_the_lab_recovers_when_the_server_answers_again(server: ServerHandle) -> None:
    lab = RequestLab(base_url=f"http://127.0.0.1:{free_port()}")
    assert lab.problem and not lab.ctx.run_id
    lab.base_url = server.url
    lab.send_button.click()
    assert lab.problem is None and len(lab.ctx.run_id) == 32
    assert lab.last_exchange.status == 200
    assert json.loads(lab.last_exchange.request.body)["run_id"] == lab.ctx.run_id
    assert lab.ctx.run_id in lab.title.value


def test_a_server_that_goes_down_shows_one_plain_sentence_on_send(lab: RequestLab) -> None:
    lab.base_url = f"http://127.0.0.1:{free_port()}"
    lab.send_button.click()
    attempt = lab.history[-1]
    assert attempt.status is None and attempt.status_text == widgets.NO_ANSWER
    _one_plain_sentence(attempt.message)
    assert "no server is answering there" in attempt.message
    assert ">no answer</span>" in lab.answer.value
    assert html.escape(attempt.message) in lab.answer.value
    assert lab.announcement() == f"Answer {attempt.number}: no answer. {attempt.message}"


# ------------------------------------------------------------------ Reset, display


def test_reset_restores_the_known_good_request_and_keeps_the_history(lab: RequestLab) -> None:
    first_run = lab.ctx.run_id
    lab.endpoint.value = "log-param"
    lab.field("value").value.value = "0.5"
    lab.method.value = "PUT"
    lab.content_type.value = "text/plain"
    lab.body_style.value = "empty"
    lab.send_button.click()
    lab.endpoint.value = "log-metric"
    lab.field("timestamp").include.value = False
    assert lab.history and lab.last_exchange is not None

    kept = list(lab.history)
    lab.reset_button.click()
    assert (lab.endpoint.value, lab.method.value, lab.content_type.value, lab.body_style.value) == \
        ("log-metric", "POST", "application/json", "valid JSON")
    assert lab.history == kept and lab.last_exchange is None and lab.answer_text() == widgets.NOT_SENT
    assert ">not sent yet</span>" in lab.answer.value and "log-param" in lab.history_view.value
    assert set(json.loads(_body(lab))) == {"run_id", "key", "value", "timestamp", "step"}
    lab.endpoint.value = "log-param"
    assert json.loads(_body(lab))["value"] == "0.01"
    assert lab.ctx.run_id == first_run
    lab.send_button.click()
    assert lab.last_exchange.status == 200


def test_clear_history_empties_the_history_and_keeps_the_controls(lab: RequestLab) -> None:
    lab.content_type.value = rp.NO_CONTENT_TYPE
    lab.send_button.click()
    assert len(lab.history) == 1
    lab.clear_button.click()
    assert lab.history == [] and "no attempts yet" in lab.history_view.value
    assert lab.content_type.value == rp.NO_CONTENT_TYPE  # only the history went
    lab.send_button.click()
    assert [a.number for a in lab.history] == [1]


def test_display_gives_a_widget_view_and_a_stable_text(lab: RequestLab) -> None:
    bundle = lab._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == lab.widget.model_id
    assert bundle["text/plain"] == (f"RequestLab for the MLflow server at {lab.base_url} (its "
                                    "controls show in JupyterLab with a running kernel)")


# ------------------------------------------------------------------ the notebook's challenges


def test_the_worked_solutions_pass_the_self_check(lab: RequestLab) -> None:
    solution = load_solution("04_request_lab")
    assert not check_challenges(lab).passed
    assert send_with_fields(lab, solution.CHALLENGE_404).startswith("404 Not Found")
    half = check_challenges(lab)
    assert not half.passed and str(half).splitlines()[0] == "✗ Not yet: 1 of 2 challenges solved " \
                                                           "(history since it was last cleared)."
    assert send_with_fields(lab, solution.challenge_wrong_timestamp(lab.ctx.run_id)) == "200 OK"
    feedback = check_challenges(lab)
    assert feedback.passed, str(feedback)
    assert "stored with timestamp 0" in str(feedback)

    lab.clear_button.click()
    solution.solve_by_clicks(lab)
    assert check_challenges(lab).passed


def test_the_self_check_is_not_fooled(lab: RequestLab) -> None:
    assert str(send_with_fields(lab, {"run_id": ...})).startswith("✗ Not yet: replace every")
    assert lab.history == []
    # A 200 with seconds stored wrongly, then Clear history: the history has no such attempt left,
    # and a correct request afterwards does not count although the bad point is still stored.
    send_with_fields(lab, {"timestamp": runs.now_ms() // 1000})
    assert check_challenges(lab).lines[2].startswith("challenge 2 (a 200 storing a wrong "
                                                     "timestamp): solved")
    lab.clear_button.click()
    lab.reset_button.click()
    lab.send_button.click()
    assert lab.last_exchange.status == 200
    # 400s and 405s are not 404s.
    lab.content_type.value = rp.NO_CONTENT_TYPE
    lab.send_button.click()
    lab.method.value = "GET"
    lab.send_button.click()
    feedback = check_challenges(lab)
    assert not feedback.passed and str(feedback).splitlines()[0].endswith("0 of 2 challenges "
                                                                          "solved (history since "
                                                                          "it was last cleared).")


def test_runs_create_with_a_start_time_in_seconds_counts(lab: RequestLab) -> None:
    lab.endpoint.value = "runs/create"
    assert send_with_fields(lab, {"start_time": runs.now_ms() // 1000}) == "200 OK"
    assert "start_time is stored as" in check_challenges(lab).lines[2]
