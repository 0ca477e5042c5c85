#!/usr/bin/env python3
"""Run the request case matrix against several MLflow server versions (by hand, not in CI).

Each version gets its own virtualenv under --venv-root (created if missing, several at once),
then, one version at a time: start ``mlflow server`` on a free loopback port with a fresh
SQLite store, wait for /health, note which HTTP server runs it, create an experiment and a run,
send every case from ``cases.py`` with plain ``requests``, stop the server's process group.
Writes ``results.json`` and ``README.md`` next to this file.

    python3 versions/run_matrix.py                      # all versions
    python3 versions/run_matrix.py --versions 2.9.2 3.5.0
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cases import CASES, TIMESTAMP  # noqa: E402

from helpers.version_notes import cell, spans  # noqa: E402  (shared with the notebooks)

BASE_PINS = ("sqlalchemy<2.1",)
# Extra requirements per version, found by installing each version without them (see README).
PINS: dict[str, tuple[str, ...]] = {
    "2.8.1": BASE_PINS + ("setuptools<81",),
    "2.9.0": BASE_PINS + ("setuptools<81",),
    "2.9.2": BASE_PINS + ("setuptools<81",),
    "2.22.1": BASE_PINS,
    "3.1.4": BASE_PINS,
    "3.2.0": BASE_PINS,
    "3.3.0": BASE_PINS,
    "3.4.0": BASE_PINS,
    "3.5.0": BASE_PINS,
    "3.17.2": (),
}
DEFAULT_VERSIONS = list(PINS)
MARKER = ".mlflow-lab-install.json"
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
}


class VersionError(Exception):
    """A version could not be installed or started; the message is one line."""


@dataclass
class Server:
    """A running ``mlflow server`` and what we learnt while starting it."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    startup_seconds: float = 0.0
    kind: str = "unknown"
    processes: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---------------------------------------------------------------- install


def venv_dir(root: Path, version: str) -> Path:
    """Return the virtualenv folder for one MLflow version."""
    return root / f"mlflow-{version}"


def requirements(version: str) -> list[str]:
    """Return the pip requirements for one MLflow version."""
    return [f"mlflow=={version}", *PINS.get(version, BASE_PINS)]


def ensure_venv(root: Path, version: str, python: str) -> dict[str, Any]:
    """Create and fill the version's venv unless a matching one exists; return its info."""
    venv = venv_dir(root, version)
    reqs = requirements(version)
    marker = venv / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("requirements") == reqs and (venv / "bin" / "mlflow").exists():
            return {**info, "reused": True}
    start = time.monotonic()
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = {f"{python} -m venv": [python, "-m", "venv", "--clear", str(venv)],
             f"pip install {shlex.join(reqs)}": [str(venv / "bin" / "pip"), "install", *reqs]}
    for label, cmd in steps.items():
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise VersionError(f"{label} failed: {last_error_line(done.stderr + done.stdout)}")
    installed = pip_freeze(venv)
    info = {"requirements": reqs, "install_seconds": round(time.monotonic() - start, 1),
            "python": installed.pop("__python__", ""), "packages": installed}
    marker.write_text(json.dumps(info, indent=1))
    return {**info, "reused": False}


def pip_freeze(venv: Path) -> dict[str, str]:
    """Return the versions of the packages that matter here, plus the venv's Python version."""
    code = ("import importlib.metadata as m, platform, json\n"
            "names = ['mlflow', 'flask', 'werkzeug', 'gunicorn', 'waitress', 'uvicorn', 'fastapi',"
            " 'starlette', 'sqlalchemy', 'alembic', 'setuptools', 'protobuf']\n"
            "out = {'__python__': platform.python_version()}\n"
            "for n in names:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def last_error_line(text: str) -> str:
    """Return the most telling line of a failed command's output."""
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "is ignored: it is neither a file nor a directory" not in ln]
    for ln in reversed(lines):
        if re.search(r"error|exception|not found|no matching", ln, re.I):
            return ln[:300]
    return lines[-1][:300] if lines else "(no output)"


# ---------------------------------------------------------------- server


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def supports_workers(venv: Path) -> bool:
    """Tell whether this version's ``mlflow server`` accepts ``--workers``."""
    done = subprocess.run([str(venv / "bin" / "mlflow"), "server", "--help"],
                          capture_output=True, text=True)
    return "--workers" in done.stdout


