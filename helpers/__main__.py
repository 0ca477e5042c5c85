"""Command line: `python -m helpers serve | status | stop | lab | hub | doctor | join | leave |
openapi | check`."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_EARLY_SIGINT: list[int] = []


def _early_sigint(signum: int, _frame: object) -> None:
    """Ctrl-C before `main()` runs (while the modules import): remembered, and acted on as soon
    as main starts; a second press stops the process at once (nothing is started yet)."""
    if _EARLY_SIGINT:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    _EARLY_SIGINT.append(signum)


if __name__ == "__main__":
    # As early as this command can: a parent may have left SIGINT ignored (`nohup`, `cmd &`),
    # and Python keeps an inherited ignore, so a Ctrl-C during start-up would be lost.
    signal.signal(signal.SIGINT, _early_sigint)

from helpers import config, doctor  # noqa: E402
from helpers.errors import KitError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIRST_NOTEBOOK = "00_start_here.ipynb"
#: JupyterLab's port when it is free (Jupyter's own default); else a free one.
LAB_PORT = 8888
#: Settings the kit's JupyterLab starts with: no "official Jupyter news?" prompt, no update check.
LAB_SETTINGS = ROOT / "tools" / "jupyterlab-settings"
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, name))


class _Stop(BaseException):
    """Ctrl-C, a kill or a closed terminal: stop what this command started, then exit."""


def _on_stop_signal(signum: int, _frame: object) -> None:
    _ignore_stop_signals()  # a second Ctrl-C while cleaning up must not cut the cleanup short
    raise _Stop(signum)


def _catch_stop_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all mean "stop": set explicitly, so a SIGINT that a parent
    left ignored (`nohup`, a script's background job, some IDE runners) still stops us."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)


def _ignore_stop_signals() -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


#: Room the document needs, checked before generating it (openapi/ holds ~0.6 MB per version).
_OPENAPI_ROOM = 2 * 1024 * 1024


def _check_writable(target: Path) -> None:
    """Refuse, in one sentence and before seconds of generating, an output that is a symbolic link
    or a folder, or whose folder cannot be made, written or hold the document (full disk)."""
    if target.is_symlink():
        raise KitError(f"Cannot write {target}: it is a symbolic link (to {os.readlink(target)}), "
                       "and the kit does not write through links; remove the link or choose "
                       "another --output.")
    if target.is_dir():
        raise KitError(f"Cannot write {target}: it is a folder; give a file name, e.g. "
                       f"{target / 'openapi.json'}.")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise KitError(f"Cannot write {target} ({blocker} is a file, not a folder): choose "
                       "another --output.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent) as probe:  # the room, really written
            probe.write(b"\0" * _OPENAPI_ROOM)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise KitError(f"Cannot write {target} ({exc.strerror or exc}): choose another "
                       "--output.") from None


def _port(text: str) -> int:
    """argparse type: a TCP port, 1-65535, said in one line when it is not."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port: give a number from 1 to "
                                         "65535") from None
    return value

# `helpers.server` and `helpers.processes` (requests, psutil) are imported where they are used, so
# that `doctor` (standard library only) also runs, and says what is missing, in a Python that lacks them.


