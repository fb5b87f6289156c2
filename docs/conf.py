"""Sphinx configuration of the ppl_models documentation.

Build (from the repository root, with the ``docs`` extra installed)::

    python -m sphinx -W -b html docs docs/_build/html                      # full tutorials
    PPL_MODELS_SMOKE=1 python -m sphinx -W -b html docs docs/_build/html   # seconds each

The tutorials are the jupytext "percent" scripts of ``tutorials/`` (``docs/tutorials`` is
a link to that folder, not a copy): myst-nb reads them through jupytext, runs each in a
fresh kernel on every build and renders the cells with their printed numbers and
figures. A tutorial that raises fails the build. The API pages are written at build time
by ``_ext/ppl_docs.py``, one per public module of ``ppl_models``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

SMOKE = os.environ.get("PPL_MODELS_SMOKE") == "1"

project = "ppl_models"
author = "ppl_models developers"
copyright = "ppl_models developers, Apache-2.0"
try:
    from importlib.metadata import version as _version

    release = _version("ppl-models")
except Exception:  # an uninstalled checkout: the docs still build from sys.path
    release = "0.1.0"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
    # MathJax 3 copied into _static, so that the math renders offline too.
    "sphinx-mathjax-offline",
    "ppl_docs",
]

# Sources: Markdown and reStructuredText pages, and the tutorials as percent scripts.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".py": "myst-nb"}
nb_custom_formats = {".py": "ppl_docs.read_tutorial"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_ext",
    "_static",
    "conf.py",
    "**/__pycache__",
    "**/.ipynb_checkpoints",
]

# Every cross-reference is checked (nitpicky): a reference to a ppl_models name, or to
# a name of an installed package, that does not exist is an error under -W. Names of
# types written in prose ("array_like", "Figure") are let through by ppl_docs.
nitpicky = True

# ---- the tutorials (myst-nb) -------------------------------------------------------------
# "force": every build runs every tutorial, so the pages show what the code does now.
nb_execution_mode = os.environ.get("PPL_MODELS_DOCS_EXECUTE", "force")
nb_execution_raise_on_error = True  # a tutorial that raises fails the build
nb_execution_show_tb = True  # ... and its traceback is in the build log
nb_execution_timeout = 600 if SMOKE else 3 * 3600  # seconds per cell
nb_execution_in_temp = True  # whatever a tutorial writes lands in a temporary folder
nb_merge_streams = True
# Standard error carries progress bars, Pyro's log lines and library warnings: noise on a
# page. It is dropped from the pages; the tutorials state what they check in print().
nb_output_stderr = "remove"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# ---- the API pages (autodoc + napoleon over the numpydoc docstrings) --------------------
autodoc_member_order = "bysource"  # a module's __all__ order
autodoc_typehints = "none"  # the numpydoc sections give the types, with shapes
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True

# ---- HTML --------------------------------------------------------------------------------
html_theme = "furo"
html_title = "ppl_models"
html_static_path = ["_static"]
html_css_files = ["ppl_models.css"]
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
pygments_style = "friendly"
