"""The kit server's records: the state file, the launch lock and the running lock.

`server.json` (config.state_file) names the kit's server so every notebook, the CLI and the tests
reuse it; `server.lock` serialises launches; `server.running` is held by the server process for
its whole life and repeats its record, so a lost or damaged state file never leads to a second
server on the same SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from helpers import config
from helpers.errors import ServerError
from helpers.processes import is_kit_process

#: Held (flock) by the running server process itself for its whole life: a server that is
#: paused, overloaded or has lost its state file still holds it, so no second one is launched
#: on the same SQLite file. The file also names the server, in case server.json is lost.
RUNNING_LOCK = "server.running"


@contextlib.contextmanager
def launch_lock(wait: float = 180.0) -> Iterator[None]:
    """An exclusive lock on `<data dir>/server.lock` (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: two simultaneous first starts are rare enough there
        yield
        return
    home = config.data_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = open(home / "server.lock", "a")
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} is not writable ({oserror_reason(exc)}): "
                          f"set {config.HOME_ENV} to a writable folder.") from None
    deadline = time.monotonic() + wait
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError("Another process has been starting the kit server for too "
                                      "long; run `python -m helpers status`.") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def hold_running_lock(home: Path) -> IO[str] | None:
    """Open and lock `<home>/server.running` for the server about to start (POSIX only)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        handle = open(home / RUNNING_LOCK, "a+")
    except OSError as exc:
        raise ServerError(f"The kit's data directory {home} is not writable ({oserror_reason(exc)}): "
                          f"set {config.HOME_ENV} to a writable folder.") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ServerError(f"A kit server is already running with its data in {home} but does "
                          "not answer (paused or overloaded?): wait, or stop it with "
                          "`python -m helpers stop`.") from None
    return handle


def write_running_record(handle: IO[str], state: dict) -> None:
    """Replace the record in the held running lock (read by `running_record` if server.json is lost)."""
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(state))
    handle.flush()


def running_record(home: Path | None = None) -> dict | None:
    """The record a live server holds in its running lock, if the lock is held and readable."""
    try:
        import fcntl
    except ImportError:
        return None
    path = (home or config.data_dir()) / RUNNING_LOCK
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: a server that we started is alive
                record = json.loads(handle.read() or "null")
                return record if config.valid_state(record) else None
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except (OSError, ValueError):
        return None


def alive_record() -> dict | None:
    """The recorded (or running-lock) server when its process is ours and alive, answering or not."""
    for record in (config.read_state(), running_record()):
        if record and is_kit_process(record):
            return record
    return None


def write_state(state: dict) -> None:
    """Write the state file atomically: a reader sees the old record or the new one, never half."""
    path = config.state_file()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as out:
            out.write(json.dumps(state, indent=2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def forget_state(path: Path, pid: int | None) -> str | None:
    """Remove the state file if it still names `pid` (or is damaged); the reason if it cannot."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return oserror_reason(exc)
    try:
        recorded = json.loads(text)
    except ValueError:
        recorded = None
    if pid is not None and isinstance(recorded, dict) and recorded.get("pid") not in (pid, None):
        return None  # another server's record now: not ours to remove
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        return oserror_reason(exc)
    return None


def oserror_reason(exc: OSError) -> str:
    """The short reason for a file error ("No space left on device"), for a one-sentence message."""
    return exc.strerror or type(exc).__name__