def main(argv: list[str] | None = None) -> int:
    if signal.getsignal(signal.SIGINT) is _early_sigint:  # run as `python -m helpers`
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if _EARLY_SIGINT:  # pressed during start-up: nothing was started, nothing to stop
            print("Stopped.", file=sys.stderr)
            return 130
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start (or reuse) the kit's local MLflow server")
    serve.add_argument("--port", type=_port, default=None,
                       help="port on 127.0.0.1 (default: 5400 if free, else a free one; 5000 "
                       "with --classroom)")
    serve.add_argument("--foreground", action="store_true",
                       help="stay attached and stop the server on Ctrl-C")
    room = serve.add_argument_group(
        "classroom mode", "one server for a room, on a real database; runs until Ctrl-C "
        "(docs/instructor.md)")
    room.add_argument("--classroom", action="store_true", help="start the room's server")
    room.add_argument("--backend-store-uri", default=None,
                      help="the room's database, e.g. postgresql+psycopg2://mlflow@localhost/mlflow")
    room.add_argument("--host", default=None,
                      help="where to listen: 0.0.0.0 (every network) or this machine's address")
    room.add_argument("--allowed-hosts", action="append", default=[], metavar="HOSTS",
                      help="more Host names learners may use (comma-separated; MLflow's defaults "
                      "and the advertised address are always allowed)")
    room.add_argument("--advertise", default=None,
                      help="the address learners type (default: --host, or this machine's LAN IP)")
    room.add_argument("--workers", type=int, default=None,
                      help="server worker processes (default: MLflow's own default)")
    room.add_argument("--basic-auth", action="store_true",
                      help="MLflow's basic-auth app, one account per learner (needs the classroom extra)")
    room.add_argument("--roster", default=None, metavar="FILE",
                      help="learner names, one per line: one MLflow user each (with --basic-auth)")
    sub.add_parser("status", help="say which server the kit would use")
    sub.add_parser("stop", help="stop the kit's local server")
    lab = sub.add_parser("lab", help="start the server and JupyterLab; Ctrl-C stops both")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    lab.add_argument("--fresh", action="store_true",
                     help="open copies of the lessons with their outputs cleared (in the data "
                     "folder; the committed notebooks stay as they are)")
    joining = sub.add_parser("join", help="use the room's server from now on, in every terminal "
                             "and notebook (the line the instructor's classroom server prints)")
    joining.add_argument("url", metavar="URL", help="the room's address, e.g. http://192.168.1.20:5000")
    joining.add_argument("--basic-auth", action="store_true",
                         help="the room has one account per learner: ask for the password too")
    joining.add_argument("--name", default=None,
                         help="your name on the instructor's list (asked if left out)")
    sub.add_parser("leave", help="forget the joined room: back to this laptop's own server")
    checkup = sub.add_parser("doctor", help="check this machine is ready: one line per check")
    checkup.add_argument("--check", action="append", choices=doctor.CHECKS, default=None,
                         help="run only this check (repeatable)")
    checkup.add_argument("--min-free-gb", type=float, default=doctor.DEFAULT_MIN_FREE_GB,
                         help="free disk wanted, in GB")
    checkup.add_argument("--keep-server", action="store_true",
                         help="leave a local server the doctor started running")
    checkup.add_argument("--room", nargs="?", const="", default=None, metavar="URL",
                         help="check the room's server from this laptop instead (default: the "
                         "room joined): reachable, proxy, your credentials, what to try")
    spec = sub.add_parser("openapi", help="write the REST API as an OpenAPI 3.1 document")
    spec.add_argument("--output", default=None, help="file to write (default: openapi/mlflow-VERSION.json)")
    hub = sub.add_parser("hub", help="a workshop room: JupyterHub + the room's MLflow server, "
                         "one account per learner; Ctrl-C stops both (docs/instructor.md)")
    hub.add_argument("--roster", required=True, metavar="FILE",
                     help="learner names, one per line: one system user and MLflow account each")
    hub.add_argument("--backend-store-uri", default=None,
                     help="the MLflow server's database (default: SQLite in the kit's data folder)")
    hub.add_argument("--host", default="127.0.0.1",
                     help="where the Hub listens (default 127.0.0.1; 0.0.0.0 for a room's network)")
    hub.add_argument("--port", type=_port, default=8000, help="the Hub's port (default 8000)")
    hub.add_argument("--workers", type=int, default=None,
                     help="MLflow server worker processes (default: MLflow's own default)")
    hub.add_argument("--credentials-only", action="store_true",
                     help="only write the room's credentials file (for the Kubernetes room), start nothing")
    _add_check_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args)
    try:
        if args.command == "openapi":
            if args.output:
                _check_writable(Path(args.output))  # before seconds of generating the document
            from helpers import openapi

            print(f"Wrote {openapi.write(args.output)}.")
            return 0
        note = config.resolve_home_env()  # once, so JupyterLab and every kernel agree
        if note:
            print(note, file=sys.stderr)
        if args.command == "doctor" and args.room is not None:
            from helpers import room_check

            return 0 if room_check.run(args.room or None, say=_say) else 1
        if args.command == "doctor":
            return _doctor(args.check, args.keep_server, args.min_free_gb)
        if args.command in ("join", "leave"):
            return _join(args)
        if args.command == "serve" and args.classroom:
            return _classroom(args)
        if args.command == "hub":
            from helpers import classroom, hub

            if args.credentials_only:
                print(hub.write_room_credentials(classroom.read_roster(args.roster)))
                return 0
            return hub.serve(classroom.read_roster(args.roster),
                             backend_store_uri=classroom.uri_from_args(args.backend_store_uri),
                             host=args.host, port=args.port, workers=args.workers)
        if args.command == "serve":
            _refuse_room_options(args)
            return _serve(args.port, args.foreground)
        if args.command == "lab":
            return _lab(args.no_browser, args.fresh)
        if args.command == "status":
            from helpers import server

            print(server.status())
            return 0
        from helpers import server

        print(server.stop_kit_server())
        return 0
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (_Stop, KeyboardInterrupt):
        return 130


