"""Sphinx configuration of seqclf's documentation.

Build it from the repository root with ``make -C docs html`` (or
``sphinx-build -W -b html docs docs/_build/html``) after building seqclf
(``pip install -e ".[docs]"``): autodoc imports the compiled package.
"""

import re
import sys
from pathlib import Path

import seqclf

ROOT = Path(__file__).resolve().parents[1]
# For the gallery settings in _gallery.py.
sys.path.insert(0, str(Path(__file__).resolve().parent))

project = "seqclf"
author = "the seqclf developers"
copyright = f"2026, {author}"
release = seqclf.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# sphinx-gallery writes its timing table at the top; nothing links to it.
exclude_patterns = ["_build", "sg_execution_times.rst"]
templates_path = ["_templates"]

# Markdown pages (the user guide, the changelog): $...$ math, ::: fences,
# and anchors for their headings so that pages can link to sections.
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_typehints = "none"
# The class template documents every method in full (autodoc's members);
# numpydoc's summary tables of them would list them twice.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Only the quick examples run in the build: the tutorials' models take
    # about an hour, and the others need sktime or the system's fortunes.
    "filename_pattern": r"/plot_",
    "reset_argv": "_gallery.reset_argv",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"seqclf {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False


def _unlink_sklearn_refs(app, what, name, obj, options, lines):
    """Show scikit-learn's :ref: links in inherited docstrings as text.

    Methods inherited from scikit-learn (``score``, ``fit_transform``, ...)
    keep their docstrings, whose :ref: roles name labels of scikit-learn's
    own user guide; this site has none of them, and -W would fail on each.
    """
    if not getattr(obj, "__module__", "").startswith("sklearn"):
        return
    lines[:] = [_SKLEARN_REF.sub(lambda m: m.group(1).strip(), line) for line in lines]


_SKLEARN_REF = re.compile(r":ref:`([^`<]+?)(?:\s*<[^>]*>)?`")


def setup(app):
    app.connect("autodoc-process-docstring", _unlink_sklearn_refs)
