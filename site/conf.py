"""Sphinx configuration of the kit's website (built by tools/build_site.py, never by hand).

Sphinx + MyST-NB + sphinx-book-theme: every theme file, script and font ships in the installed
wheels, so the build and the built pages need no network. The notebooks are rendered with their
committed outputs (the ones strict nbval verified); nothing is executed.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

project = "MLflow 400 Lab"
author = "MLflow 400 Lab contributors"
copyright = "MLflow 400 Lab contributors"

# The repository on GitHub, "OWNER/REPO": set it here (or in SITE_REPOSITORY) once the kit is
# published, and every lesson page gets an "Open on Binder" link and the theme its launch button.
# Left empty, the pages offer only the local command.
repository = os.environ.get("SITE_REPOSITORY", "")
# Read by _ext/kit_pages.py for the header it adds under each lesson's title.
site_binder_url = (f"https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/"
                   if repository else "")

extensions = ["myst_nb", "kit_pages"]
root_doc = "index"
exclude_patterns = ["_includes"]

# Never execute: the committed outputs are the verified ones.
nb_execution_mode = "off"
# The committed widget outputs have no saved state; without a kernel they cannot render. Drop the
# widget view so the text fallback the kit writes ("its controls show in JupyterLab…") shows,
# and load no widget JavaScript (MyST-NB's default fetches require.js and the html-manager from CDNs).
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "application/vnd.jupyter.widget-state+json", None),
]
nb_merge_streams = True
# Show the text exactly as committed (no typographic quotes): quoted values are data here.
smartquotes = False
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
# MathJax (from a CDN) is added only to pages with math; none has any, and tests/test_site.py
# fails on any page that loads a script, style or image from another host.

html_theme = "sphinx_book_theme"
html_title = "MLflow 400 Lab"
html_static_path = ["_static"]
# The kit's own favicon (without one every page makes the browser ask for /favicon.ico: a 404).
html_favicon = "_static/favicon.svg"
# First: the kit's override of one theme component (see the comment in the file).
templates_path = ["_templates"]
html_css_files = ["site.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": bool(repository),
    "repository_url": f"https://github.com/{repository}" if repository else "",
    "repository_branch": "HEAD",
    "path_to_docs": "",
    "launch_buttons": {"binderhub_url": "https://mybinder.org" if repository else "",
                       "notebook_interface": "jupyterlab"},
    "navigation_with_keys": False,
}
# The theme's colour mode: light (the notebooks' HTML outputs are drawn for it); left empty, the
# theme script logs a console error on every page.
html_context = {"default_mode": "light"}
