"""The results pages' figure: every seed's best test accuracy per rule and setting, the paper's
median beside each cell, the y axis broken where some cells lie far below the rest."""

from __future__ import annotations

from typing import Optional

import pandas as pd

from .labels import SETTINGS, setting_palette, with_setting
from .render import READABLE, READABLE_WIDTH, _dots_with_collapsed_apart, readable


def best_test_boxplot(summary: pd.DataFrame, title: str, paper: Optional[pd.DataFrame] = None):
    """Per rule (x) and setting (colour): every seed's best test accuracy as a dot over a box of
    its median and quartiles (whiskers 1.5 IQR; no separate outlier marks: the dots show them), and
    the paper's median (``paper``: :func:`~bnnlib.book.paper.paper_final_quartiles` rows) as a black
    bar. Without BN the boxes of a rule are a few tenths of a point tall — the dots keep them
    visible; where some cells lie far below the rest (BP's fully binary runs without BN), the y axis
    is broken in two, as the paper's figure is, so the others are not squashed into a sliver. A
    collapsed run stays in its box but is drawn as a red cross. The legend sits below the axes, so
    the figure keeps its width on a phone."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D
    frame = with_setting(summary[~summary["diverged"]])
    frame["best test accuracy (%)"] = 100 * frame["best_test_accuracy"]
    order = [str(a) for a in frame["algorithm"].cat.categories]
    marks = pd.DataFrame(columns=["x", "y"])
    if paper is not None and not paper.empty:
        paper = with_setting(paper)
        paper = paper[paper["algorithm"].astype(str).isin(order)]
        # seaborn dodges the four settings' boxes to ±0.3 and ±0.1 around each rule's tick
        marks = pd.DataFrame({"x": [order.index(str(a)) + 0.2 * SETTINGS.index(str(s)) - 0.3
                                    for a, s in zip(paper["algorithm"], paper["setting"])],
                              "y": 100 * paper["paper_median"].to_numpy(float)})
    spans = axis_spans(shown_values(summary, paper))
    palette = setting_palette()
    with readable():
        fig, axes = plt.subplots(len(spans), 1, sharex=True, figsize=(READABLE_WIDTH, 4.8 if len(spans) == 1 else 5.8),
                                 gridspec_kw={"height_ratios": [3, 1][:len(spans)], "hspace": 0.06}, squeeze=False)
        axes = list(axes[:, 0])
        for ax, (low, high) in zip(axes, spans):
            sns.boxplot(data=frame, x="algorithm", y="best test accuracy (%)", hue="setting", hue_order=SETTINGS,
                        palette=palette, ax=ax, showfliers=False, boxprops={"alpha": 0.35},
                        linewidth=1, legend=False)
            _dots_with_collapsed_apart(ax, frame, "setting", SETTINGS, palette, "weights, activation",
                                       y="best test accuracy (%)", jitter=0.12, size=4, linewidth=0.5,
                                       edgecolor="white")
            ax.plot(marks["x"], marks["y"], linestyle="", marker="_", markersize=14, markeredgewidth=2.5,
                    color="black", zorder=5)
            pad = max(0.3, 0.04 * (high - low))
            ax.set_ylim(low - pad, high + pad)
            ax.set_xlabel("")
            ax.set_ylabel("")
        legend = axes[0].get_legend()
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        if len(marks):
            at = len(SETTINGS)  # after the settings, before a count of collapsed runs
            handles.insert(at, Line2D([], [], linestyle="", marker="_", markersize=14, markeredgewidth=2.5,
                                      color="black"))
            labels.insert(at, "the paper's median")
        for ax in axes[1:]:
            ax.get_legend().remove()
        axes[0].legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=fig.transFigure,
                       ncol=2, title="weights, activation", frameon=False, markerscale=1.6)
        if len(axes) == 2:  # the break: the facing spines hidden, a pair of slashes on each side
            axes[0].spines["bottom"].set_visible(False)
            axes[1].spines["top"].set_visible(False)
            axes[0].tick_params(bottom=False)
            for ax, y in ((axes[0], 0), (axes[1], 1)):
                ax.plot([0, 1], [y, y], transform=ax.transAxes, linestyle="", marker=[(-1, -0.5), (1, 0.5)],
                        markersize=10, color="k", mew=1, clip_on=False)
        fig.supylabel("best test accuracy (%)", fontsize=READABLE["axes.labelsize"])
        axes[0].set_title(title)
        fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.08, hspace=0.06)
    return fig


def shown_values(summary: pd.DataFrame, paper: Optional[pd.DataFrame]) -> list:
    """The accuracies (%) :func:`best_test_boxplot` draws: every seed's that did not diverge, and
    the paper's medians of the rules it has a place for."""
    frame = with_setting(summary[~summary["diverged"]])
    values = list(100 * frame["best_test_accuracy"].to_numpy(float))
    if paper is not None and not paper.empty:
        shown = [str(a) for a in frame["algorithm"].cat.categories]
        values += list(100 * paper.loc[paper["algorithm"].astype(str).isin(shown), "paper_median"].to_numpy(float))
    return values


def caption(summary: pd.DataFrame, paper: Optional[pd.DataFrame]) -> str:
    """The caption of :func:`best_test_boxplot`'s figure of these runs: it names the axis break only
    where the figure has one."""
    broken = len(axis_spans(shown_values(summary, paper))) == 2
    return ("*Figure: best test accuracy over the epochs of each final run — one dot per seed — per learning rule "
            "(x) and setting (colour: weights, activation); the box spans the quartiles with the median inside, "
            "whiskers reach the furthest seed within 1.5 inter-quartile ranges. The black bar at each box is the "
            "paper’s median (measured from its box plots’ pixels)."
            + (" Some cells lie far below the rest: the y axis is broken in two panels, as in the paper’s figure."
               if broken else "")
            + " Diverged runs are left out; a collapsed run (one class for every test image at its last epoch) is "
              "a red cross.*")


def axis_spans(values) -> list:
    """The y ranges a figure of these values shows: one, or two where its largest gap between
    neighbouring values is over half their whole range and over 5 points (then the cells below
    the gap get a short panel of their own, the axis broken between)."""
    values = sorted(v for v in values if v == v)
    if len(values) < 2:
        return [(values[0], values[0])] if values else [(0.0, 100.0)]
    gaps = [b - a for a, b in zip(values, values[1:])]
    i = max(range(len(gaps)), key=gaps.__getitem__)
    if gaps[i] > 0.5 * (values[-1] - values[0]) and gaps[i] > 5:
        return [(values[i + 1], values[-1]), (values[0], values[i])]
    return [(values[0], values[-1])]
