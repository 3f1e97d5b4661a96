"""Each rule's accuracy over the SHALLOW control's, epoch by epoch, in the mechanism chapter's
probed runs: when training the hidden layers starts to pay, or stops paying.

The chapter's verdict table compares the runs' best test accuracy after the whole budget. A short
budget and a long one can disagree (after 5 epochs BP's fully binary network without BN lay below
its untrained hidden layers), and this is what reconciles them: the gap at every epoch of one
budget's runs, so that a page says how early it opens and whether it holds. At each epoch a run
counts with its best test accuracy so far — what it would report had it stopped there (the
paper's figure of merit) — so the last epoch's gap is the verdict table's.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..config import RunConfig
from ..protocol import PROBED_RULES, Budget, epoch_records
from ..store import ResultsStore
from .labels import CONTROLS, DATASET_RANK, algorithm_palette, bn_switch, bn_with, data_label, dataset_name
from .render import READABLE, READABLE_WIDTH, epoch_axis, readable, signed_points
from .stats import welch_difference

CONTROL = CONTROLS[0]


def best_so_far(probed: ResultsStore, configs: Sequence[RunConfig], budget: Budget,
                diverged: Sequence[str] = ()) -> pd.DataFrame:
    """One row per run and epoch: its best test accuracy up to that epoch, with the run's dataset,
    BN setting and rule; runs in ``diverged`` (ids) left out, as the verdict table leaves them."""
    epochs = epoch_records(probed, configs, budget)
    if epochs.empty:
        return pd.DataFrame(columns=["run_id", "dataset", "batch_norm", "algorithm", "epoch", "best"])
    by_id = pd.DataFrame([{"run_id": c.run_id, "dataset": c.dataset, "batch_norm": c.batch_norm,
                           "algorithm": c.algorithm} for c in configs])
    epochs = epochs[~epochs["run_id"].isin(set(diverged))][["run_id", "epoch", "test_accuracy"]]
    epochs = epochs.sort_values(["run_id", "epoch"]).merge(by_id, on="run_id")
    epochs["best"] = epochs.groupby("run_id")["test_accuracy"].cummax()
    return epochs.drop(columns="test_accuracy").reset_index(drop=True)


def gaps(best: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, BN setting, rule and epoch: the rule's mean best-so-far test accuracy minus
    SHALLOW's, with a 95 % Welch confidence interval over the seeds (an epoch counts where both
    have at least 2 runs that reached it: with fewer there is no interval to place)."""
    rows = []
    for (dataset, batch_norm), part in best.groupby(["dataset", "batch_norm"]):
        control = part[part["algorithm"] == CONTROL].groupby("epoch")["best"]
        control = {epoch: values.to_numpy() for epoch, values in control}
        for algorithm in [a for a in PROBED_RULES if a != CONTROL and a in set(part["algorithm"])]:
            for epoch, values in part[part["algorithm"] == algorithm].groupby("epoch")["best"]:
                if epoch in control and len(values) >= 2 and len(control[epoch]) >= 2:
                    d = welch_difference(values, control[epoch])
                    rows.append(dict(dataset=dataset, batch_norm=batch_norm, algorithm=algorithm, epoch=int(epoch),
                                     difference=d["difference"], low=d["low"], high=d["high"]))
    out = pd.DataFrame(rows, columns=["dataset", "batch_norm", "algorithm", "epoch", "difference", "low", "high"])
    rank = {"dataset": DATASET_RANK, "algorithm": {rule: i for i, rule in enumerate(PROBED_RULES)}}
    return out.sort_values(["dataset", "batch_norm", "algorithm", "epoch"], kind="stable",
                           key=lambda column: column.map(rank[column.name]) if column.name in rank else column
                           ).reset_index(drop=True)


def _side(row) -> str:
    return "above" if row["low"] > 0 else "below" if row["high"] < 0 else "not distinguishable from"


def course(curve: pd.DataFrame) -> dict:
    """One rule's gap over the epochs (``curve``: :func:`gaps`' rows of one rule and setting): the
    side of SHALLOW its 95 % interval lies on at the last epoch and since when — ``since`` is None
    where it lies there at every epoch, else the first epoch from which it does up to the last."""
    curve = curve.sort_values("epoch")
    sides = curve.apply(_side, axis=1).to_list()
    first = len(sides) - 1
    while first > 0 and sides[first - 1] == sides[-1]:
        first -= 1
    return dict(side=sides[-1], since=None if first == 0 else int(curve["epoch"].iloc[first]))


def course_text(course: dict) -> str:
    """"above SHALLOW at every epoch", "below SHALLOW from epoch 12 on", "not distinguishable from
    SHALLOW at every epoch" (the interval contains 0)."""
    when = "at every epoch" if course["since"] is None else f"from epoch {course['since']} on"
    return f"{course['side']} SHALLOW {when}"


