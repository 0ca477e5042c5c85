"""Command line: `python -m helpers serve | status | stop | lab | doctor`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import doctor
from helpers.errors import KitError

# `helpers.server` (requests, psutil) is imported where it is used, so that `doctor` (standard
# library only) also runs, and says what is missing, in a Python that lacks them.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start (or reuse) the kit's local MLflow server")
    serve.add_argument("--port", type=int, default=None,
                       help="port on 127.0.0.1 (default: free; 5000 with --classroom)")
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
    checkup = sub.add_parser("doctor", help="check this machine is ready: one line per check")
    checkup.add_argument("--check", action="append", choices=doctor.CHECKS, default=None,
                         help="run only this check (repeatable)")
    checkup.add_argument("--min-free-gb", type=float, default=doctor.DEFAULT_MIN_FREE_GB,
                         help="free disk wanted, in GB")
    checkup.add_argument("--keep-server", action="store_true",
                         help="leave a local server the doctor started running")
    args = parser.parse_args(argv)
    try:
        if args.command == "doctor":
            return _doctor(args.check, args.keep_server, args.min_free_gb)
        if args.command == "serve" and args.classroom:
            return _classroom(args)
        if args.command == "serve":
            _refuse_room_options(args)
            return _serve(args.port, args.foreground)
        if args.command == "lab":
            return _lab(args.no_browser)
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


def _serve(port: int | None, foreground: bool) -> int:
    from helpers import server

    handle = server.start_server(port=port)
    if handle.source == "reused":
        print(f"Reusing the kit server already running at {handle.url}.")
    else:
        print(handle)
    if not foreground:
        return 0
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    print("Press Ctrl-C to stop the server.")
    try:
        while not stop["now"]:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    handle.stop()
    print("Server stopped." if handle.owned else "Left the shared server running.")
    return 0


def _doctor(checks: list[str] | None, keep_server: bool, min_free_gb: float) -> int:
    def say(line: str) -> None:
        try:
            print(line, flush=True)
        except UnicodeEncodeError:  # a console that cannot show ✓/✗ (old Windows code pages)
            print(line.replace("✓", "OK").replace("✗", "FAIL").replace("—", "-"), flush=True)

    passed = doctor.run(say, checks=checks, keep_server=keep_server, min_free_gb=min_free_gb)
    return 0 if passed else 1


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


def _lab(no_browser: bool) -> int:
    """JupyterLab on 127.0.0.1, opened on the first notebook, with the kit server beside it."""
    from helpers import server

    handle = server.start_server()
    print(handle)
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.root_dir={notebooks}", "00_start_here.ipynb"]
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; Jupyter refuses without it
    # Jupyter gets its own process group so one Ctrl-C here stops it without its y/n prompt.
    jupyter = subprocess.Popen(cmd, cwd=notebooks, start_new_session=(os.name != "nt"))
    # A closed terminal (SIGHUP) or a `kill` (SIGTERM) must clean up like Ctrl-C does: both
    # children live in their own sessions and would otherwise outlive this process.
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _exit_on_signal)
    try:
        jupyter.wait()
    except (KeyboardInterrupt, SystemExit):
        print("\nStopping JupyterLab and the MLflow server ...")
    finally:
        if jupyter.poll() is None:
            jupyter.terminate()
            try:
                jupyter.wait(timeout=15)
            except subprocess.TimeoutExpired:
                jupyter.kill()
        handle.stop()
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
