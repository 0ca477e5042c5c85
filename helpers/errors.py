"""The one exception family the kit raises at a learner, and how a notebook shows it.

A learner who mistypes a URL or stops the server should read one plain sentence, not a traceback
wall: in IPython, `install_notebook_handler()` prints a `KitError` as its message alone.
"""

from __future__ import annotations

import sys


class KitError(RuntimeError):
    """A problem the learner can fix, told in plain words (the message says what to do)."""


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