def page_table(table: pd.DataFrame, early: int = 5) -> pd.DataFrame:
    """:func:`gaps` for a page: per setting and rule, the gap at epoch ``early`` (where the runs are
    longer) and at the last epoch, with its interval, and its course in words."""
    last = int(table["epoch"].max()) if len(table) else 0
    rows = []
    for (dataset, batch_norm, algorithm), curve in table.groupby(["dataset", "batch_norm", "algorithm"], sort=False):
        row = {"data": data_label(dataset, batch_norm), "rule": algorithm}
        if last > early:
            at_early = curve.loc[curve["epoch"] == early, "difference"]
            row[f"epoch {early} (points)"] = signed_points(at_early.iloc[0]) if len(at_early) else "–"
        end = curve[curve["epoch"] == last]  # one column for the table's last epoch: "–" where a curve stops sooner
        row[f"epoch {last} (points, 95 % CI)"] = "–" if end.empty else \
            f"{signed_points(end['difference'].iloc[0])} [{signed_points(end['low'].iloc[0])}, " \
            f"{signed_points(end['high'].iloc[0])}]"
        row["over the epochs (95 % CI)"] = course_text(course(curve))
        rows.append(row)
    return pd.DataFrame(rows)


def finding(table: pd.DataFrame) -> str:
    """Per rule, its courses (:func:`course_text`) and the settings that share each (plain text: a
    page glues it where Markdown stays literal)."""
    if table.empty:
        return "not measured: no setting holds two seeds of a rule and of SHALLOW."
    sentences = []
    settings = list(dict.fromkeys(zip(table["dataset"], table["batch_norm"])))
    if len(settings) == 1:  # one setting: named once, not after every rule
        (dataset, batch_norm), = settings
        return f"in {dataset_name(dataset)} {bn_with(batch_norm)} BN, " + "; ".join(
            f"{algorithm}: {course_text(course(curve))}"
            for algorithm, curve in table.groupby("algorithm", sort=False)) + "."
    for algorithm in dict.fromkeys(table["algorithm"]):
        groups = {}
        for (dataset, batch_norm), curve in table[table["algorithm"] == algorithm].groupby(
                ["dataset", "batch_norm"], sort=False):
            groups.setdefault(course_text(course(curve)), []).append(
                f"{dataset_name(dataset)} {bn_with(batch_norm)} BN")
        every = "both settings" if len(settings) == 2 else f"all {len(settings)} settings"
        parts = [f"{text} ({every if len(where) == len(settings) > 1 else ', '.join(where)})"
                 for text, where in groups.items()]
        sentences.append(f"{algorithm}: " + "; ".join(parts) + ".")
    return " ".join(sentences)


def figure(table: pd.DataFrame):
    """One panel per dataset × BN: each rule's gap to SHALLOW (points) over the epochs, its 95 %
    interval as a band; dashed: 0; epochs on :func:`~bnnlib.book.render.epoch_axis`. None where the
    table is empty (no setting holds two seeds of a rule and of SHALLOW)."""
    import matplotlib.pyplot as plt

    if table.empty:
        return None

    keys = list(dict.fromkeys(zip(table["dataset"], table["batch_norm"])))
    columns = 2 if len(keys) >= 2 else 1
    rows = -(-len(keys) // columns)
    palette = algorithm_palette()
    rules = list(dict.fromkeys(table["algorithm"]))
    last = int(table["epoch"].max()) if len(table) else 1
    height = 2.9 * rows + 0.8
    with readable():
        fig, axes = plt.subplots(rows, columns, figsize=(READABLE_WIDTH, height), squeeze=False)
        for index, (ax, (dataset, batch_norm)) in enumerate(zip(axes.flat, keys)):
            part = table[(table["dataset"] == dataset) & (table["batch_norm"] == batch_norm)]
            for rule in rules:
                curve = part[part["algorithm"] == rule]
                ax.plot(curve["epoch"], 100 * curve["difference"], color=palette[rule],
                        marker="o" if last <= 20 else None)
                ax.fill_between(curve["epoch"], 100 * curve["low"], 100 * curve["high"], color=palette[rule],
                                alpha=0.25, lw=0)
            ax.axhline(0, color="grey", lw=0.8, ls="--")
            ax.set_title(f"{dataset_name(dataset)}, BN {bn_switch(batch_norm)}")
            epoch_axis(ax, last)
            if index + columns >= len(keys):  # no panel below it
                ax.set_xlabel("epoch")
        for ax in axes.flat[len(keys):]:
            ax.set_visible(False)
        fig.supylabel(f"accuracy − {CONTROL}'s (points)", fontsize=READABLE["axes.labelsize"])
        handles = [plt.Line2D([], [], color=palette[r]) for r in rules]
        fig.legend(handles, rules, loc="lower center", ncol=len(rules), frameon=False, bbox_to_anchor=(0.5, 0.0))
        # the legend's half inch below the panels, whatever their number (a fraction of the height overlapped
        # the axis label in a one-row figure)
        fig.tight_layout(rect=(0, 0.5 / height, 1, 1))
    return fig


def of_probed(probed: ResultsStore, configs: Sequence[RunConfig], budget: Budget,
              accuracy: pd.DataFrame) -> pd.DataFrame:
    """:func:`gaps` of these probed runs (``accuracy``: their summary, whose diverged runs are left out)."""
    diverged = accuracy.loc[accuracy["diverged"].astype(bool), "run_id"] if len(accuracy) else []
    return gaps(best_so_far(probed, configs, budget, diverged))

