"""The picture of the server's checks, in order, drawn from the server model as a small SVG.

Each step names the MLflow code that implements it (checked to exist in the installed MLflow),
and the article's requests are placed where preflight (helpers/preflight_pipeline.py) says they
stop: the same model that predicts answers draws the picture, so the two cannot drift apart.
`python -m helpers.diagram --write notebooks/images/server_checks.svg` regenerates the file;
tests/test_diagram.py fails when the committed copy is stale. Hand-written SVG, no renderer:
the output is deterministic for one MLflow version.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

from helpers import catalog, source
from helpers import preflight_advice as advice
from helpers.preflight_pipeline import Finding, preflight

OUTPUT = Path(__file__).resolve().parents[1] / "notebooks" / "images" / "server_checks.svg"
#: A run id stand-in: the article's placeholders are filled with one (no server is asked).
_RUN = "0" * 32
#: A finding preflight records as an error although the server goes on: unreadable JSON is
#: read as nothing (get_json(silent=True)), and a later check answers.
_PASSES = {"malformed-json": "unreadable JSON read as {}"}


@dataclass(frozen=True)
class Step:
    """One check of the server, the MLflow code behind it, the findings it produces."""

    title: str
    does: str
    #: "relative/path.py::name" in the installed MLflow (names are checked by `where`).
    code: tuple[str, ...]
    #: Substrings of a finding's `check` that place the finding at this step.
    marks: tuple[str, ...]

    def files(self) -> str:
        """The files that implement the step, each named once, in order."""
        return ", ".join(self.by_file())

    def by_file(self) -> dict[str, list[str]]:
        """{"mlflow/server/handlers.py": ["_log_metric", ...]} in the order of `code`."""
        out: dict[str, list[str]] = {}
        for ref in self.code:
            path, _, name = ref.partition("::")
            out.setdefault("mlflow/" + path, []).append(name)
        return out


def _exists(ref: str) -> str:
    """`ref` if its function or class is defined in the installed MLflow, else LookupError."""
    path, _, name = ref.partition("::")
    top = name.split(".")[0]
    if not any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
               and n.name == top for n in ast.walk(source.tree(path))):
        raise LookupError(f"mlflow/{path} defines no {top}: the diagram's step is out of date")
    return ref


def _mlflow_ref(check: str) -> str:
    """A model `check` string ("mlflow/x.py::f" or a module:attr) as "x.py::f"."""
    if ":" in check and "::" not in check:  # "mlflow.entities.metric:Metric"
        module, _, attr = check.partition(":")
        return module.removeprefix("mlflow.").replace(".", "/") + ".py::" + attr
    return check.removeprefix("mlflow/")


#: The SQL store method each drawn RPC's handler calls (handlers.py::_log_metric calls
#: `_get_tracking_store().log_metric`); its validators are read from MLflow's source below.
STORE_METHOD = {"logMetric": "log_metric"}
_SQL_STORE = "store/tracking/sqlalchemy_store.py"


def _store_validators(method: str, depth: int = 3) -> tuple[str, ...]:
    """The `_validate*` functions SqlAlchemyStore.`method` reaches through its own methods (as
    called, or handed on as `self._x`), as "utils/validation.py::name" references."""
    cls = next(n for n in source.tree(_SQL_STORE).body
               if isinstance(n, ast.ClassDef) and n.name == "SqlAlchemyStore")
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    seen, found, todo = set(), [], [(method, 0)]
    while todo:
        name, level = todo.pop(0)
        if name in seen or name not in methods or level > depth:
            continue
        seen.add(name)
        for node in ast.walk(methods[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id.startswith("_validate") and node.func.id not in found:
                found.append(node.func.id)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "self":
                todo.append((node.attr, level + 1))
    return tuple(f"utils/validation.py::{name}" for name in found)


def steps(rpc: str = "logMetric") -> tuple[Step, ...]:
    """The server's checks for one endpoint, in the order preflight walks them (Pipeline.run)."""
    ep = next(e for e in catalog.endpoints() if e.name == rpc)
    store = ep.store
    method = STORE_METHOD.get(rpc, "")
    validators = ((f"{_SQL_STORE}::SqlAlchemyStore.{method}",) if method else ()) \
        + _store_validators(method)
    state = tuple(dict.fromkeys(_mlflow_ref(r.check) for r in (store.state if store else ())))
    handler = f"server/handlers.py::{ep.handler}"
    raw = (
        Step("Security", "Host and Origin headers (DNS-rebinding, CORS)",
             ("server/fastapi_security.py::HostValidationMiddleware",
              "server/fastapi_security.py::CORSBlockingMiddleware"), (advice.SECURITY,)),
        Step("Route", "path and method in Flask's URL map (404, 405)",
             ("server/handlers.py::get_endpoints",), (advice.ROUTER,)),
        Step("Content-Type", "exactly application/json on POST",
             ("server/validation.py::_validate_content_type",), ("_validate_content_type",)),
        Step("JSON", "the body read as JSON, silently: bad JSON becomes {}",
             ("server/handlers.py::_get_request_json",), ("::_get_request_json",)),
        Step("Protobuf", "the JSON parsed into the request message",
             ("server/handlers.py::_get_request_message", "utils/proto_json_utils.py::parse_dict"),
             (advice.PARSE, "_reject_conflicting_field_aliases")),
        Step("Handler schema", f"{ep.handler}'s schema: required fields, types",
             (handler, "server/handlers.py::_validate_param_against_schema"),
             ("_validate_param_against_schema", advice.H + str(ep.handler))),
        Step("Store", "MLflow's validators the store calls: names, values, limits",
             validators, tuple(f"mlflow/{v}" for v in validators) + (advice.UV,)),
        Step("State", "the run exists and is active (else 404 / 400)", state,
             tuple(f"mlflow/{s}" for s in state)),
    )
    for s in raw:
        for ref in s.code:
            _exists(ref)
    return raw


