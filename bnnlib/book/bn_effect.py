"""The batch normalisation chapter (``06_batch_norm``): the effect of removing BN, per rule and
setting, with its confidence interval, beside the paper's medians."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd

from ..protocol import Budget
from .claims import CLAIMS, decide
from .labels import ALGORITHMS, ALTERNATIVES, DATASET_NAMES, SETTINGS, algorithm_palette, algorithms_in, with_setting
from .paper import MEASUREMENT_UNCERTAINTY, paper_final_medians
from .records import epochs_bold, epochs_label
from .render import READABLE_WIDTH, readable, save_figure, signed_points
from .stats import p_text, welch_difference



def bn_effect_table(without_bn: pd.DataFrame, with_bn: pd.DataFrame, dataset: Optional[str] = None) -> pd.DataFrame:
    """Change in best test accuracy when BN is removed (no BN − BN), per algorithm × setting: the
    difference of means with its 95% Welch CI, and the difference of medians. Given ``dataset``,
    the paper's difference of medians beside it (``paper_difference``, NaN where the paper has no
    number), uncertain by ``paper_uncertainty``: twice the measurement error of one median (section 1b)."""
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
        table["paper_uncertainty"] = 2 * MEASUREMENT_UNCERTAINTY.get(dataset, np.nan)
    return table


def bn_effect_display(table: pd.DataFrame) -> pd.DataFrame:
    """bn_effect_table for reading: points with two decimals, the CI in one column, p in
    scientific notation. Where the table has the paper's difference of medians, ours and the
    paper's come first, side by side: the comparison the page is for, on a phone's first screen
    (the difference of means, its CI and p scroll)."""
    out = pd.DataFrame({"setting": table["setting"], "algorithm": table["algorithm"]})
    if "paper_difference" in table:
        reading = table["paper_uncertainty"].iloc[0] if len(table) else float("nan")
        out["Δ of medians (points)"] = table["median_difference"].map(signed_points)
        out[f"paper Δ of medians (points, ±{100 * reading:.2f})"] = table["paper_difference"].map(signed_points)
    out["Δ of means (points)"] = table["difference"].map(signed_points)
    out["95 % CI (points)"] = [("–" if lo != lo else f"[{signed_points(lo)}, {signed_points(hi)}]")
                               for lo, hi in zip(table["low"], table["high"])]
    out["p"] = table["p"].map(p_text)
    return out


def bn_effect_paper_sentence(table: pd.DataFrame, budget: Budget) -> str:
    """Whether removing BN moves each configuration the way the paper's medians say: the sign of
    our difference of medians against the paper's, where both have a direction — the paper's
    magnitude above the measurement uncertainty of a difference of two medians, ours not 0.00 as the
    table prints it (a +0.00 beside the paper's +0.04 is no agreement in direction)."""
    paper = table.dropna(subset=["paper_difference", "median_difference"])
    if paper.empty:
        return "The paper published no numbers for this dataset to compare with."
    paper_readable = paper["paper_difference"].abs() > paper["paper_uncertainty"]
    ours = np.sign(paper["median_difference"].map(signed_points).astype(float))
    readable = paper[paper_readable & (ours != 0)]
    same = int((np.sign(readable["paper_difference"]) == ours[readable.index]).sum())
    left_out = [(int((~paper_readable).sum()), "the paper's Δ is within its measurement uncertainty of 0"),
                (int((paper_readable & (ours == 0)).sum()), "our Δ of medians reads +0.00")]
    left_out = [(k, why) for k, why in left_out if k]
    detail = left_out[0][1] if len(left_out) == 1 else "; ".join(f"in {k} {why}" for k, why in left_out)
    rest = len(paper) - len(readable)
    # "of the 12", not "the remaining one": beside "9 of 11" a reader counted 2 remaining
    tail = f" ({rest} of the {len(paper)} {'is' if rest == 1 else 'are'} left out: {detail})" if left_out else ""
    return (f"After {epochs_bold(budget)}, removing BN moves our median the "
            f"way it moves the paper's in **{same} of {len(readable)}** configurations where both directions "
            f"are readable{tail}.")


def c3_verdict_sentence(finals: Dict[tuple, tuple], datasets: Sequence[str], alpha: float = 0.05) -> str:
    """Claim C3 decided as the Conclusions chapter decides it (:func:`~bnnlib.book.claims.decide`:
    one-sided Wilcoxon signed-rank tests over the dataset × setting pairs that BP's |Δ BN| exceeds
    DFA's and DRTP's, Holm-corrected), on this page's final runs of the paper's rules — where every
    dataset is shown at one budget; where not, no verdict (the test pairs them all at one budget).
    ``finals``: :func:`~bnnlib.book.records.final_runs_by_setting`'s result."""
    claim = f"Claim C3 — {CLAIMS['C3']}"
    budgets = {d: finals[d, False][0] for d in datasets}
    if len({b.name for b in budgets.values()}) != 1:
        shown = ", ".join(f"{DATASET_NAMES[d]} after {epochs_label(b)}" for d, b in budgets.items())
        return (f"**{claim}:** decided by the Conclusions chapter over every dataset at one budget; this page shows "
                f"its datasets at different budgets ({shown}), so it gives no verdict.")
    budget = next(iter(budgets.values()))
    summaries = {(d, bn): finals[d, bn][3][lambda f: f["algorithm"].isin(ALGORITHMS)]
                 for d in datasets for bn in (False, True)}
    glue = decide(summaries, alpha)["glue"]
    return (f"**{claim}: {glue['c3_verdict']}** after {epochs_bold(budget)}, by "
            f"the test of the Conclusions chapter. Over the {glue['c3_pairs']} dataset × setting pairs, the median "
            f"size |Δ| of the effect of removing BN (the dots below, without their sign) is BP {glue['c3_bp']}, "
            f"DFA {glue['c3_dfa']} and DRTP {glue['c3_drtp']} points; the one-sided Wilcoxon signed-rank tests "
            f"that BP's |Δ| exceeds each alternative's give Holm-adjusted p: {glue['c3_p']}.")


def _draw_effects(ax, table: pd.DataFrame, offsets: Dict[str, float], palette: Dict) -> None:
    """Each row's Δ (dot) with its 95 % CI (bar), the paper's Δ of medians (black cross), and 0."""
    for _, row in table.iterrows():
        x = SETTINGS.index(row["setting"]) + offsets[row["algorithm"]]
        ax.errorbar(x, 100 * row["difference"], yerr=[[100 * (row["difference"] - row["low"])],
                                                      [100 * (row["high"] - row["difference"])]],
                    fmt="o", color=palette[row["algorithm"]], capsize=4)
        paper = row.get("paper_difference", np.nan)
        if not np.isnan(paper):  # the paper's difference of medians, where it published both
            ax.plot(x, 100 * paper, "x", color="black", ms=7, mew=1.5)
    ax.axhline(0, color="black", lw=0.8)


def bn_effect_figure(table: pd.DataFrame, title: str):
    """Per setting (x) and rule (colour): the change of mean best test accuracy when BN is removed,
    with its CI and the paper's change. BP's effects (tens of points) set the top panel's range, so a
    second panel below shows DFA and DRTP alone on a y range of their own (linear, shaded on the top
    panel): their effects and intervals, which decide claim C3, would sit within pixels of 0."""
    import matplotlib.pyplot as plt
    palette = algorithm_palette()
    rules = list(dict.fromkeys(table["algorithm"]))
    offsets = {rule: 0.5 * (i - (len(rules) - 1) / 2) / max(len(rules) - 1, 1) for i, rule in enumerate(rules)}
    zoomed = [rule for rule in rules if rule in ALTERNATIVES]
    two = bool(zoomed) and len(zoomed) < len(rules)
    with readable():
        fig, axes = plt.subplots(2 if two else 1, 1, figsize=(READABLE_WIDTH, 7.6 if two else 4.4), sharex=True,
                                 squeeze=False, gridspec_kw={"height_ratios": [1, 1]} if two else None)
        top = axes[0, 0]
        _draw_effects(top, table, offsets, palette)
        if two:
            bottom = axes[1, 0]
            _draw_effects(bottom, table[table["algorithm"].isin(zoomed)], offsets, palette)
            low, high = bottom.get_ylim()
            top.axhspan(low, high, color="grey", alpha=0.15, lw=0)  # where the panel below looks
            bottom.set_title(f"{' and '.join(zoomed)} alone, zoomed on the grey band")
            bottom.set_ylabel("Δ (points)")
        handles = {algorithm: plt.Line2D([], [], ls="", marker="o", color=palette[algorithm]) for algorithm in rules}
        if "paper_difference" in table and table["paper_difference"].notna().any():
            handles["paper (its medians)"] = plt.Line2D([], [], ls="", marker="x", color="black", ms=7, mew=1.5)
        if two:
            handles["range of the panel below"] = plt.matplotlib.patches.Patch(color="grey", alpha=0.15, lw=0)
        axes[-1, 0].set_xticks(range(len(SETTINGS)), [s.replace(" ", "\n") for s in SETTINGS])
        top.set_ylabel("Δ best test accuracy,\nno BN − BN (points)")
        top.set_title(title)
        fig.align_ylabels(axes[:, 0])
        # below the panels, not beside them: at the book's width a side legend took a third of the
        # figure, and on a phone every label shrank to ~4 px
        # the rules on the first row, the markers' meaning on the second (matplotlib fills columns first)
        order = [i for column in range(3) for i in range(column, len(handles), 3)]
        fig.legend([list(handles.values())[i] for i in order], [list(handles)[i] for i in order], loc="lower center",
                   ncol=3, frameon=False, bbox_to_anchor=(0.5, 0), handletextpad=0.3, columnspacing=1.0)
        fig.tight_layout(rect=(0, 0.085 if len(handles) > 3 else 0.05, 1, 1))
    return fig


def draw_figures(tables: Dict[str, pd.DataFrame], budgets: Dict[str, Budget]) -> None:
    """:func:`bn_effect_figure` for each dataset, drawn and saved."""
    for dataset, table in tables.items():
        title = f"{DATASET_NAMES[dataset]} ({epochs_label(budgets[dataset])}): effect of removing BN"
        save_figure(bn_effect_figure(table, title), f"batch_norm_effect_{dataset}")
