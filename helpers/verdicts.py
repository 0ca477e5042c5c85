"""The article's claims, the live requests that test them, and the verdict on each.

The article: "Why am I getting an Error 400 Bad Request for a POST Request to the MLFLow API?"
(2024-12-23). `article_requests()` rebuilds its six requests byte for byte: the same path, the
header name spelled `Content-type`, `data=json.dumps(...)`, `run_uuid`, `some_metric`, `0.99`
and its malformed string. Only its placeholders are filled in: the server address, and
`your_run_uuid` / `correct_run_uuid` become a real run id (`this_is_not_a_real_uuid` stays).

Who wrote what: the statuses and messages in a verdict come from MLflow, live. The claims (short
quotes of the article), the kit's extra probes, the few words of the "reason" column and the rule
that turns an answer into a verdict are written here by hand, by the kit:

- confirmed: the status the article expects, for the reason it gives;
- right status, other cause: the status it expects, but MLflow's answer names another cause;
- not confirmed: another status.

The source files the article recommends reading are checked against the installed MLflow: a file
that exists is confirmed, one that does not is not confirmed. `summary()` counts the verdicts and
groups the claims that are not confirmed by their cause, so one omission counts once.

Run `python -m helpers.verdicts` to print the table, `--write README.md` to refresh the README's
copy (a test fails when the README differs from a live run).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.display import Table
from helpers.wire import Exchange, send

ARTICLE_TITLE = "Why am I getting an Error 400 Bad Request for a POST Request to the MLFLow API?"
ARTICLE_DATE = "2024-12-23"
LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"

#: The article's header dict, name spelled as it wrote it.
ARTICLE_HEADERS = {"Content-type": "application/json"}
#: Example 2's malformed body, character for character; `your_run_uuid` is its placeholder.
ARTICLE_MALFORMED = '{run_uuid:"your_run_uuid","key":"some_metric","value":0.99}'
#: Example 3's bad id: not a placeholder, sent as it is.
ARTICLE_BAD_ID = "this_is_not_a_real_uuid"

#: The suffix MLflow appends to its missing-parameter messages; cut in the table to keep it short.
DOCS_SUFFIX = " See the API docs for more information about request parameters."

README_START = "<!-- verdict-table:start -->"
README_END = "<!-- verdict-table:end -->"


@dataclass(frozen=True)
class Planned:
    """One request: a label, headers exactly as given, the body text; `as_written` marks the article's."""

    label: str
    headers: dict[str, str]
    data: str
    as_written: bool


def article_body(run_id: str) -> dict:
    """The `data` dict of examples 1 and 2 and `data_correct` of example 3 (same keys and values)."""
    return {"run_uuid": run_id, "key": "some_metric", "value": 0.99}


def article_requests(run_id: str) -> dict[str, Planned]:
    """The article's six requests, placeholders filled with `run_id`, in the article's order."""
    body = json.dumps(article_body(run_id))
    bad = json.dumps({"run_uuid": ARTICLE_BAD_ID, "key": "some_metric", "value": 0.99})
    six = [
        ("1a", {}, body),  # example 1, "incorrect, missing content-type header"
        ("1b", ARTICLE_HEADERS, body),  # example 1, "Correct implementation"
        ("2a", ARTICLE_HEADERS, ARTICLE_MALFORMED.replace("your_run_uuid", run_id)),
        ("2b", ARTICLE_HEADERS, body),  # example 2, "correct json format" (same bytes as 1b)
        ("3a", ARTICLE_HEADERS, bad),  # example 3, "incorrect uuid value"
        ("3b", ARTICLE_HEADERS, body),  # example 3, "correct implementation"
    ]
    return {label: Planned(label, dict(headers), data, True) for label, headers, data in six}


def kit_probes(run_id: str, timestamp_ms: int) -> dict[str, Planned]:
    """The kit's extra requests: each changes one thing in the article's request, to isolate a claim."""
    with_ts = {**article_body(run_id), "timestamp": timestamp_ms}
    return {p.label: p for p in [
        Planned("+timestamp", ARTICLE_HEADERS, json.dumps(with_ts), False),
        Planned("Content-Type", {"Content-Type": "application/json"}, json.dumps(with_ts), False),
        Planned("text/plain", {"Content-type": "text/plain"}, json.dumps(with_ts), False),
        Planned("bad id +timestamp", ARTICLE_HEADERS,
                json.dumps({**with_ts, "run_uuid": ARTICLE_BAD_ID}), False),
        Planned("no run id", ARTICLE_HEADERS,
                json.dumps({k: v for k, v in with_ts.items() if k != "run_uuid"}), False),
        Planned("{}", ARTICLE_HEADERS, "{}", False),
    ]}


def send_planned(planned: Planned) -> Exchange:
    """Send one planned request to log-metric exactly as `requests.post(url, data=..., headers=...)`."""
    return send(LOG_METRIC, headers=planned.headers, data=planned.data)