def _step_of(finding: Finding, all_steps: tuple[Step, ...]) -> int | None:
    for i in range(len(all_steps) - 1, -1, -1):
        if any(m in finding.check for m in all_steps[i].marks):
            return i
    return None


@dataclass(frozen=True)
class Placed:
    """Where one request stops (`step`), what it is, and what the server answers there."""

    label: str
    step: int
    answer: str
    passes: tuple[tuple[int, str], ...] = ()  # steps it goes through with a surprise


def place(requests_: dict[str, tuple[dict[str, str], str]], path: str,
          all_steps: tuple[Step, ...]) -> list[Placed]:
    """Run preflight on each request and place it at the step that answers."""
    out = []
    for label, (headers, body) in requests_.items():
        v = preflight("POST", path, headers, body)
        passes = tuple((_step_of(f, all_steps) or 0, _PASSES[f.id])
                       for f in v.findings if f.id in _PASSES)
        stop = next((f for f in v.findings if f.severity == "error" and f.id not in _PASSES),
                    None) or next((f for f in v.findings if f.id == "state"), None)
        step = _step_of(stop, all_steps) if stop else None
        if step is None:
            raise LookupError(f"{label}: preflight's finding names no step of the diagram")
        if v.predicted_status is None:
            answer = "valid as sent: the run decides"
        else:
            said = (v.expected_message or "").split(". See the API docs")[0]
            answer = f"{v.predicted_status}: {said.rstrip('.')}"
        out.append(Placed(label, step, answer, passes))
    return out


def article_placements() -> tuple[tuple[Step, ...], list[Placed]]:
    """The article's six requests as written, and examples 1 and 3 with the timestamp added."""
    import json

    from helpers import verdicts
    reqs = {k: (p.headers, p.data) for k, p in verdicts.article_requests(_RUN).items()}
    for label in ("1b", "3a"):
        headers, body = reqs[label]
        reqs[f"{label} + timestamp"] = (headers, json.dumps({**json.loads(body),
                                                             "timestamp": 1700000000000}))
    all_steps = steps()
    return all_steps, place(reqs, verdicts.LOG_METRIC, all_steps)


# ------------------------------------------------------------------------------ drawing

_W, _TOP, _GAP, _LEFT_W, _CODE_CHARS = 1150, 96, 20, 650, 84
_STYLE = """
.bg{fill:#ffffff}.box{fill:#eef2f8;stroke:#4a5a7a;stroke-width:1.2}
.hit{fill:#fdecea;stroke:#b3261e;stroke-width:1.6}.pass{fill:#e7f4ea;stroke:#2e7d32}
.t{fill:#16181d;font:600 15px 'DejaVu Sans',Helvetica,Arial,sans-serif}
.s{fill:#33384a;font:13px 'DejaVu Sans',Helvetica,Arial,sans-serif}
.c{fill:#1d3f8a;font:12px 'DejaVu Sans Mono',Menlo,Consolas,monospace}
.n{fill:#b3261e;font:600 13px 'DejaVu Sans',Helvetica,Arial,sans-serif}
.g{fill:#2e6b32;font:13px 'DejaVu Sans',Helvetica,Arial,sans-serif}
.a{stroke:#4a5a7a;stroke-width:1.6;fill:none}.h{fill:#4a5a7a}
@media (prefers-color-scheme: dark){
.bg{fill:#1b1d23}.box{fill:#262b36;stroke:#9aa8c7}.hit{fill:#3b1f1f;stroke:#ff8a80}
.pass{fill:#1e3322;stroke:#81c784}.t{fill:#f1f3f8}.s{fill:#c9cedb}.c{fill:#9cc3ff}
.n{fill:#ff8a80}.g{fill:#a5d6a7}.a{stroke:#9aa8c7}.h{fill:#9aa8c7}}
"""


