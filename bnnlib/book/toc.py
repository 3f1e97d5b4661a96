"""The book's table of contents: its chapters in order, the results pages the template becomes,
and which pages show each of their settings at its own best budget."""

from __future__ import annotations

from typing import List, Optional, Tuple

from .labels import bn_slug, data_label

TEMPLATE = "04_results_template.ipynb"
RESULT_PAGES: List[Tuple[str, bool]] = [("mnist", False), ("mnist", True), ("fashion-mnist", False),
                                        ("fashion-mnist", True), ("cifar10", False), ("cifar10", True)]
CHAPTERS = ["01_introduction.ipynb", "02_methods.ipynb", "03_grid_search.ipynb", "04_results.ipynb", TEMPLATE, "05_learning_curves.ipynb",
            "06_batch_norm.ipynb", "06c_mechanism.ipynb", "06b_deployment.ipynb", "07_conclusions.ipynb",
            "08_reproducing.ipynb"]


def result_page_name(dataset: str, batch_norm: bool) -> str:
    return f"04_results_{dataset.replace('-', '_')}_{bn_slug(batch_norm)}.ipynb"


def page_stem(dataset: str, batch_norm: bool) -> str:
    """The results page of a dataset and BN setting, as ``python -m bnnlib book --only`` takes it."""
    return result_page_name(dataset, batch_norm).removesuffix(".ipynb")



def page_of_label(label: str) -> Optional[str]:
    """The results page a table's data label names ("MNIST, no BN (100 epochs)": 04_results_mnist_nobn), or None."""
    for dataset, batch_norm in RESULT_PAGES:
        if label.startswith(f"{data_label(dataset, batch_norm)} ("):
            return page_stem(dataset, batch_norm)
    return None

#: pages that show each unit — a (dataset, BN) setting, or a dataset with both BN settings — at
#: its own best budget (the others show all their settings at one budget)
PAGE_UNITS = {
    "04_results": [[(d, b)] for d in ("mnist", "fashion-mnist") for b in (False, True)],
    "05_learning_curves": [[(d, b)] for d in ("mnist", "fashion-mnist") for b in (False, True)],
    "06_batch_norm": [[(d, False), (d, True)] for d in ("mnist", "fashion-mnist")],
    "06b_deployment": [[(d, b)] for d in ("mnist", "fashion-mnist") for b in (False, True)],
}


#: pages that set the paper budget's runs so far beside a setting still shown at another budget, and
#: which runs: "configurations" (:func:`records.paper_finals_so_far`), "figure" (its sign configurations, on
#: the setting of the paper's figure only), "settings" (:func:`records.recorded_so_far`)
SHOWN_SO_FAR = {"04_results_template": "configurations", "04_results": "configurations",
                "05_learning_curves": "figure", "07_conclusions": "settings"}


#: the mark of a page whose dataset could not be had: on the output that says so
#: (:meth:`~bnnlib.book.pages.Page.data_unavailable`), then as the tag of its cell, after which
#: the pipeline hides every cell from readers
DATA_UNAVAILABLE = "data-unavailable"
