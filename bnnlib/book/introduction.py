"""The Introduction's finding: the paper's three claims as our runs decide them, and how closely
our medians agree with the paper's — computed from the records by the functions the Conclusions
and Results pages use, so the three pages cannot disagree."""

from __future__ import annotations

from typing import Optional, Sequence

from ..protocol import Budget
from .claims import CLAIM_DETAIL, CLAIMS, VERDICT_KEYS
from .conclusions import decided_at
from .labels import dataset_name
from .records import epochs_bold
from .results import AGREEMENT_TEXT, overview_agreement, results_overview_by_setting

def finding(budget: Budget, requested: str, results_base: Optional[str], datasets: Sequence[str],
            alpha: float = 0.05) -> str:
    """The page's opening: each claim's verdict at ``budget`` with the number behind it, then the
    Results chapter's agreement with the paper's published numbers (Markdown). Its links name the
    built pages (.html): the book's build does not resolve links in a cell's Markdown output, as
    it does a Markdown cell's."""
    names = " and ".join(dataset_name(d) for d in datasets)
    decided = decided_at(budget.name, datasets, results_base, alpha)
    if decided is None:
        return (f"**What we found** is stated here once every final run of {names} is recorded with "
                f"{epochs_bold(budget)}; [Reproducing](08_reproducing.html) shows how far the runs are.")
    glue, tests = decided[0]["glue"], decided[0]["table"]
    lines = [f"**What we found.** After {epochs_bold(budget)}, on {names}, our runs decide the paper's "
             f"three claims as follows ([Conclusions](07_conclusions.html) gives every test):", ""]
    for claim, text in CLAIMS.items():
        significant = tests.loc[tests["claim"] == claim, "significant"]
        lines.append(f"* **{claim}** — {text}: **{glue[VERDICT_KEYS[claim]]}**; {int(significant.sum())} of "
                     f"{len(significant)} one-sided tests significant (Holm, {100 * alpha:g} %); {CLAIM_DETAIL[claim](glue)}.")
    overview = results_overview_by_setting(requested, results_base, [(d, b) for d in datasets for b in (False, True)])
    if not overview.empty:
        lines += ["", f"{overview_agreement(overview, AGREEMENT_TEXT, where='')} The [Results](04_results.html) chapter sets "
                      f"each configuration beside the paper's published numbers."]
    return "\n".join(lines)