def session_processes(sid: int) -> list[str]:
    """Return the command lines of all processes in session ``sid`` (Linux /proc)."""
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) != sid:  # state ppid pgrp session ...
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        found.append((int(entry.name), " ".join(a.decode(errors="replace") for a in argv if a)))
    return [cmd for _, cmd in sorted(found)]


def classify(commands: list[str], log: str) -> str:
    """Name the HTTP server from process command lines (falling back to the startup log)."""
    text = "\n".join(commands)
    for name in ("uvicorn", "gunicorn", "waitress"):
        if re.search(rf"\b{name}\b", text):
            return name
    for name in ("uvicorn", "gunicorn", "waitress"):
        if name in log.lower():
            return f"{name} (log)"
    return "unknown"


def start_server(venv: Path, workdir: Path, timeout: float) -> Server:
    """Start ``mlflow server`` in its own session and wait until /health answers 200."""
    port = free_port()
    cmd = [str(venv / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
           "--default-artifact-root", str(workdir / "artifacts")]
    if supports_workers(venv):
        cmd += ["--workers", "1"]
    env = {**os.environ, **SERVER_ENV, "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    log_path = workdir / "server.log"
    start = time.monotonic()
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env,
                                start_new_session=True)
    server = Server(proc, port, log_path)
    while True:
        elapsed = time.monotonic() - start
        if proc.poll() is not None:
            tail = last_error_line(log_path.read_text(errors="replace"))
            raise VersionError(f"server exited with code {proc.returncode} before /health: {tail}")
        if elapsed > timeout:
            stop_server(server)
            raise VersionError(f"/health did not answer 200 within {timeout:g}s "
                               f"(log: {last_error_line(log_path.read_text(errors='replace'))})")
        try:
            if requests.get(f"{server.base}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.startup_seconds = round(time.monotonic() - start, 2)
    time.sleep(0.5)  # let worker processes appear
    server.processes = session_processes(proc.pid)
    server.kind = classify(server.processes, log_path.read_text(errors="replace"))
    return server


def stop_server(server: Server) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(server.proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + wait
        while session_processes(server.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not session_processes(server.proc.pid):
            break


# ---------------------------------------------------------------- requests


def send(session: requests.Session, base: str, method: str, path: str,
         headers: dict[str, str], body: bytes | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Send one exact request; return (result record, the headers actually sent)."""
    req = requests.Request(method, base + path, headers=headers, data=body)
    prepared = session.prepare_request(req)
    try:
        resp = session.send(prepared, timeout=30, allow_redirects=False)
    except requests.RequestException as exc:
        return {"status": None, "error": f"{type(exc).__name__}: {exc}"[:200]}, {}
    media = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    record: dict[str, Any] = {"status": resp.status_code, "reason": resp.reason,
                              "content_type": media or None, "error_code": None, "message": None}
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        record["error_code"] = data.get("error_code")
        if "message" in data:
            record["message"] = str(data["message"])[:200]
        elif resp.status_code >= 400:
            record["body"] = resp.text[:200]
        else:
            record["json_keys"] = sorted(data)
    else:
        text = re.sub(r"\s+", " ", resp.text).strip()
        record["body"] = text[:200] if text else None
    return record, dict(prepared.headers)


def api(session: requests.Session, base: str, path: str, payload: dict[str, Any]) -> dict:
    """POST a JSON payload and return the decoded answer, raising on any non-200."""
    resp = session.post(base + path, json=payload, timeout=30)
    if resp.status_code != 200:
        raise VersionError(f"setup call {path} answered {resp.status_code}: {resp.text[:200]}")
    return resp.json()


def run_cases(server: Server) -> tuple[dict[str, str], dict[str, Any]]:
    """Create an experiment and a run, send every case; return (ids, results by case id)."""
    session = requests.Session()
    base = server.base
    exp = api(session, base, "/api/2.0/mlflow/experiments/create", {"name": "version-matrix"})
    exp_id = str(exp["experiment_id"])
    run = api(session, base, "/api/2.0/mlflow/runs/create",
              {"experiment_id": exp_id, "start_time": TIMESTAMP})
    run_id = run["run"]["info"]["run_id"]
    api(session, base, "/api/2.0/mlflow/runs/log-parameter",
        {"run_id": run_id, "key": "lr", "value": "0.01"})
    ids = {"run_id": run_id, "experiment_id": exp_id}
    results: dict[str, Any] = {}
    for case in CASES:
        before = metric_history(session, base, run_id, case.metric_key) if case.metric_key else []
        record, sent = send(session, base, case.method, case.render_path(ids), case.headers,
                            case.render_body(ids))
        if case.expect_key and record.get("status") == 200:
            found = case.expect_key in record.get("json_keys", [])
            record["missing_key"] = None if found else case.expect_key
        record["headers_sent"] = sent
        if case.metric_key and record.get("status") == 200:
            after = metric_history(session, base, run_id, case.metric_key)
            added = Counter(after) - Counter(before)
            record["stored"] = [value for _, value in sorted(added.elements())]
        for key in ("message", "body"):
            if isinstance(record.get(key), str):
                record[key] = sanitize(record[key], ids, server.port)
        results[case.id] = record
    return ids, results


def metric_history(session: requests.Session, base: str, run_id: str, key: str) -> list[tuple]:
    """Return the (step, value) pairs the server holds for one metric key of the run."""
    resp = session.get(f"{base}/api/2.0/mlflow/metrics/get-history",
                       params={"run_id": run_id, "metric_key": key, "max_results": 25000},
                       timeout=30)
    resp.raise_for_status()
    return [(m.get("step", 0), m.get("value")) for m in resp.json().get("metrics", [])]


def sanitize(text: str, ids: dict[str, str], port: int) -> str:
    """Replace the run id and port (different on every run) with placeholders."""
    text = text.replace(ids["run_id"], "<run_id>")
    return text.replace(f":{port}", ":<port>")


# ---------------------------------------------------------------- one version


def run_version(version: str, install: dict[str, Any], venv_root: Path,
                timeout: float) -> dict[str, Any]:
    """Start one version's server, run the cases, stop it; return that version's record."""
    venv = venv_dir(venv_root, version)
    out: dict[str, Any] = {"version": version, "install": install}
    with tempfile.TemporaryDirectory(prefix=f"mlflow-{version}-") as tmp:
        workdir = Path(tmp)
        server = start_server(venv, workdir, timeout)
        try:
            out["startup_seconds"] = server.startup_seconds
            out["server"] = server.kind
            out["processes"] = [shorten(cmd, venv_root, workdir, server.port)
                                for cmd in server.processes]
            start = time.monotonic()
            ids, out["results"] = run_cases(server)
            out["cases_seconds"] = round(time.monotonic() - start, 2)
            out["experiment_id"] = ids["experiment_id"]
        finally:
            stop_server(server)
    return out


def shorten(cmd: str, venv_root: Path, workdir: Path, port: int) -> str:
    """Make a process command line machine-independent."""
    cmd = re.sub(r"\S*/bin/python3?(\.\d+)?\b", "python", cmd)
    cmd = cmd.replace(str(venv_root), "<venv-root>").replace(str(workdir), "<tmp>")
    return re.sub(rf"\b{port}\b", "<port>", cmd)[:300]


# ---------------------------------------------------------------- report


def changes(report: dict[str, Any]) -> str:
    """List, from the data alone, every row whose answer differs between versions."""
    ok = [v for v in report["versions"] if "results" in v]
    names = [v["version"] for v in ok]
    lines, same = [], []
    for case in report["cases"]:
        values = [cell(v["results"].get(case["id"])) for v in ok]
        if len(set(values)) > 1:
            lines.append(f"- {case['id']} {case['title']}: {spans(values, names)}")
        else:
            same.append(f"{case['id']} `{values[0]}`" if values else case["id"])
    servers = [v.get("server", "?") for v in ok]
    lines.append(f"- HTTP server: {spans(servers, names)}")
    if same:
        lines.append("- same answer in every version: " + ", ".join(same))
    return "\n".join(lines)


def table(report: dict[str, Any]) -> str:
    """Render the Markdown table: rows = cases, columns = versions."""
    versions = report["versions"]
    lines = ["| case | " + " | ".join(v["version"] for v in versions) + " |",
             "|" + "---|" * (len(versions) + 1)]
    for case in report["cases"]:
        cells = [cell(v["results"].get(case["id"])) if "results" in v else "failed"
                 for v in versions]
        lines.append(f"| {case['id']} {case['title']} | " + " | ".join(cells) + " |")
    extra = [("HTTP server", lambda v: v.get("server", "failed")),
             ("start → /health (s)", lambda v: str(v.get("startup_seconds", "–"))),
             ("install (s)", lambda v: str(v.get("install", {}).get("install_seconds", "–")))]
    for label, get in extra:
        lines.append(f"| *{label}* | " + " | ".join(get(v) for v in versions) + " |")
    return "\n".join(lines)


def stored_values(report: dict[str, Any]) -> str:
    """List the metric values each 200 on log-metric really added to the run."""
    lines = []
    for case in report["cases"]:
        if not case["request"]["metric_key"]:
            continue
        vals = {v["version"]: v["results"][case["id"]].get("stored")
                for v in report["versions"] if "results" in v}
        shown = ", ".join(f"{k}: `{json.dumps(val)}`" for k, val in vals.items()
                          if val is not None)
        if shown:
            lines.append(f"- {case['id']} {case['title']}: {shown}")
    return "\n".join(lines) or "- (no 200 among those cases)"


NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"


def markdown(report: dict[str, Any], notes: str) -> str:
    """Render the whole README."""
    failed = [f"- **{v['version']}**: {v['error']}" for v in report["versions"] if "error" in v]
    return TEMPLATE.format(
        generated=report["generated"], command=report["command"], table=table(report),
        notes=f"{NOTES_START}\n{notes.strip()}\n{NOTES_END}", changes=changes(report),
        stored=stored_values(report), failed="\n".join(failed) or "- none",
        pins=pins_text(), timings=timings(report),
    )


def timings(report: dict[str, Any]) -> str:
    """Summarise install, start-up and case timings."""
    rows = ["| version | install (s) | reused venv | start → /health (s) "
            f"| {len(CASES)} cases (s) |",
            "|---|---|---|---|---|"]
    for v in report["versions"]:
        inst = v.get("install", {})
        rows.append(f"| {v['version']} | {inst.get('install_seconds', '–')} | "
                    f"{'yes' if inst.get('reused') else 'no'} | "
                    f"{v.get('startup_seconds', '–')} | {v.get('cases_seconds', '–')} |")
    host = report.get("host", {})
    return "\n".join(rows) + (
        f"\n\nWhole run: {report['total_seconds']} s on {host.get('cpus', '?')} CPUs; installs ran "
        f"{host.get('install_jobs', '?')} at a time, so each install time includes waiting on the "
        "others, and the servers ran one after another.")


def old_notes(readme: Path) -> str:
    """Return the hand-written notes of an existing README, kept across reruns."""
    if not readme.exists():
        return "- (write the findings here after reading the table)"
    text = readme.read_text()
    if NOTES_START in text and NOTES_END in text:
        return text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0]
    return "- (write the findings here after reading the table)"


TEMPLATE = """# MLflow version matrix

Which answer does each MLflow server version give to the same hand-built requests? Every cell is
one live request sent with plain `requests` (exact body bytes via `data=`, exact headers) to a
fresh `mlflow server` with a SQLite store, on 127.0.0.1.

generated on {generated} with `{command}`

Cells: `STATUS ERROR_CODE` when the answer is MLflow's JSON error, `200` for a JSON success,
`STATUS (html)` / `STATUS (text)` / `STATUS (json)` when the body is not an MLflow error. Full
answers (reason, media type, message excerpt, the headers actually sent, the stored metric values)
are in [`results.json`](results.json); the exact request of each case is in [`cases.py`](cases.py).

{table}

## Findings

{notes}

### Every row that changes between versions (generated from the data)

{changes}

### What each 200 on log-metric stored (metrics/get-history before and after)

{stored}

## Versions that failed

{failed}

## Timings

{timings}

## Rerun

The script is run by hand, never by CI. It needs Python 3.11 with `requests`, and PyPI.

```bash
python3 versions/run_matrix.py                         # all versions, /tmp/mlflow-versions
python3 versions/run_matrix.py --versions 2.9.2 3.5.0  # a subset (rewrites both outputs)
python3 versions/run_matrix.py --venv-root /somewhere --jobs 3 --timeout 180
python3 versions/run_matrix.py --render-only            # README.md again from results.json
```

Each version gets its own virtualenv, `<venv-root>/mlflow-<version>`, created if missing (several
at once, `--jobs`); an existing one is reused when its install marker matches the pins below. The
servers then run one after another: `mlflow server --host 127.0.0.1 --port <free port>
--backend-store-uri sqlite:///<tmp>/mlflow.db --default-artifact-root <tmp>/artifacts` (plus
`--workers 1` where the CLI has it) with `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`, in a new
session whose whole process group is stopped afterwards. Before the cases the script creates an
experiment and a run and logs param `lr=0.01` (for c22). A version that fails to install or start
prints one line and gets a `failed` column; the others carry on. The hand-written findings between
the `notes` markers survive a rerun: check them against the new table.

Install pins (each checked by installing the version without it; see `PINS` in the script):

{pins}
"""


def pins_text() -> str:
    """Describe the per-version pins and why they exist."""
    lines = [f"- `mlflow=={version}`" + (" + `" + "`, `".join(pins) + "`" if pins else "")
             for version, pins in PINS.items()]
    return "\n".join(lines) + "\n\n" + PIN_WHY


PIN_WHY = (
    "Why: with SQLAlchemy 2.1 every version up to 3.5.0 fails on import "
    "(`cannot import name 'FallbackAsyncAdaptedQueuePool' from 'sqlalchemy.pool'`); "
    "3.17.2 works with it. 2.8.1 and 2.9.2 import `pkg_resources` "
    "(`mlflow/utils/requirements_utils.py`), which setuptools 81 removed, so `mlflow server` "
    "fails with `No module named 'pkg_resources'` there. A fresh Python 3.11 venv ships "
    "setuptools 65, so that pin only matters if setuptools gets upgraded."
)


# ---------------------------------------------------------------- main


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Install the venvs (in parallel), run every version in turn; return the report."""
    venv_root: Path = args.venv_root.resolve()
    started = time.monotonic()

    def install(version: str) -> dict[str, Any] | VersionError:
        print(f"[{version}] installing into {venv_dir(venv_root, version)} ...", flush=True)
        try:
            info = ensure_venv(venv_root, version, args.python)
        except VersionError as exc:
            print(f"[{version}] FAILED: {exc}", flush=True)
            return exc
        how = "reused" if info["reused"] else f"installed in {info['install_seconds']}s"
        print(f"[{version}] venv {how}", flush=True)
        return info

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        installs = dict(zip(args.versions, pool.map(install, args.versions), strict=True))

    records: list[dict[str, Any]] = []
    for version in args.versions:
        info = installs[version]
        if isinstance(info, VersionError):
            records.append({"version": version, "error": str(info)})
            continue
        print(f"[{version}] starting server ...", flush=True)
        try:
            record = run_version(version, info, venv_root, args.timeout)
        except (VersionError, requests.RequestException, KeyError, OSError) as exc:
            print(f"[{version}] FAILED: {exc}", flush=True)
            records.append({"version": version, "install": info, "error": str(exc)[:300]})
            continue
        print(f"[{version}] {record['server']}, /health after {record['startup_seconds']}s, "
              f"{len(record['results'])} cases in {record['cases_seconds']}s", flush=True)
        records.append(record)

    command = "python3 versions/run_matrix.py" + (
        "" if args.versions == DEFAULT_VERSIONS else " --versions " + " ".join(args.versions))
    return {
        "generated": dt.date.today().isoformat(),
        "command": command,
        "host": {"python": platform.python_version(), "requests": requests.__version__,
                 "cpus": os.cpu_count(), "install_jobs": args.jobs},
        "cases": [{"id": c.id, "title": c.title, "description": c.description,
                   "request": c.describe()} for c in CASES],
        "versions": records,
        "total_seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run (or just re-render), write results.json and README.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", nargs="+", default=DEFAULT_VERSIONS, metavar="X.Y.Z",
                        help="MLflow versions to test (default: %(default)s)")
    parser.add_argument("--venv-root", type=Path, default=Path("/tmp/mlflow-versions"),
                        help="where the per-version virtualenvs live (default: %(default)s)")
    parser.add_argument("--python", default="python3", help="interpreter for the venvs")
    parser.add_argument("--jobs", type=int, default=3, help="parallel installs (default: 3)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for /health (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the two outputs")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite README.md from the existing results.json, run nothing")
    args = parser.parse_args(argv)
    results = args.out / "results.json"
    readme = args.out / "README.md"
    if args.render_only:
        report = json.loads(results.read_text())
    else:
        report = run_all(args)
        args.out.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(report, indent=1) + "\n")
    readme.write_text(markdown(report, old_notes(readme)))
    print(f"wrote {results} and {readme} (run took {report['total_seconds']}s)")
    return 0 if all("results" in r for r in report["versions"]) else 1


if __name__ == "__main__":
    sys.exit(main())
