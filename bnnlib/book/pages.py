"""What every results-reading page does first (:func:`setup_page`), and the page it returns: the
budget and store it shows, where the data is, the setting it is about, and whether that
setting's dataset could be had (:meth:`Page.data_unavailable`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from IPython.display import HTML, Markdown, display

from ..protocol import Budget
from ..runner import DataOptions
from ..store import ResultsStore
from .labels import DATASET_NAMES, bn_slug, bn_with
from .records import budget_choice, open_store
from .render import style
from .toc import DATA_UNAVAILABLE, page_stem


@dataclass
class Page:
    """A page as :func:`setup_page` opened it: ``requested`` is the budget asked for ("best", …),
    ``budget`` and ``store`` the ones it shows; ``dataset`` and ``batch_norm`` the setting of a
    results page (None on the others)."""
    requested: str
    results_base: Optional[str]
    budget: Budget
    store: ResultsStore
    data: DataOptions
    device: str = "cpu"
    dataset: Optional[str] = None
    batch_norm: Optional[bool] = None
    available: bool = True
    budget_sentence: str = ""  # which budget the page shows, and why (budget_choice)

    @property
    def name(self) -> str:
        """The dataset's name: "Fashion-MNIST"."""
        return DATASET_NAMES[self.dataset]

    @property
    def bn_text(self) -> str:
        """"with" or "without" (BN)."""
        return bn_with(self.batch_norm)

    @property
    def slug(self) -> str:
        """The setting in a file name: "fashion-mnist_bn"."""
        return f"{self.dataset}_{bn_slug(self.batch_norm)}"

    def data_unavailable(self) -> None:
        """Say, in one admonition, that this page's dataset could not be had, and mark the output
        (:data:`~bnnlib.book.toc.DATA_UNAVAILABLE`): the pipeline tags its cell and hides the cells
        after it, whose sections would be empty headings. Later calls of the page show nothing."""
        self.available = False
        name = self.name
        display(HTML(
            f'<div class="admonition warning"><p class="admonition-title">{name} was not available where this book '
            f'was built</p><p>This page therefore shows no results. Where {name} can be had, provide it — with '
            f'internet it is downloaded; offline, point <code>BNNLIB_DATA_MIRROR</code> (or <code>--data-mirror</code>) '
            f"at a folder in torchvision's layout — and produce this page with "
            f'<code>python -m bnnlib book --only {page_stem(self.dataset, self.batch_norm)}</code>.</p></div>'),
            metadata={DATA_UNAVAILABLE: True})

    def caption(self, text: str) -> None:
        """A figure's caption (Markdown), where the page shows its figure."""
        if self.available:
            display(Markdown(text))


def setup_page(budget: str, results_base: Optional[str], data_root: Optional[str], data_mirror: Optional[str],
               needs: Sequence[tuple] = (), grid_only: bool = False, per_setting: Optional[str] = None,
               choose: Optional[Callable[[str, Optional[str]], Tuple[Budget, ResultsStore]]] = None,
               device: str = "cpu", dataset: Optional[str] = None, batch_norm: Optional[bool] = None,
               announce: bool = True) -> Page:
    """What every results-reading page does first: the figure style, the budget and store it
    shows (:func:`~bnnlib.book.records.open_store` of ``needs``, or ``choose(budget, results_base)``
    for a page whose runs are not final runs or grids), a sentence saying which budget and why
    (shown here, or with ``announce=False`` kept as ``budget_sentence`` for the page's closing
    provenance), and where the data is."""
    style()
    if choose is None:
        budget_info, store = open_store(budget, results_base, needs=needs, grid_only=grid_only)
    else:
        budget_info, store = choose(budget, results_base)
    sentence = budget_choice(budget, budget_info, per_setting)
    if announce:
        display(Markdown(sentence))
    return Page(budget, results_base, budget_info, store, DataOptions(data_root, data_mirror), device, dataset,
                batch_norm, budget_sentence=sentence)
