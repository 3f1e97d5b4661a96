"""What every results-reading page does first (:func:`setup_page`)."""

from __future__ import annotations

from typing import Optional, Sequence

from IPython.display import Markdown, display

from ..runner import DataOptions
from .records import budget_choice, open_store
from .render import style



def setup_page(budget: str, results_base: Optional[str], data_root: Optional[str], data_mirror: Optional[str],
               needs: Sequence[tuple] = (), grid_only: bool = False, per_setting: Optional[str] = None):
    """What every results-reading page does first: the figure style, the budget and store it
    shows (:func:`open_store`), a sentence saying which budget and why, and where the data is.
    Returns (Budget, ResultsStore, DataOptions)."""
    style()
    budget_info, store = open_store(budget, results_base, needs=needs, grid_only=grid_only)
    display(Markdown(budget_choice(budget, budget_info, per_setting)))
    return budget_info, store, DataOptions(data_root, data_mirror)
