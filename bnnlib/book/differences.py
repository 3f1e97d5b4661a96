"""Where a results page's medians part from the paper's, and what we measured of why: for each
configuration whose inter-quartile range does not overlap the paper's, whether the seeds of both
sides explain the gap (:func:`~bnnlib.book.claims.median_gaps`), whether our grid search chose
the paper's (init, lr), and how much our runs still gained in their last ten epochs."""

from __future__ import annotations

from typing import Optional

import pandas as pd
from IPython.display import Markdown, display

from ..protocol import epoch_records, final_configs
from .claims import SEED_Z, median_gaps
from .evaluation_check import bias_sentence, check_runs
from .labels import init_and_lr
from .pages import Page
from .paper import paper_selection
from .records import epochs_label
from .render import html_table
from .results import AGREEMENT, Finals, paper_comparison

#: the epochs over which "still rising" is measured: the gain of the best accuracy so far
LATE_EPOCHS = 10


def late_gain(page: Page, selection: pd.DataFrame) -> pd.DataFrame:
    """Per rule × setting, the median over seeds of how much the best test accuracy so far rose in
    the last :data:`LATE_EPOCHS` epochs (0: each seed's best came earlier). Columns algorithm,
    weights, activation, gain."""
    configs = final_configs(selection, page.dataset, page.batch_norm, page.budget, page.device)
    epochs = epoch_records(page.store, configs, page.budget)
    if epochs.empty:
        return pd.DataFrame(columns=["algorithm", "weights", "activation", "gain"])
    last = int(epochs["epoch"].max())
    keys = ["run_id", "algorithm", "weights", "activation"]
    best_then = epochs[epochs["epoch"] <= last - LATE_EPOCHS].groupby(keys)["test_accuracy"].max()
    best_now = epochs.groupby(keys)["test_accuracy"].max()
    gain = (best_now - best_then).rename("gain").reset_index()
    return gain.groupby(["algorithm", "weights", "activation"])["gain"].median().reset_index()


