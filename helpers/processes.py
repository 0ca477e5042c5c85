"""Processes and TCP ports on this machine: find a free port, see who listens, stop a tree.

The kit signals a process only when it can prove the process is one it started (`is_kit_process`),
and never the caller's own process or group: these are the only places it ends processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

import psutil

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = LOCALHOST) -> bool:
    """True when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def is_kit_process(record: dict) -> bool:
    """True only when the recorded pid is alive with the recorded create time and command line.

    A pid alone proves nothing (recycled after a reboot, or a hand-edited file naming pid 1 or
    the learner's shell): all three must match before the kit signals anything.
    """
    pid, created, cmdline = record.get("pid"), record.get("create_time"), record.get("cmdline")
    if not (isinstance(pid, int) and pid > 1 and isinstance(created, (int, float))
            and isinstance(cmdline, list) and cmdline):
        return False
    if pid in (os.getpid(), os.getppid()):
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - created) > 0.5 or proc.cmdline() != cmdline:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def paused(pid: int) -> bool:
    """True when the process is stopped (Ctrl-Z, SIGSTOP, a debugger): alive, and silent."""
    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except psutil.Error:
        return False


def listens(pid: int, port: int) -> bool:
    """True when `pid` or one of its children listens on `port` (True when we may not look)."""
    try:
        root = psutil.Process(pid)
        for proc in (root, *root.children(recursive=True)):
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    return True
    except psutil.AccessDenied:
        return True
    except psutil.NoSuchProcess:
        return False
    return False


def kill_tree(pid: int, grace: float = 5.0) -> None:
    """Terminate a process and all its descendants; kill what is left after `grace` seconds."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    if hasattr(os, "killpg"):
        # The whole group only when the process leads its own group (as the kit starts its
        # servers) and it is not ours: never the caller's shell or terminal.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == pid and group != os.getpgrp():
                os.killpg(group, signal.SIGTERM)
    for proc in procs:
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.resume()  # a paused (SIGSTOPped) server cannot act on SIGTERM
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)


def new_group_kwargs() -> dict:
    """Popen arguments that start the child in its own process group, which `kill_tree` may
    signal as a whole (it never signals the caller's own group)."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}