def _add_check_parser(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check", help="check your own request: predicted answer, cause, fix, corrected request",
        description="Check a request before (or after) it fails: a curl command (as an argument, "
        "or - for stdin), a raw HTTP/1.1 request, or a HAR file (every MLflow request in it). "
        "Exit status: 0 every request is predicted to succeed and store what was sent (or is "
        "valid with only server state left to decide), 1 one is predicted to fail or to store "
        "something else, 2 the input cannot be read.")
    check.add_argument("input", nargs="?", default=None, metavar="INPUT",
                       help="a curl command, a file (curl, raw HTTP or .har), or - for stdin")
    check.add_argument("--method", default=None, help="the method, with --url")
    check.add_argument("--url", default=None, help="the request's URL (instead of INPUT)")
    check.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                       help="a header, with --url (repeatable)")
    check.add_argument("--data", default=None,
                       help="the body, with --url (sent as is: no Content-Type is added)")
    check.add_argument("--server", default=None, metavar="URL",
                       help="settle server state (does the run exist?) with read-only lookups there")
    check.add_argument("--replay", action="store_true",
                       help="send the original and the corrected request to the kit's own local "
                       "server and show both answers")
    check.add_argument("--format", choices=("text", "json"), default="text")


def _check(args: argparse.Namespace) -> int:
    """`check`: 0 all predicted fine, 1 one predicted to fail or trap, 2 input unreadable."""
    from helpers.request_check import check, exit_status
    from helpers.request_input import InputError, from_flags, read_input

    try:
        if args.url:
            if args.input:
                raise InputError("Give either INPUT or --url, not both.")
            requests_ = [from_flags(args.method, args.url, args.header, args.data)]
        else:
            requests_ = read_input(*_read_check_input(args.input))
        replay_url = None
        if args.replay:
            note = config.resolve_home_env()
            if note:
                print(note, file=sys.stderr)
            from helpers import server

            handle = server.find_kit_server()
            if handle is None:
                raise KitError("No kit server is running to replay against: start it with "
                               "`python -m helpers serve`, then try again.")
            replay_url = handle.url
        reports = check(requests_, server=args.server, replay_url=replay_url,
                        progress=args.format == "text")
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nStopped (Ctrl-C) before the report was printed; " + (
            "the requests replayed so far went to the kit's local server only." if args.replay
            else "nothing was sent anywhere."), file=sys.stderr)
        return 130
    print(reports.to_json() if args.format == "json" else reports.to_text())
    return exit_status(reports)


def _read_check_input(given: str | None) -> tuple[bytes, Path | None, bytes | None, str]:
    """(the input's bytes, cwd for @file bodies, stdin for @-, name) from INPUT."""
    from helpers.request_input import InputError

    if given is None and sys.stdin.isatty():
        raise InputError("Nothing to check: paste a curl command as an argument (in quotes), "
                         "give a file, or pipe it in with -.")
    if given in (None, "-"):
        return sys.stdin.buffer.read(), Path.cwd(), None, ""
    path = Path(given)
    looks_like_file = "\n" not in given and not given.lstrip().lower().startswith("curl") \
        and len(given) < 4096
    if looks_like_file:
        try:
            return path.read_bytes(), path.resolve().parent, None, path.name
        except OSError as exc:
            raise InputError(f"Cannot read {given!r} ({exc.strerror or exc}): give a curl "
                             "command, a raw HTTP request or a HAR file.") from None
    return given.encode("utf-8"), Path.cwd(), None, ""


