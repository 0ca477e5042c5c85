"""Command line: `python -m helpers serve | status | stop | lab`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import server
from helpers.errors import KitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start (or reuse) the kit's local MLflow server")
    serve.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: free)")
    serve.add_argument("--foreground", action="store_true",
                       help="stay attached and stop the server on Ctrl-C")
    sub.add_parser("status", help="say which server the kit would use")
    sub.add_parser("stop", help="stop the kit's local server")
    lab = sub.add_parser("lab", help="start the server and JupyterLab; Ctrl-C stops both")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args.port, args.foreground)
        if args.command == "lab":
            return _lab(args.no_browser)
        if args.command == "status":
            print(server.status())
            return 0
        print(server.stop_kit_server())
        return 0
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _serve(port: int | None, foreground: bool) -> int:
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


def _lab(no_browser: bool) -> int:
    """JupyterLab on 127.0.0.1, opened on the first notebook, with the kit server beside it."""
    handle = server.start_server()
    print(handle)
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.root_dir={notebooks}", "00_start_here.ipynb"]
    if no_browser:
        cmd.append("--no-browser")
    # Jupyter gets its own process group so one Ctrl-C here stops it without its y/n prompt.
    jupyter = subprocess.Popen(cmd, start_new_session=(os.name != "nt"))
    try:
        jupyter.wait()
    except KeyboardInterrupt:
        print("\nStopping JupyterLab and the MLflow server ...")
        jupyter.terminate()
        try:
            jupyter.wait(timeout=15)
        except subprocess.TimeoutExpired:
            jupyter.kill()
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
