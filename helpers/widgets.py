"""`RequestLab`: break and fix a request to the live MLflow server with clicks, and see why.

This module only arranges controls and reacts to events. The request is built by
`helpers.request_parts` (the same code notebook cells use), sent by `helpers.wire.send`,
predicted by `helpers.preflight_pipeline.preflight` and explained by `helpers.diagnose.explain` (both
imported on first use, since they load MLflow's protobuf definitions).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from helpers import lab_access as access
from helpers import request_parts as rp
from helpers import runs
from helpers.display import Table, badge_colour, response_summary, status_line
from helpers.errors import KitError, LabError
from helpers.redact import mask_text
from helpers.server import ServerHandle, start_server
from helpers.wire import Exchange, mask_headers, to_curl

NOT_SENT = "not sent yet"
NO_ANSWER = "no answer"
DIAGNOSIS_MISSING = "(diagnosis not available)"
PREDICTION_MISSING = "(prediction not available)"
HISTORY_HEADERS = ("#", "endpoint", "changed from the known-good request", "answer",
                   "preflight predicted")
_PRE = "white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0"


@dataclass
class Attempt:
    """One press of Send: what was changed from the known-good request, and the answer."""

    number: int
    endpoint: str
    method: str
    content_type: str
    body_style: str
    changes: list[str]
    payload: dict[str, Any]
    sent_at_ms: int
    status: int | None
    status_text: str
    error_code: str | None = None
    message: str | None = None
    predicted_status: int | None = None
    exchange: Exchange | None = field(default=None, repr=False)
    run_id: str = ""

    @property
    def matched(self) -> bool | None:
        """Whether preflight's prediction was the live status (None: no prediction)."""
        if self.predicted_status is None or self.status is None:
            return None
        return self.predicted_status == self.status


class FieldRow:
    """One body field: `include` (a Checkbox), `value` (a Text box holding JSON text), and
    quick-choice buttons where a choice teaches something."""

    def __init__(self, spec: rp.FieldSpec, choice: rp.FieldChoice, ctx_getter: Callable[[], rp.LabContext]):
        self.name = spec.name
        self.spec = spec
        self._ctx = ctx_getter
        label = spec.name + (" *" if spec.required else "")
        self.include = widgets.Checkbox(value=choice.include, description=label, indent=False,
                                        layout=widgets.Layout(width="150px"), tooltip="")
        self.include.add_class(f"lab400-include-{spec.name}")
        box_type = widgets.Textarea if spec.repeated else widgets.Text
        # The description is the box's accessible name ("key value"); the lab's CSS hides it
        # from view, since the checkbox beside it already shows the field's name.
        self.value = box_type(value=choice.text, layout=widgets.Layout(flex="1 1 auto", width="auto"),
                              description=f"{spec.name} value", tooltip="",
                              placeholder='JSON: "text", 0.95, null (unquoted text is sent as a string)')
        self.value.add_class(f"lab400-value-{spec.name}")
        self.value.add_class("lab400-value")
        self.choice_buttons: dict[str, widgets.Button] = {}
        for label_text in rp.QUICK_CHOICES.get(spec.name, {}):
            button = widgets.Button(description=label_text, layout=widgets.Layout(width="auto"),
                                    tooltip=f"Set {spec.name} to: {label_text}")
            button.on_click(lambda _b, chosen=label_text: self.choose(chosen))
            self.choice_buttons[label_text] = button
        self.box = widgets.HBox([self.include, self.value, *self.choice_buttons.values()],
                                layout=widgets.Layout(width="100%"))

    def choose(self, label: str) -> None:
        """Apply one quick choice, e.g. `lab.field("timestamp").choose("seconds as float")`."""
        options = rp.QUICK_CHOICES.get(self.name, {})
        if label not in options:
            raise LabError(f"Field {self.name!r} has no quick choice {label!r}; it has "
                           f"{', '.join(options) or 'none'}.")
        chosen = options[label](self._ctx())
        if chosen is rp.OMIT:
            self.include.value = False
            return
        self.value.value = rp.value_text(chosen)
        self.include.value = True

    def choice(self) -> rp.FieldChoice:
        return rp.FieldChoice(self.include.value, self.value.value)

    def close(self) -> None:
        """Close this row's widgets (a kernel keeps every widget until it is closed)."""
        for control in (self.include, self.value, *self.choice_buttons.values(), self.box):
            control.close()

    def observe(self, handler: Callable[[Any], None]) -> None:
        self.include.observe(handler, names="value")
        self.value.observe(handler, names="value")