def _serve(port: int | None, foreground: bool) -> int:
    from helpers import server

    _catch_stop_signals()
    try:
        handle = server.start_server(port=port)  # a stop signal here stops the half-started server
    except _Stop:
        _ignore_stop_signals()
        _stop_all(None, None)
        print("\nStopped before the MLflow server was ready; nothing left running.")
        return 130
    if handle.source == "reused":
        print(f"Reusing the kit server already running at {handle.url}.")
    else:
        print(handle)
    if not foreground:
        return 0
    print("Press Ctrl-C to stop the server.", flush=True)
    try:
        while True:
            time.sleep(0.5)
    except _Stop:
        pass
    _ignore_stop_signals()
    _stop_all(None, handle)
    print("\nServer stopped." if handle.owned else "\nLeft the shared server running.")
    return 0


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except UnicodeEncodeError:  # a console that cannot show ✓/✗ (old Windows code pages)
        print(line.replace("✓", "OK").replace("✗", "FAIL").replace("—", "-").replace("›", ">"),
              flush=True)


def _doctor(checks: list[str] | None, keep_server: bool, min_free_gb: float) -> int:
    passed = doctor.run(_say, checks=checks, keep_server=keep_server, min_free_gb=min_free_gb)
    return 0 if passed else 1


def _join(args: argparse.Namespace) -> int:
    """`join URL`: the room for every later terminal and kernel, then its pre-check; `leave`."""
    from helpers import room

    if args.command == "leave":
        print(room.leave())
        return 0
    try:
        done = room.ask(args.url, args.name, args.basic_auth)
    except EOFError:
        raise KitError("Nothing was typed: run the line again and type your name"
                       + (" and password." if args.basic_auth else ".")) from None
    for line in done:
        print(line)
    from helpers import room_check

    config.bypass_proxy()  # the room just joined: its host into NO_PROXY for the check below
    return 0 if room_check.run(args.url, say=_say) else 1


def _refuse_room_options(args: argparse.Namespace) -> None:
    given = [name for name in ("backend_store_uri", "host", "advertise", "workers", "roster")
             if getattr(args, name) is not None] + (["allowed_hosts"] if args.allowed_hosts else []) \
        + (["basic_auth"] if args.basic_auth else [])
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        verb = "is" if len(given) == 1 else "are"
        raise KitError(f"{flags} {verb} for classroom mode only (add --classroom); the kit's own "
                       "server always listens on 127.0.0.1 with SQLite.")


def _classroom(args: argparse.Namespace) -> int:
    """The room's server in this terminal: print what learners run, stop on Ctrl-C/SIGTERM/SIGHUP."""
    from helpers import classroom

    roster = classroom.read_roster(args.roster) if args.roster else []
    room = classroom.build(backend_store_uri=classroom.uri_from_args(args.backend_store_uri),
                           host=args.host or "", port=args.port or classroom.DEFAULT_PORT,
                           allowed_hosts=args.allowed_hosts, basic_auth=args.basic_auth,
                           workers=args.workers, advertise=args.advertise, roster=roster)
    return classroom.serve(room)


def _lab(no_browser: bool, fresh: bool = False) -> int:
    """JupyterLab on 127.0.0.1, opened on the first notebook, with the kit server beside it.

    Both start at once (JupyterLab boots while MLflow migrates its store), so the notebook's
    first cell finds the server ready. One Ctrl-C (or SIGTERM, SIGHUP) stops both and every
    kernel; a second one during that cleanup changes nothing.
    """
    from helpers import server

    _catch_stop_signals()  # before any child starts: they inherit default dispositions
    jupyter: subprocess.Popen | None = None
    handle = None
    folder = NOTEBOOKS
    if fresh:
        from helpers import fresh_copies

        folder, note = fresh_copies.prepare()
        print(note, flush=True)
    try:
        jupyter, url, log_path = _start_jupyter(no_browser, folder)
        handle = server.start_server()
        print(handle, flush=True)
        _wait_for_jupyter(jupyter, url, log_path)
        print(f"JupyterLab is ready: {url}", flush=True)
        print("Press Ctrl-C once to stop JupyterLab and the MLflow server.", flush=True)
        code = jupyter.wait()
        print(f"JupyterLab exited (code {code}); stopping the MLflow server ...")
    except _Stop:
        print("\nStopping JupyterLab and the MLflow server ...", flush=True)
    finally:
        _ignore_stop_signals()
        _stop_all(jupyter, handle)
    print("Stopped. Nothing of the lab is left running.")
    return 0