def differences_table(page: Page, finals: Finals, comparison: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One row per configuration whose IQR does not overlap the paper's: Δ (points), z (the gap in
    standard errors of the two medians), the (init, lr) our grid search chose beside the paper's,
    and the gain in the last epochs. ``comparison``: the page's :func:`paper_comparison`, where
    already computed."""
    selection, summary = finals
    if comparison is None:
        comparison = paper_comparison(summary, page.dataset, page.batch_norm)
    apart = comparison[comparison[AGREEMENT] == "no"][["setting", "algorithm", "Δ (points)"]]
    if apart.empty:
        return apart
    gaps = median_gaps(summary, page.dataset, page.batch_norm)[["setting", "algorithm", "z"]]
    chosen = selection.merge(paper_selection(page.batch_norm), on=["algorithm", "weights", "activation"],
                             suffixes=("", "_paper"))
    chosen = chosen.merge(late_gain(page, selection), on=["algorithm", "weights", "activation"], how="left")
    chosen["setting"] = chosen["weights"] + " " + chosen["activation"]
    table = apart.merge(gaps, on=["setting", "algorithm"], how="left").merge(chosen, on=["setting", "algorithm"],
                                                                             how="left")
    same = (table["init"] == table["init_paper"]) & (table["lr"] == table["lr_paper"])
    return pd.DataFrame({
        "setting": table["setting"], "algorithm": table["algorithm"], "Δ (points)": table["Δ (points)"],
        "z": table["z"].map(lambda z: f"{z:+.1f}"),
        "seeds explain it": ["yes" if abs(z) <= SEED_Z else "no" for z in table["z"]],
        "(init, lr): ours / the paper's": [init_and_lr(i, lr) + (" (same)" if s else f" / {init_and_lr(ip, lp)}")
                                           for i, lr, ip, lp, s in zip(table["init"], table["lr"], table["init_paper"],
                                                                       table["lr_paper"], same)],
        f"gain, last {LATE_EPOCHS} epochs (points)": table["gain"].map(lambda g: f"{100 * g:.2f}" if g == g else "–"),
    }).assign(_same=same.to_numpy())


def _count(k: int) -> str:
    return "**none**" if k == 0 else f"**{k}**"


def explained_sentence(table: pd.DataFrame, epochs: str) -> str:
    """How many of :func:`differences_table`'s configurations each measured cause could explain:
    the seeds (|z| within :data:`~bnnlib.book.claims.SEED_Z`), else another (init, lr) than the
    paper's, else neither — each count stated, "none" where it is 0, and each clause saying what
    its count means (a count of none is not followed by the reason it would have had)."""
    seeds = table["seeds explain it"] == "yes"
    other_choice = ~seeds & ~table["_same"]
    n, k, m = len(table), int(seeds.sum()), int(other_choice.sum())
    left = n - k - m
    them = "them" if n > 1 else "it"
    error = (f"{SEED_Z:g} standard errors of their difference (z; each median's error from its seeds' quartiles, "
             f"the paper's from its box plot)")
    if k == 0:
        seed_part = f"The seeds do not explain {them}: the two medians lie further apart than {error}."
    else:
        count = "all of them" if k == n > 1 else f"{_count(k)} of them" if n > 1 else "it"
        seed_part = (f"The seeds could explain {count}: the two medians lie within {error}, so another draw of the "
                     f"seeds on either side could close the gap.")
    rest = n - k
    if rest == 0:
        return (f"After {epochs}, the inter-quartile range{'s' if n > 1 else ''} of **{n}** configuration"
                f"{'s' if n > 1 else ''} {'do' if n > 1 else 'does'} not overlap the paper's. {seed_part}")
    of_rest = "the rest" if k else them
    if m == 0:
        subject = "it trains" if of_rest == "it" else "they train"
        choice_part = f"The hyperparameters do not explain {of_rest}: {subject} the paper's (init, lr)."
    else:
        count = ("all of " + of_rest if m == rest > 1 else of_rest if m == rest else f"**{m}** of {of_rest}")
        choice_part = (f"The hyperparameters could explain {count}: our grid search chose another (init, lr) than "
                       f"the paper's ([Grid search](03_grid_search.html)), so the final runs train another "
                       f"configuration.")
    return (f"After {epochs}, the inter-quartile range{'s' if n > 1 else ''} of **{n}** configuration"
            f"{'s' if n > 1 else ''} {'do' if n > 1 else 'does'} not overlap the paper's. {seed_part} {choice_part} "
            f"That leaves {_count(left)} that neither explains.")


def rising_sentence(table: pd.DataFrame) -> str:
    """Whether the configurations still rose at the end of the budget, and in how many by as much
    as their gap to the paper ("" where no gain is known)."""
    gains = pd.to_numeric(table[f"gain, last {LATE_EPOCHS} epochs (points)"], errors="coerce")
    if not gains.notna().any():
        return ""
    closer = int((gains >= table["Δ (points)"].astype(float).abs()).sum())
    return (f" Still rising? In their last {LATE_EPOCHS} epochs our runs' best accuracy rose by a median of at "
            f"most {gains.max():.2f} points in these configurations; in {'none' if closer == 0 else closer} of "
            f"them by as much as the gap.")


def show(page: Page, finals: Finals) -> None:
    """The section: a sentence counting what explains the gaps, then the table."""
    if finals is None:
        return
    comparison = paper_comparison(finals[1], page.dataset, page.batch_norm)
    table = differences_table(page, finals, comparison)
    if table.empty:
        display(Markdown(f"After {epochs_label(page.budget)}, every configuration's inter-quartile range overlaps "
                         f"the paper's."))
        return
    text = explained_sentence(table, epochs_label(page.budget))
    if page.batch_norm:
        deltas = comparison["Δ (points)"]
        deltas = deltas[deltas != "–"].astype(float)
        text += (f" With BN, {int((deltas > 0).sum())} of our {len(deltas)} medians on this page lie above the "
                 f"paper's. A possible cause is the original code's evaluation pass, which moved BN's running "
                 f"statistics before each test evaluation.")
        measured = bias_sentence(comparison, check_runs(page, finals[0]))
        text += (" " + measured if measured else
                 " The long run's evaluation check will measure it ([Reproducing](08_reproducing.html) shows its "
                 "progress).")
    text += rising_sentence(table)
    display(Markdown(text))
    display(html_table(table.drop(columns="_same")))