def _text(x: int, y: int, cls: str, text: str) -> str:
    return f'<text x="{x}" y="{y}" class="{cls}">{escape(text)}</text>'


def svg(all_steps: tuple[Step, ...], placed: list[Placed], version: str) -> str:
    """The diagram as SVG text: one box per step, the requests that stop there on its right."""
    stops = {i: [p for p in placed if p.step == i] for i in range(len(all_steps))}
    passes = {i: [(p.label, why) for p in placed for j, why in p.passes if j == i]
              for i in range(len(all_steps))}
    height = _TOP + sum(_box_height(s, stops[i], passes[i]) + _GAP
                        for i, s in enumerate(all_steps))
    desc = "; ".join(
        f"{i + 1}. {s.title} ({s.files()})"
        + "".join(f", {p.label} stops here ({p.answer})" for p in stops[i])
        for i, s in enumerate(all_steps))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
           f'viewBox="0 0 {_W} {height}" role="img" aria-labelledby="title desc">',
           f"<title id=\"title\">The order of MLflow {escape(version)}'s checks on "
           "POST /api/2.0/mlflow/runs/log-metric</title>",
           f'<desc id="desc">{escape(desc)}</desc>', f"<style>{_STYLE}</style>",
           f'<rect class="bg" width="{_W}" height="{height}" rx="10"/>',
           _text(20, 32, "t", f"What MLflow {version} checks, in order, on "
                 "POST /api/2.0/mlflow/runs/log-metric"),
           _text(20, 56, "s", "Each box: the check and the file that implements it. "
                 "Right: the article's requests that stop there (drawn by preflight, "
                 "from the server model)."),
           _text(20, 76, "s", "1a … 3b are the article's requests as written; "
                 "'+ timestamp' adds the field the server requires.")]
    y = _TOP
    for i, s in enumerate(all_steps):
        code = _code_lines(s)
        right: list[tuple[str, str]] = []
        for answer, labels in _grouped((p.answer, p.label) for p in stops[i]):
            verb = "stop" if answer[:1].isdigit() else "reach"
            right += [("n", f"{_labels(labels)} {verb if len(labels) > 1 else verb + 's'} "
                       "here:"), ("n", f"→ {answer}")]
        for why, labels in _grouped((why, label) for label, why in passes[i]):
            right += [("g", f"{_labels(labels)} {'pass' if len(labels) > 1 else 'passes'}: "
                       f"{why}")]
        box_h = _box_height(s, stops[i], passes[i])
        cls = "box hit" if stops[i] else "box"
        out.append(f'<rect class="{cls}" x="20" y="{y}" width="{_LEFT_W}" height="{box_h}" '
                   'rx="6"/>')
        out.append(_text(34, y + 22, "t", f"{i + 1}. {s.title}"))
        out.append(_text(214, y + 22, "s", s.does))
        out += [_text(34, y + 42 + 18 * k, "c", line) for k, line in enumerate(code)]
        out += [_text(_LEFT_W + 40, y + 22 + 18 * k, c, line) for k, (c, line) in enumerate(right)]
        if i + 1 < len(all_steps):
            ax, ay = 60, y + box_h
            out.append(f'<path class="a" d="M{ax} {ay} v{_GAP - 6}"/>'
                       f'<path class="h" d="M{ax - 5} {ay + _GAP - 7} h10 l-5 7 z"/>')
        y += box_h + _GAP
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _code_lines(step: Step) -> list[str]:
    """One line per file; a file whose names do not fit gets them on the next line."""
    lines = []
    for path, names in step.by_file().items():
        line = f"{path}: {', '.join(names)}"
        lines += [line] if len(line) <= _CODE_CHARS else [path + ":", "  " + ", ".join(names)]
    return lines


def _box_height(step: Step, stops: list[Placed], passes: list[tuple[str, str]]) -> int:
    answers = len({p.answer for p in stops})
    right = 2 * answers + len({why for _, why in passes})
    return 16 + 18 * max(1 + len(_code_lines(step)), right)


def _grouped(pairs) -> list[tuple[str, list[str]]]:
    """(key, label) pairs as (key, [labels]) in first-seen order."""
    out: dict[str, list[str]] = {}
    for key, label in pairs:
        out.setdefault(key, []).append(label)
    return list(out.items())


def _labels(labels: list[str]) -> str:
    return ", ".join(labels)


def render() -> str:
    """The committed diagram's text for the installed MLflow."""
    import mlflow

    all_steps, placed = article_placements()
    return svg(all_steps, placed, mlflow.__version__)


def main(argv: list[str]) -> int:
    """Print the SVG, or with `--write PATH` write it there."""
    text = render()
    if argv[:1] == ["--write"] and len(argv) == 2:
        Path(argv[1]).write_text(text, encoding="utf-8")
        print(f"wrote {argv[1]}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
