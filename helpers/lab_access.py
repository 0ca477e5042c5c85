"""What makes the Request Lab usable by keyboard, screen reader and in any JupyterLab theme.

ipywidgets 8 has no traits for ARIA attributes, focus styles or live regions (docs/development.md
lists what it gets wrong), so the lab uses what it does have: a `description` renders as a
<label for=...>; `Select` is a real <select>; `HTML` widgets carry headings, the live region and
one stylesheet scoped to `.lab400-lab`. `helpers.widgets` arranges these; this module holds them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import ipywidgets as widgets

from helpers.display import response_summary, status_line
from helpers.wire import Exchange

#: The lab's own CSS, scoped to `.lab400-lab`. Every colour is a JupyterLab theme variable, so the
#: Light and Dark themes both hold their contrast. Focus is a 2px ring in the brand colour drawn
#: outside the control, on the page background rather than the control's own colour. The picked
#: option of a picker is bold and ticked (the tick's alternative text is empty, so it stays out of
#: the option's name), not only shaded. A value box's label is its accessible name ("key value"),
#: hidden from view since the checkbox beside it shows the field's name.
STYLE = """<style>
.lab400-lab { border: 1px solid var(--jp-border-color1); color: var(--jp-ui-font-color1); }
.lab400-lab :is(button, input, textarea, select, summary):focus-visible,
.lab400-lab :is(input, textarea, select):focus {
  outline: 2px solid var(--jp-brand-color1) !important; outline-offset: 2px; }
.lab400-lab .lab400-h { font-size: var(--jp-content-font-size2); font-weight: bold;
  margin: 6px 0 2px; color: var(--jp-ui-font-color0); }
.lab400-lab .lab400-muted { color: var(--jp-ui-font-color2); }
.lab400-lab .lab400-value .widget-label {
  position: absolute !important; width: 1px !important; height: 1px !important;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.lab400-lab .lab400-picker { flex-direction: column; align-items: flex-start; width: auto;
  margin-right: 12px; }
.lab400-lab .lab400-picker .widget-label { font-weight: bold; }
.lab400-lab .lab400-picker select { flex: 0 0 auto; height: auto; overflow-y: auto; }
.lab400-lab .lab400-picker option:checked { font-weight: bold;
  background: var(--jp-brand-color1) linear-gradient(var(--jp-brand-color1), var(--jp-brand-color1));
  color: var(--jp-ui-inverse-font-color0); }
.lab400-lab .lab400-picker option:checked::before { content: "\\2713\\00a0" / ""; }
.lab400-lab .lab400-status { font-weight: bold; }
</style>"""

_MAX_DETAIL = 300  # characters of the server's message read out after each Send


def picker(options: Iterable[str], name: str) -> widgets.Select:
    """A list box showing every option, named `name`: one click or arrow key picks, one Tab stop,
    and a screen reader hears the group's name and the option marked selected (ToggleButtons
    expose neither)."""
    options = list(options)
    box = widgets.Select(options=options, rows=len(options), description=name, tooltip="",
                         style={"description_width": "initial"}, layout=widgets.Layout(width="auto"))
    box.add_class("lab400-picker")
    box.observe(lambda change: setattr(box, "rows", len(change.new)), names="options")
    return box


def no_null_titles(widget: widgets.Widget) -> None:
    """Give every widget in the tree an empty tooltip: ipywidgets 8 writes None as title="null",
    which a screen reader may read and a mouse user sees."""
    if getattr(widget, "tooltip", "") is None:
        widget.tooltip = ""
    for child in getattr(widget, "children", ()):
        no_null_titles(child)


def heading(text: str) -> str:
    """A section heading inside an HTML widget (screen readers jump between headings)."""
    return f'<h3 class="lab400-h">{html.escape(text)}</h3>'


def live_region(text: str) -> str:
    """HTML for the status line a screen reader reads out when it changes; focus is not moved."""
    return f'<div role="status" aria-live="polite" aria-atomic="true">{html.escape(text)}</div>'


def answer_sentence(number: int, exchange: Exchange) -> str:
    """E.g. "Answer 3: 400 Bad Request. Content-Type header is missing.": numbered, so the same
    answer twice is still news; the server's message without its repeated reason phrase."""
    line = status_line(exchange)
    first, _, detail = response_summary(exchange).partition("\n")
    detail = (detail or first[len(line):].lstrip(" ·")).strip()
    if exchange.reason and detail.startswith(f"{exchange.reason}. "):
        detail = detail[len(exchange.reason) + 2:]
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL - 1] + "…"
    if detail and detail[-1] not in ".!?…":
        detail += "."
    return f"Answer {number}: {line}. {detail}".strip()
