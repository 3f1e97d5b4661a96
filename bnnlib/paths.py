"""Where the project's folders are: one home for every path bnnlib derives by itself.

In a checkout (an editable install, the normal case: the book's chapters, results and figures
live beside the package) the project root is the checkout; installed elsewhere (a wheel, where
``bnnlib/`` sits in site-packages) it is the folder the command runs from.
"""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "bnnlib").is_dir():
        return checkout
    return Path.cwd()


PROJECT_ROOT = project_root()
RESULTS_DIR = PROJECT_ROOT / "results"
CHAPTERS_DIR = PROJECT_ROOT / "chapters"
FIGURES_DIR = PROJECT_ROOT / "figures"
DATA_DIR = PROJECT_ROOT / "data"