def _start_jupyter(no_browser: bool, folder: Path = NOTEBOOKS) -> tuple[subprocess.Popen, str, Path]:
    """Start JupyterLab; return it, the URL of the first notebook, and its log file.

    The token goes to Jupyter in its environment (JUPYTER_TOKEN), never on its command line,
    which `ps` shows to every user of the machine; Jupyter's own log goes to a file.
    """
    from helpers import processes

    port = LAB_PORT if not processes.port_in_use(LAB_PORT) else processes.free_port()
    token = secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}/lab/tree/{FIRST_NOTEBOOK}?token={token}"
    # `-m jupyterlab`, not `-m jupyter lab`: the `jupyter` dispatcher runs whichever `jupyter-lab`
    # comes first on PATH, which can be another installation's.
    cmd = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={folder}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.app_settings_dir={LAB_SETTINGS}", FIRST_NOTEBOOK]
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; Jupyter refuses without it
    env = {**os.environ, "JUPYTER_TOKEN": token}
    # Kernels start as `python -m ipykernel_launcher`: this environment's python must come first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("PYTHONOPTIMIZE", None)  # kernels with -O would skip the kit's own checks too
    home = config.data_dir()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "jupyterlab.log"
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the token
    try:
        # Its own session: the terminal's Ctrl-C reaches only this process, which stops
        # Jupyter itself (no y/n prompt, no half-stopped kernels).
        jupyter = subprocess.Popen(cmd, cwd=folder, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=(os.name != "nt"))
    finally:
        os.close(log)
    return jupyter, url, log_path


def _wait_for_jupyter(jupyter: subprocess.Popen, url: str, log_path: Path,
                      timeout: float = 120.0) -> None:
    import requests

    status = url.split("/lab/tree/")[0] + "/api/status"
    token = url.rsplit("token=", 1)[1]
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        http.trust_env = False  # loopback: never through a proxy
        while time.monotonic() < deadline:
            if jupyter.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-10:])
                raise KitError(f"JupyterLab exited during startup (code {jupyter.returncode}); "
                               f"last lines of {log_path}:\n{tail}")
            with contextlib.suppress(requests.RequestException):
                if http.get(status, headers={"Authorization": f"token {token}"},
                            timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
    raise KitError(f"JupyterLab did not answer within {timeout:.0f} s; see {log_path}.")


def _stop_all(jupyter: subprocess.Popen | None, handle) -> None:
    """Stop JupyterLab (its kernels with it), then the server this command started, then any
    other process this command started (one it had just spawned when the signal came)."""
    import psutil

    from helpers import processes

    kernels: list[psutil.Process] = []
    if jupyter is not None and jupyter.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            kernels = psutil.Process(jupyter.pid).children(recursive=True)
        jupyter.terminate()  # Jupyter shuts its kernels down itself
        try:
            jupyter.wait(timeout=15)
        except subprocess.TimeoutExpired:
            processes.kill_tree(jupyter.pid)
            jupyter.wait(timeout=5)
        for kernel in kernels:
            processes.kill_tree(kernel.pid, grace=2)
    if handle is not None:
        handle.stop()
    for child in psutil.Process().children():
        processes.kill_tree(child.pid, grace=5)
        with contextlib.suppress(psutil.NoSuchProcess, ChildProcessError):
            os.waitpid(child.pid, 0)  # reap: no zombie left behind
    record = config.read_state()
    if record and not processes.is_kit_process(record):
        config.state_file().unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
