"""The batch normalisation chapter (``06_batch_norm``): the effect of removing BN, per rule and
setting, with its confidence interval, beside the paper's medians."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..protocol import Budget
from .labels import SETTINGS, algorithm_palette, algorithms_in, with_setting
from .paper import READING_UNCERTAINTY, paper_final_medians
from .records import epochs_beside_paper
from .render import signed_points
from .stats import welch_difference



def bn_effect_table(without_bn: pd.DataFrame, with_bn: pd.DataFrame, dataset: Optional[str] = None) -> pd.DataFrame:
    """Change in best test accuracy when BN is removed (no BN − BN), per algorithm × setting: the
    difference of means with its 95% Welch CI, and the difference of medians. Given ``dataset``,
    the paper's difference of medians beside it (``paper_difference``, NaN where the paper has no
    number), uncertain by ``paper_uncertainty``: twice the reading error of one median."""
    a, b = with_setting(without_bn), with_setting(with_bn)
    rules = [r for r in algorithms_in(a) if r in algorithms_in(b)]  # a control only where run with and without BN
    rows = []
    for setting in SETTINGS:
        for algorithm in rules:
            pick = lambda f: f[(f["setting"] == setting) & (f["algorithm"] == algorithm) & ~f["diverged"]]  # noqa: E731
            x, y = pick(a)["best_test_accuracy"], pick(b)["best_test_accuracy"]
            d = welch_difference(x, y)
            median = float(x.median() - y.median()) if len(x) and len(y) else float("nan")
            rows.append({"setting": setting, "algorithm": algorithm, **d, "median_difference": median})
    table = pd.DataFrame(rows)
    if dataset is not None:
        paper = with_setting(paper_final_medians(dataset)).assign(setting=lambda f: f["setting"].astype(str))
        median = {(r.setting, r.algorithm, bool(r.batch_norm)): r.paper_median for r in paper.itertuples()}
        table["paper_difference"] = [median.get((s, r, False), np.nan) - median.get((s, r, True), np.nan)
                                     for s, r in zip(table["setting"], table["algorithm"])]
        table["paper_uncertainty"] = 2 * READING_UNCERTAINTY.get(dataset, np.nan)
    return table


def bn_effect_display(table: pd.DataFrame) -> pd.DataFrame:
    """bn_effect_table for reading: points with two decimals, the CI in one column, p in
    scientific notation; the paper's difference of medians beside ours where the table has it."""
    out = pd.DataFrame({
        "setting": table["setting"], "algorithm": table["algorithm"],
        "Δ no BN − BN (points)": table["difference"].map(signed_points),
        "95 % CI (points)": [("–" if lo != lo else f"[{signed_points(lo)}, {signed_points(hi)}]")
                             for lo, hi in zip(table["low"], table["high"])],
        "p": table["p"].map(lambda v: "–" if v != v else f"{v:.1e}"),
    })
    if "paper_difference" in table:
        reading = table["paper_uncertainty"].iloc[0] if len(table) else float("nan")
        out["Δ of medians (points)"] = table["median_difference"].map(signed_points)
        out[f"paper Δ of medians (points, ±{100 * reading:.1f})"] = table["paper_difference"].map(signed_points)
    return out


def bn_effect_paper_sentence(table: pd.DataFrame, budget: Budget) -> str:
    """Whether removing BN moves each configuration the way the paper's medians say: the sign of
    our difference of medians against the paper's, where the paper's is readable (its magnitude
    above the reading uncertainty of a difference of two medians)."""
    paper = table.dropna(subset=["paper_difference", "median_difference"])
    if paper.empty:
        return "The paper published no numbers for this dataset to compare with."
    readable = paper[paper["paper_difference"].abs() > paper["paper_uncertainty"]]
    same = int((np.sign(readable["paper_difference"]) == np.sign(readable["median_difference"])).sum())
    unreadable = len(paper) - len(readable)
    tail = (f"; in the other {unreadable} of {len(paper)} the paper's Δ is within its reading uncertainty of 0"
            if unreadable else "")
    return (f"At the **{budget.name}** budget ({epochs_beside_paper(budget)}), removing BN moves our median the "
            f"way it moves the paper's in **{same} of {len(readable)}** configurations where the paper's "
            f"direction is readable{tail}.")


def bn_effect_figure(table: pd.DataFrame, title: str):
    import matplotlib.pyplot as plt
    palette = algorithm_palette()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    rules = list(dict.fromkeys(table["algorithm"]))
    offsets = {rule: 0.5 * (i - (len(rules) - 1) / 2) / max(len(rules) - 1, 1) for i, rule in enumerate(rules)}
    for _, row in table.iterrows():
        x = SETTINGS.index(row["setting"]) + offsets[row["algorithm"]]
        ax.errorbar(x, 100 * row["difference"], yerr=[[100 * (row["difference"] - row["low"])],
                                                      [100 * (row["high"] - row["difference"])]],
                    fmt="o", color=palette[row["algorithm"]], capsize=4)
        paper = row.get("paper_difference", np.nan)
        if not np.isnan(paper):  # the paper's difference of medians, where it published both
            ax.plot(x, 100 * paper, "x", color="black", ms=7, mew=1.5)
    for algorithm in rules:
        ax.plot([], [], "o", color=palette[algorithm], label=algorithm)
    if "paper_difference" in table and table["paper_difference"].notna().any():
        ax.plot([], [], "x", color="black", ms=7, mew=1.5, label="paper (its medians)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(SETTINGS)), SETTINGS)
    ax.set_ylabel("Δ best test accuracy, no BN − BN (points)")
    ax.set_title(title)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig
