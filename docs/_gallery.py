"""Settings of the examples gallery that conf.py names by import path.

Sphinx caches its configuration between builds only when every value
pickles; sphinx-gallery takes callables as "module.name" strings for that.
"""

from pathlib import Path


def reset_argv(gallery_conf, script_vars):
    """Command-line options of the examples that the documentation runs.

    The learning curves are drawn on scikit-learn's bundled 8x8 digits, so
    that the build downloads nothing and stays within a minute on 2 cores;
    no PNG is written beside the script (the gallery shows the figure).
    """
    if Path(script_vars["src_file"]).name == "plot_learning_curves.py":
        return ["--dataset", "digits", "--epochs", "15", "--output", ""]
    return []