def answer_line(exchange: Exchange) -> str:
    """MLflow's answer in one line: status, error code, message (the docs-link suffix cut)."""
    if exchange.ok:
        return f"{exchange.status} {exchange.reason} {exchange.text.strip()}"
    message = (exchange.message or exchange.text.strip()).replace(DOCS_SUFFIX, "")
    return f"{exchange.status} {exchange.error_code or exchange.reason}: {message}"


Answers = dict[str, Exchange]


@dataclass(frozen=True)
class Claim:
    """A claim of the article, the requests that test it and the kit's rule for the verdict."""

    number: int
    says: str  # the article's words, quoted as briefly as the claim allows
    tested_by: tuple[str, ...]  # labels of the requests whose answers the rule reads
    expected_status: int
    reason: Callable[[Answers], bool]  # True when MLflow's answer gives the article's reason
    #: MLflow's cause in a few words; by default `cause` of the first request's answer.
    why: Callable[[Answers], str] | None = None


def _mentions(label: str, *words: str) -> Callable[[Answers], bool]:
    return lambda a: all(w in (a[label].message or "") for w in words)


def _names_a_parse_error(label: str) -> Callable[[Answers], bool]:
    """The article's cause for example 2: MLflow's message would name the JSON or its parsing."""
    return lambda a: any(w in (a[label].message or "").lower() for w in ("json", "pars"))


#: MLflow's messages in a few words, for the "reason" column (the kit's wording; the patterns
#: match MLflow's own messages, which the table shows next to them).
_CAUSES: tuple[tuple[str, str], ...] = (
    (r"Content-Type header is missing", "no Content-Type header"),
    (r"Content-Type must be one of", "Content-Type is not application/json"),
    (r"Missing value for required parameter '(\w+)'", "{0} missing"),
    (r"Run with id=\S+ not found", "no such run"),
)


def cause(exchange: Exchange) -> str:
    """MLflow's cause for one answer in a few words ("timestamp missing", "stored")."""
    if exchange.ok:
        return "accepted (200)"
    message = exchange.message or exchange.text
    for pattern, words in _CAUSES:
        found = re.search(pattern, message)
        if found:
            return words.format(*found.groups())
    return " ".join(message.split()[:6])


CLAIMS: tuple[Claim, ...] = (
    Claim(1, 'example 1 without a header: "would likely result in a 400"', ("1a",), 400,
          _mentions("1a", "Content-Type")),
    Claim(2, 'example 1 with the header: "Correct implementation"', ("1b",), 200,
          lambda a: True),
    Claim(3, "(implied) the header name as written, `'Content-type'`, counts as `Content-Type`",
          ("+timestamp", "Content-Type"), 200,
          lambda a: answer_line(a["+timestamp"]) == answer_line(a["Content-Type"]),
          lambda a: "header names ignore case" if answer_line(a["+timestamp"]) ==
          answer_line(a["Content-Type"]) else "the two spellings get different answers"),
    Claim(4, "a content type of `text/plain` (\"a classic\") gives a 400", ("text/plain",), 400,
          _mentions("text/plain", "Content-Type")),
    Claim(5, 'example 2: a syntax error gives 400, it "will break the parsing"', ("2a", "{}"), 400,
          _names_a_parse_error("2a"),
          lambda a: cause(a["2a"]) + (": the body is read as empty" if answer_line(a["2a"]) ==
                                       answer_line(a["{}"]) else "")),
    Claim(6, 'example 2, `json.dumps(data)`: "correct json format"', ("2b",), 200,
          lambda a: True),
    Claim(7, 'example 3, bad id: a 400 "because the value of `run_uuid` is not a valid run uuid"',
          ("3a",), 400, _mentions("3a", ARTICLE_BAD_ID)),
    Claim(8, 'a bad id gives 400 "although the request is formatted correctly"', ("bad id +timestamp",),
          400,
          _mentions("bad id +timestamp", ARTICLE_BAD_ID)),
    Claim(9, 'example 3, a real run id: "will succeed"', ("3b",), 200, lambda a: True),
    Claim(10, "`run_uuid`, `key`, `value`, \"and optionally `timestamp`\"", ("1b", "+timestamp"), 200,
          lambda a: True),
    Claim(11, "a required id \"not valid or missing\": \"the request will fail\"", ("no run id",), 400,
          _mentions("no run id", "run_id")),
)


CONFIRMED = "confirmed"
OTHER_CAUSE = "right status, other cause"
NOT_CONFIRMED = "not confirmed"


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    exchanges: tuple[Exchange, ...]
    verdict: str
    #: MLflow's cause in a few words (the "reason" column).
    reason: str = ""
    #: What was found when no request tests the claim (a source file the article points to).
    found: str = ""

    @property
    def answered(self) -> str:
        return answer_line(self.exchanges[0]) if self.exchanges else self.found


def judge(claim: Claim, answers: Answers) -> Verdict:
    """The kit's rule: the first listed request's status, then the claim's reason test."""
    first = answers[claim.tested_by[0]]
    if first.status != claim.expected_status:
        verdict = NOT_CONFIRMED
    elif claim.reason(answers):
        verdict = CONFIRMED
    else:
        verdict = OTHER_CAUSE
    why = claim.why(answers) if claim.why else cause(first)
    return Verdict(claim, tuple(answers[label] for label in claim.tested_by), verdict, why)


