"""The one exception family the kit raises at a learner, and how a notebook shows it.

A learner who mistypes a URL or stops the server should read one plain sentence, not a traceback
wall: in IPython, `install_notebook_handler()` prints a `KitError` as its message alone.
Every exception class the kit raises at a learner is defined here (stdlib only, cheap to import).
"""

from __future__ import annotations

import sys


class KitError(RuntimeError):
    """A problem the learner can fix, told in plain words (the message says what to do)."""


# One subclass per place a learner meets a problem, so tests and callers can catch exactly one.
class ConfigError(KitError):
    """A setting the kit cannot use as given (said in one sentence, with what to do)."""


class ServerError(KitError):
    """A server problem, told in one plain sentence (plus log lines where they help)."""


class ServerUnreachable(KitError):
    """No answer from the server: refused, unresolvable, timed out, or not a valid URL."""


class UnknownEndpoint(KitError, LookupError):
    """No MLflow REST endpoint (or more than one) matches what was asked for."""


class LabError(KitError, LookupError):
    """A lab control asked for by a name it does not have."""


class RecorderError(KitError):
    """The recorder could not start or has no server to forward to."""


class ClassroomError(KitError):
    """Classroom mode cannot start as asked; the message says what to change."""


class InputError(KitError):
    """A pasted request (curl, raw HTTP, HAR) cannot be read; the message names the token and
    its place."""


def install_notebook_handler() -> None:
    """In an IPython kernel, show `KitError`s as one line instead of a traceback."""
    ipython = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if ipython is None:
        return

    def _show(shell, etype, value, tb, tb_offset=None):  # IPython's custom-exc signature
        print(f"{etype.__name__}: {value}", file=sys.stderr)

    ipython.set_custom_exc((KitError,), _show)


class NotModelled(Exception):
    """A step of the server the model cannot run (preflight turns it into a "not-modelled"
    finding; it never reaches a learner as an error)."""