class RequestLab:
    """Controls for one request to the kit's MLflow server, a Send button, the answer explained.

    `RequestLab()` uses `start_server()` (the running kit server) and creates its own experiment
    and run. Controls for code and tests: `endpoint`, `method`, `content_type`, `body_style`,
    `field(name).include`, `field(name).value`, `send_button`, `reset_button`, `clear_button`; results:
    `last_exchange`, `history` (a list of `Attempt`), `announcement()` (the line read out after
    each Send). The pickers are list boxes (helpers.lab_access explains the accessibility choices).
    """

    def __init__(self, server: ServerHandle | None = None, *, base_url: str | None = None):
        if base_url is None:
            base_url = (server or start_server()).url
        self.base_url = base_url.rstrip("/")
        self.history: list[Attempt] = []
        self.last_exchange: Exchange | None = None
        self.last_verdict: Any = None
        self.last_diagnosis: Any = None
        self.problem: str | None = None
        self.ctx = rp.LabContext(run_id="", experiment_id="")
        self._rows: dict[str, dict[str, FieldRow]] = {}
        self._baselines: dict[str, rp.Choices] = {}
        self._quiet = False
        self._announcement = ""

        # Pickers are list boxes (a <select> showing every option): one click picks, one Tab stop
        # each, arrow keys move, and a screen reader hears the group's name and the picked option.
        self.endpoint = access.picker(rp.ENDPOINTS, "Endpoint")
        self.method = access.picker(rp.METHODS, "Method")
        self.content_type = access.picker(rp.CONTENT_TYPES, "Content-Type")
        self.body_style = access.picker(rp.BODY_STYLES, "Body")
        # No icons: Font Awesome's glyph would become part of each button's accessible name.
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          tooltip="Send the request to the MLflow server")
        self.reset_button = widgets.Button(description="Reset",
                                           tooltip="Back to the known-good request; your history "
                                                   "is kept")
        self.clear_button = widgets.Button(description="Clear history",
                                           tooltip="Empty the history of attempts")
        for control, name in ((self.endpoint, "endpoint"), (self.method, "method"),
                              (self.content_type, "content-type"), (self.body_style, "body-style"),
                              (self.send_button, "send"), (self.reset_button, "reset"),
                              (self.clear_button, "clear-history")):
            control.add_class(f"lab400-{name}")
        self.title = widgets.HTML()
        #: The live region: "Answer 3: 400 Bad Request. <message>" after each Send, next to Send.
        self.status = widgets.HTML()
        self.status.add_class("lab400-status")
        self.fields_label = widgets.HTML()
        self.fields_box = widgets.VBox()
        self.preview = widgets.HTML()
        self.prediction = widgets.HTML()
        self.answer = widgets.HTML()
        self.history_view = widgets.HTML()
        for part, name in ((self.preview, "preview"), (self.prediction, "prediction"),
                           (self.answer, "answer"), (self.history_view, "history")):
            part.add_class(f"lab400-{name}")
        def half() -> widgets.Layout:
            return widgets.Layout(flex="1 1 0", min_width="0", padding="0 6px 0 0")

        # Import: paste a curl command (or raw HTTP); `load()` sets every control from it.
        self.import_text = widgets.Textarea(
            description="Your own request", style={"description_width": "initial"}, tooltip="",
            placeholder="Paste your own request here (a curl command, e.g. from Copy as cURL), "
                        "then press Import", layout=widgets.Layout(width="100%", height="60px"))
        self.import_button = widgets.Button(description="Import",
                                            tooltip="Load the pasted request into the controls")
        self.import_note = widgets.HTML()
        for control, name in ((self.import_text, "import-text"), (self.import_button, "import"),
                              (self.import_note, "import-note")):
            control.add_class(f"lab400-{name}")
        self.widget = widgets.VBox([
            widgets.HTML(access.STYLE), self.title, self.import_text,
            widgets.HBox([self.import_button, self.import_note]),
            widgets.HBox([self.endpoint, self.method, self.content_type, self.body_style],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
            self.fields_label, self.fields_box,
            widgets.HBox([self.send_button, self.reset_button, self.clear_button, self.status],
                         layout=widgets.Layout(align_items="center")),
            # The request (left) next to the server's answer (right), as on the wire.
            widgets.HBox([widgets.VBox([self.preview, self.prediction], layout=half()),
                          widgets.VBox([self.answer], layout=half())],
                         layout=widgets.Layout(width="100%")),
            self.history_view,
        ], layout=widgets.Layout(padding="8px"))
        self.widget.add_class("lab400-lab")

        self.endpoint.observe(self._on_endpoint, names="value")
        for control in (self.method, self.content_type, self.body_style):
            control.observe(self._on_change, names="value")
        self.send_button.on_click(lambda _b: self.send())
        self.import_button.on_click(lambda _b: self._on_import())
        self.reset_button.on_click(lambda _b: self.reset())
        self.clear_button.on_click(lambda _b: self.clear_history())

        self._setup_run()
        self.reset()

    # ------------------------------------------------------------------ public API

    def field(self, name: str) -> FieldRow:
        """The row of field `name` for the endpoint picked now."""
        rows = self._rows_for(self.endpoint.value)
        if name not in rows:
            raise LabError(f"{self.endpoint.value} has no field {name!r}; its fields are "
                           f"{', '.join(rows)}.")
        return rows[name]

    def choices(self) -> rp.Choices:
        """The controls' state as plain data (what `request_parts.build` turns into bytes)."""
        rows = self._rows_for(self.endpoint.value)
        return rp.Choices(endpoint=self.endpoint.value, method=self.method.value,
                          content_type=self.content_type.value, body_style=self.body_style.value,
                          fields={name: row.choice() for name, row in rows.items()})

    def request_parts(self) -> rp.RequestParts:
        return rp.build(self.choices())

    def send(self) -> Exchange | None:
        """Send the request the controls describe; show and record the answer (Send button)."""
        if not self.ctx.run_id and not self._setup_run():
            self._show_problem(self.problem or "The lab has no run to send to.")
            return None
        choices = self.choices()
        parts = rp.build(choices)
        verdict = self.last_verdict = self._predict(parts)
        attempt = Attempt(
            number=len(self.history) + 1, endpoint=choices.endpoint, method=choices.method,
            content_type=choices.content_type, body_style=choices.body_style,
            changes=rp.describe_changes(choices, self._baselines[choices.endpoint]),
            payload=parts.payload, sent_at_ms=runs.now_ms(), status=None, status_text=NO_ANSWER,
            predicted_status=getattr(verdict, "predicted_status", None), run_id=self.ctx.run_id)
        try:
            exchange = rp.send_parts(parts, base_url=self.base_url)
        except KitError as exc:  # ServerUnreachable and friends: one plain sentence
            self.last_exchange = None
            self.last_diagnosis = None
            attempt.message = str(exc)
            self.history.append(attempt)
            self._show_problem(str(exc))
            self._render_history()
            return None
        self.problem = None
        self.last_exchange = exchange
        self.last_diagnosis = self._explain(exchange)
        attempt.status, attempt.status_text = exchange.status, status_line(exchange)
        attempt.error_code, attempt.message = exchange.error_code, exchange.message
        attempt.exchange = exchange
        self.history.append(attempt)
        self._render_answer()
        self._render_history()
        return exchange

    def reset(self) -> None:
        """Back to the known-good log-metric request and clear the answer; the history is kept."""
        self._quiet = True
        try:
            self._drop_rows()
            self.endpoint.value = "log-metric"
            self.method.value = "POST"
            self.content_type.options = list(rp.CONTENT_TYPES)  # drop one an import added
            self.content_type.value = "application/json"
            self.import_note.value = ""
            self.body_style.value = "valid JSON"
        finally:
            self._quiet = False
        self.last_exchange = None
        self.last_verdict = None
        self.last_diagnosis = None
        self._show_rows()
        self._render_title()
        self._render_history()
        if self.problem:
            self._show_problem(self.problem)
        else:
            self._render_answer()

    def load(self, text: str) -> list[str]:
        """Set the controls from a pasted request (curl command or raw HTTP), so its parts can be
        toggled one by one; returns what the lab cannot show of it (extra headers ...).

        The request is read by helpers.request_input and mapped by request_parts.choices_from;
        a run id it names is kept as pasted (the lab's run is one quick choice away)."""
        from helpers.request_input import read_input

        found = read_input(text)
        choices, notes = rp.choices_from(found[0], self.ctx)
        if len(found) > 1:
            notes.append(f"the input holds {len(found)} requests: the first is loaded")
        self._quiet = True
        try:
            self.endpoint.value = choices.endpoint
            self.method.value = choices.method
            if choices.content_type not in self.content_type.options:
                self.content_type.options = [*self.content_type.options, choices.content_type]
            self.content_type.value = choices.content_type
            self.body_style.value = choices.body_style
            rows = self._rows_for(choices.endpoint)
            for name, choice in choices.fields.items():
                if name not in rows:
                    row = FieldRow(rp.FieldSpec(name, "string"), choice, lambda: self.ctx)
                    row.observe(self._on_change)
                    rows[name] = row
                rows[name].include.value = choice.include
                rows[name].value.value = choice.text
        finally:
            self._quiet = False
        self._show_rows()
        self.import_note.value = html.escape("Loaded. " + "; ".join(notes) if notes else "Loaded.")
        return notes

    def _on_import(self) -> None:
        try:
            self.load(self.import_text.value)
        except KitError as exc:  # InputError, LabError: one plain sentence under the box
            self.import_note.value = f"<pre style='{_PRE}'>{html.escape(str(exc))}</pre>"

    def clear_history(self) -> None:
        """Empty the history of attempts (the Clear history button); the controls stay as they are."""
        self.history.clear()
        self._render_history()

    def answer_text(self) -> str:
        """The last answer as deterministic text: status, error code, message, diagnosis, prediction."""
        if self.last_exchange is None:
            return f"{NO_ANSWER}: {self.problem}" if self.problem else NOT_SENT
        lines = [response_summary(self.last_exchange)]
        diagnosis = self.last_diagnosis
        if diagnosis is None:
            lines.append(DIAGNOSIS_MISSING)
        else:
            for key in ("cause", "check", "fix"):
                lines.append(f"{key}: {getattr(diagnosis, key, '')}")
        lines.append(self._prediction_summary())
        return "\n".join(lines)

    def announcement(self) -> str:
        """What the live region next to Send says now (a screen reader reads it out after each
        Send): numbered, so that the same answer twice is still news."""
        return self._announcement

    def preview_text(self) -> str:
        """The request exactly as Send will put it on the wire (headers and body)."""
        sent = rp.preview(self.request_parts(), self.base_url)
        lines = [f"{sent.method} {sent.path}"]
        lines += [f"{k}: {v}" for k, v in mask_headers(sent.headers)]
        if sent.header("Content-Type") is None:
            lines.append("(no Content-Type header)")
        lines += ["", sent.body.decode("utf-8", errors="replace") if sent.body else "(empty body)"]
        return "\n".join(lines)

    def curl(self) -> str:
        return to_curl(rp.preview(self.request_parts(), self.base_url))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_() or {}
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return (f"RequestLab for the MLflow server at {self.base_url} (its controls show in "
                "JupyterLab with a running kernel)")

    # ------------------------------------------------------------------ events and rendering

    def _setup_run(self) -> bool:
        try:
            run = runs.new_run("request-lab", base_url=self.base_url)
        except KitError as exc:
            self.problem = str(exc)
            return False
        self.ctx = rp.LabContext(run_id=run.run_id, experiment_id=run.experiment_id)
        self.problem = None
        had_rows = bool(self.fields_box.children)
        self._drop_rows()
        if had_rows:  # the lab was already showing (the server came back): fresh rows
            self._show_rows()
            self._render_title()
        return True

    def _drop_rows(self) -> None:
        self.fields_box.children = ()
        for rows in self._rows.values():
            for row in rows.values():
                row.close()
        self._rows.clear()
        self._baselines.clear()

    def _rows_for(self, endpoint: str) -> dict[str, FieldRow]:
        if endpoint not in self._rows:
            specs = rp.fields_for(endpoint)
            baseline = rp.default_choices(endpoint, self.ctx)
            by_name = {s.name: s for s in specs}
            rows = {}
            for name, choice in baseline.fields.items():
                row = FieldRow(by_name.get(name, rp.FieldSpec(name, "string")), choice,
                               lambda: self.ctx)
                row.observe(self._on_change)
                rows[name] = row
            self._rows[endpoint] = rows
            self._baselines[endpoint] = baseline
        return self._rows[endpoint]

    def _on_endpoint(self, _change: Any) -> None:
        if not self._quiet:
            self._show_rows()

    def _on_change(self, _change: Any) -> None:
        if not self._quiet:
            self._render_preview()

    def _show_rows(self) -> None:
        rows = self._rows_for(self.endpoint.value)
        self.fields_box.children = [row.box for row in rows.values()]
        access.no_null_titles(self.widget)
        self.fields_label.value = (f"<b>Fields</b> of {html.escape(self.endpoint.value)} "
                                   "(from MLflow's protobuf descriptors (helpers.catalog); "
                                   "* = the server requires it). Untick a field to "
                                   "leave it out; values are JSON.")
        self._render_preview()

    def _render_title(self) -> None:
        where = (f"run <code>{html.escape(self.ctx.run_id)}</code> in experiment "
                 f"{html.escape(self.ctx.experiment_id)}" if self.ctx.run_id else "no run yet")
        self.title.value = (f'<h2 class="lab400-h">Request Lab</h2>MLflow at '
                            f"<code>{html.escape(self.base_url)}</code> · {where}")

    def _render_preview(self) -> None:
        try:
            text, curl = self.preview_text(), self.curl()
        except KitError as exc:
            self.preview.value = f"<pre>{html.escape(str(exc))}</pre>"
            return
        self.preview.value = (
            "<details open><summary><b>The request, exactly as Send sends it</b></summary>"
            f'<pre style="{_PRE}">{html.escape(text)}</pre>'
            f'<pre class="lab400-muted" style="{_PRE}">{html.escape(curl)}</pre></details>')
        verdict = self._predict(self.request_parts())
        findings = "".join(
            f"<li>{html.escape(f.severity)}: {html.escape(f.message)}"
            + (f" <i>Fix: {html.escape(f.fix)}</i>" if f.fix else "") + "</li>"
            for f in getattr(verdict, "findings", ()))
        self.prediction.value = (f"<b>Preflight (before sending; read-only lookups only):</b> "
                                 f"{html.escape(self._verdict_line(verdict))}"
                                 + (f'<ul style="margin:2px 0">{findings}</ul>' if findings else ""))

    def _announce(self, text: str) -> None:
        self._announcement = text
        self.status.value = access.live_region(text)

    def _render_answer(self) -> None:
        exchange = self.last_exchange
        self._announce("Not sent yet: press Send." if exchange is None
                       else access.answer_sentence(len(self.history), exchange))
        if exchange is None:
            self.answer.value = _answer_box(_badge(NOT_SENT, "#57606a")
                                            + "<div>Press Send: the server's answer shows here.</div>")
            return
        colour = badge_colour(exchange.status)
        parts = [_badge(status_line(exchange), colour)]
        if exchange.error_code:
            parts.append(f' <code class="lab400-error-code">{html.escape(exchange.error_code)}</code>')
        if exchange.message:
            parts.append(f'<div class="lab400-message">{html.escape(mask_text(exchange.message))}</div>')
        elif exchange.body_kind == "html":
            parts.append(f'<div class="lab400-message">an HTML page ({html.escape(exchange.media_type)}'
                         "), not MLflow's JSON error</div>")
        else:
            parts.append(f'<div class="lab400-message">{html.escape(mask_text(exchange.text.strip()[:400]))}'
                         '</div>')
        diagnosis = self.last_diagnosis
        if diagnosis is None:
            parts.append(f'<div class="lab400-diagnosis">{DIAGNOSIS_MISSING}</div>')
        else:
            rows = "".join(f"<tr><th style='text-align:left;vertical-align:top;padding-right:8px;"
                           "white-space:nowrap'>"
                           f"{key}</th><td style='text-align:left'>"
                           f"{html.escape(str(getattr(diagnosis, key, '')))}</td></tr>"
                           for key in ("cause", "check", "fix"))
            parts.append(f'<div class="lab400-diagnosis">{access.heading("Diagnosis")}<table>{rows}</table>'
                         "</div>")
        parts.append(f'<div class="lab400-match">{html.escape(self._prediction_summary())}</div>')
        self.answer.value = _answer_box("".join(parts))

    def _show_problem(self, sentence: str) -> None:
        last = self.history[-1] if self.history else None
        sent = last is not None and last.status is None and last.message == sentence
        self._announce(f"Answer {last.number}: no answer. {sentence}" if sent
                       else f"No answer: {sentence}")
        self.answer.value = _answer_box(_badge(NO_ANSWER, "#57606a")
                                        + f'<div class="lab400-message">{html.escape(sentence)}</div>')

    def history_table(self) -> Table:
        """The attempts so far as a table (HTML in a notebook, aligned text when printed)."""
        rows = [[a.number, a.endpoint, "; ".join(a.changes) or "the known-good request",
                 a.status_text + (f" · {a.error_code}" if a.error_code else ""),
                 _predicted_cell(a)] for a in self.history]
        return Table(rows, HISTORY_HEADERS)

    def _render_history(self) -> None:
        if not self.history:
            self.history_view.value = access.heading("History") + "<i>no attempts yet.</i>"
            return
        self.history_view.value = access.heading("History") + self.history_table()._repr_html_()

    # ------------------------------------------------------------------ optional helpers

    def _predict(self, parts: rp.RequestParts) -> Any:
        from helpers.preflight_pipeline import preflight  # on first use: it loads MLflow's protos

        try:
            # State-aware: read-only lookups on the lab's own server settle "does the run exist".
            return preflight(parts.method, parts.path, parts.headers, parts.body,
                             server=self.base_url)
        except Exception as exc:  # a learner must never get a traceback from a prediction
            return _Unavailable(f"(prediction failed: {type(exc).__name__}: {exc})")

    def _explain(self, exchange: Exchange) -> Any:
        from helpers.diagnose import explain

        try:
            return explain(exchange)
        except Exception as exc:  # as above: the answer itself is still shown
            return _Unavailable(f"(diagnosis failed: {type(exc).__name__}: {exc})")

    def _verdict_line(self, verdict: Any) -> str:
        if verdict is None:
            return PREDICTION_MISSING
        if isinstance(verdict, _Unavailable):
            return verdict.text
        status = verdict.predicted_status
        if status is None:
            return "cannot tell before sending"
        said = f" — {verdict.expected_message}" if getattr(verdict, "expected_message", None) else ""
        return f"predicts {status}{said}"

    def _prediction_summary(self) -> str:
        """Preflight's prediction for the last request sent, and whether the server agreed."""
        verdict = self.last_verdict
        if verdict is None or not self.history or self.history[-1].status is None:
            return PREDICTION_MISSING
        if isinstance(verdict, _Unavailable):
            return verdict.text
        last = self.history[-1]
        if last.predicted_status is None:
            return "preflight could not tell this one before sending"
        if last.matched:
            return f"preflight predicted {last.predicted_status}: matched"
        return (f"preflight predicted {last.predicted_status}, the server answered {last.status}: "
                "did not match")


@dataclass(frozen=True)
class _Unavailable:
    """Stands in for a prediction or diagnosis whose helper failed: says so in one line."""

    text: str
    predicted_status: None = None

    @property
    def cause(self) -> str:
        return self.text

    check = fix = cause


def _answer_box(inner: str) -> str:
    return (f'<div style="overflow-wrap:anywhere">{access.heading("The answer")}'
            f'<div style="margin:4px 0">{inner}</div></div>')


def _badge(text: str, colour: str) -> str:
    return (f'<span class="lab400-badge" style="background:{colour};color:white;padding:2px 10px;'
            f'border-radius:10px;font-weight:bold;font-family:monospace">{html.escape(text)}</span>')


def _predicted_cell(attempt: Attempt) -> str:
    if attempt.predicted_status is None:
        return "—"
    mark = {True: "✓", False: "✗", None: ""}[attempt.matched]
    return f"{attempt.predicted_status} {mark}".strip()