#: The MLflow source files the article recommends reading, checked in the installed MLflow.
ARTICLE_SOURCE_FILES = ("mlflow/tracking/request_header_provider.py",
                        "mlflow/store/tracking/rest_store.py")


def judge_source_file(number: int, relative: str) -> Verdict:
    """A file the article points to: confirmed when the installed MLflow has it."""
    import mlflow

    from helpers.source import mlflow_file

    path = mlflow_file(relative.removeprefix("mlflow/"))
    claim = Claim(number, f"read the source: `{relative}`", (), 0, lambda a: path.is_file())
    if path.is_file():
        return Verdict(claim, (), CONFIRMED, "the file exists",
                       f"present in MLflow {mlflow.__version__}")
    near = sorted(p.name for p in path.parent.glob(path.stem.rsplit("_", 1)[0] + "*")
                  if p.name != "__pycache__")
    where = f"; nearest: {path.parent.name}/{near[0]}/" if near else ""
    return Verdict(claim, (), NOT_CONFIRMED, f"no such file in MLflow {mlflow.__version__}",
                   f"absent from MLflow {mlflow.__version__}{where}")


def collect(run_id: str, timestamp_ms: int) -> list[Verdict]:
    """Send the article's six requests and the kit's probes live; judge every claim."""
    planned = {**article_requests(run_id), **kit_probes(run_id, timestamp_ms)}
    answers = {label: send_planned(p) for label, p in planned.items()}
    judged = [judge(claim, answers) for claim in CLAIMS]
    return judged + [judge_source_file(len(CLAIMS) + 1 + i, f)
                     for i, f in enumerate(ARTICLE_SOURCE_FILES)]


def summary(verdicts: list[Verdict]) -> str:
    """The count, with the claims that are not confirmed grouped by cause: one omission behind
    four claims counts as one cause, not four mistakes."""
    count = {k: sum(v.verdict == k for v in verdicts) for k in (CONFIRMED, OTHER_CAUSE,
                                                               NOT_CONFIRMED)}
    groups: dict[str, list[int]] = {}
    for v in verdicts:
        if v.verdict == NOT_CONFIRMED:
            groups.setdefault(v.reason, []).append(v.claim.number)
    causes = "; ".join(f"{reason} (row{'s' if len(rows) > 1 else ''} "
                       f"{', '.join(map(str, rows))})"
                       for reason, rows in sorted(groups.items(), key=lambda g: -len(g[1])))
    n = len(groups)
    return (f"{len(verdicts)} claims: {count[CONFIRMED]} {CONFIRMED}; {count[OTHER_CAUSE]} "
            f"{OTHER_CAUSE}; {count[NOT_CONFIRMED]} {NOT_CONFIRMED}, with {n} "
            f"cause{'s' if n != 1 else ''} behind them: {causes}.")


def _request_names(verdict: Verdict) -> str:
    names = {"1a": "ex. 1a", "1b": "ex. 1b", "2a": "ex. 2a", "2b": "ex. 2b", "3a": "ex. 3a",
             "3b": "ex. 3b"}
    if not verdict.claim.tested_by:
        return "installed source"
    return ", ".join(names.get(label, f"kit: {label}") for label in verdict.claim.tested_by)


def rows(verdicts: list[Verdict]) -> list[list[str]]:
    return [[str(v.claim.number), v.claim.says, _request_names(v), v.answered, v.reason,
             v.verdict] for v in verdicts]


HEADERS = ["#", "the article says", "requests (ex. = as written)", "MLflow answered (first request)",
           "reason (kit's words)", "verdict (kit's rule)"]


def table(verdicts: list[Verdict]) -> Table:
    """The verdicts as a notebook table (HTML, and aligned text for nbval)."""
    return Table(rows(verdicts), HEADERS)


def markdown_table(verdicts: list[Verdict]) -> str:
    """The verdicts as a Markdown table, deterministic for a given MLflow version."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows(verdicts)]
    return "\n".join(lines)


def readme_block(verdicts: list[Verdict]) -> str:
    return f"{README_START}\n{markdown_table(verdicts)}\n\n{summary(verdicts)}\n{README_END}"


def replace_readme_block(readme: str, block: str) -> str:
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        raise ValueError(f"the README has no {README_START} … {README_END} markers")
    return pattern.sub(lambda _: block, readme)


def main(argv: list[str]) -> int:
    """Print the table from a live run; with `--write README.md`, refresh the README's copy."""
    import time

    from helpers import runs
    from helpers.server import start_server

    with start_server():  # stops the server on exit only if this call started it
        verdicts = collect(runs.new_run("verdicts").run_id, int(time.time() * 1000))
    print(markdown_table(verdicts))
    print(summary(verdicts))
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(replace_readme_block(path.read_text(), readme_block(verdicts)))
        print(f"wrote the table into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
