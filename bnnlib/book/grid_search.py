"""The grid search chapter (``03_grid_search``): each BN setting's grid at its own best budget,
our selection beside the paper's, and how the grid's runs ended."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import pandas as pd
from IPython.display import Markdown, display

from ..protocol import Budget, ensure_grid, get_budget, grid_configs, summarise
from ..store import ResultsStore
from ..sweep import count_by_rule, select_hyperparameters
from .labels import (DATASET_NAMES, bn_slug, bn_switch, bn_with, in_table_order, init_and_lr, learning_rate,
                     with_setting)
from .paper import paper_grid
from .records import (NOTEBOOK_EXECUTION, _statements_by_budget, all_finished, epochs_bold, epochs_label,
                      finished_runs, open_store)
from .render import (READABLE_WIDTH, _dots_with_collapsed_apart, percent, points_apart, prose, readable,
                     save_figure)



def grid_runs(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore, data, device: str) -> pd.DataFrame:
    """A grid search's per-run summary: read, or trained where runs are missing."""
    return ensure_grid(dataset, batch_norm, budget, store, data, device, **NOTEBOOK_EXECUTION)


def grid_runs_by_setting(requested: str, results_base: Optional[str], dataset: str, data,
                         device: str) -> Dict[bool, tuple]:
    """:func:`grid_runs` for each BN setting at its own budget (``best``: paper once that grid's
    runs are all recorded at it, else cpu): ``{batch_norm: (budget, store, summary)}``."""
    grids = {}
    for batch_norm in (False, True):
        budget, store = open_store(requested, results_base, needs=[(dataset, batch_norm)], grid_only=True)
        grids[batch_norm] = budget, store, grid_runs(dataset, batch_norm, budget, store, data, device)
    return grids


def grid_budget_sentence(budget: Budget) -> str:
    """Which budget a grid section shows (the page shows each BN setting at its own)."""
    return f"This grid search shows our runs of {epochs_bold(budget)}."


def selection_table(selection: pd.DataFrame, batch_norm: bool) -> pd.DataFrame:
    """Our selected (init, lr) per configuration with its metrics (%, 2 decimals, at the epoch of
    best accuracy on each split). The paper's choice is in :func:`grid_comparison`."""
    table = with_setting(selection).sort_values(["setting", "algorithm"])
    out = pd.DataFrame({
        "setting": table["setting"].astype(str), "algorithm": table["algorithm"].astype(str),
        "init": table["init"].map(lambda v: f"{v:g}"), "lr": table["lr"].map(learning_rate),
        "train acc (%)": table["best_train_accuracy"].map(percent),
        "test acc (%)": table["best_test_accuracy"].map(percent),
        "test precision (%)": table["test_precision_at_best"].map(percent),
        "test F1 (%)": table["test_f1_at_best"].map(percent),
    })
    return out.reset_index(drop=True)


def grid_comparison(selection: pd.DataFrame, dataset: str, batch_norm: bool) -> pd.DataFrame:
    """Our grid-search choice beside the paper's, with the accuracies each logged for its own
    choice (ours at the epoch of best accuracy on each split; the paper's from its logs)."""
    ours = with_setting(selection)
    paper = paper_grid(dataset, batch_norm)
    table = ours.merge(paper, on=["algorithm", "weights", "activation"], how="left", suffixes=("", "_paper"))
    same = (table["init"] == table["init_paper"]) & (table["lr"] == table["lr_paper"])
    out = pd.DataFrame({
        "setting": table["setting"].astype(str), "algorithm": table["algorithm"].astype(str),
        "our (init, lr)": [init_and_lr(i, lr) for i, lr in zip(table["init"], table["lr"])],
        "paper (init, lr)": [init_and_lr(i, lr) if i == i else "–" for i, lr in zip(table["init_paper"], table["lr_paper"])],
        "same choice": ["yes" if s else "no" if i == i else "–" for s, i in zip(same, table["init_paper"])],
        "our train acc (%)": table["best_train_accuracy"].map(percent),
        "paper train acc (%)": table["train_accuracy"].map(percent),
        "our test acc (%)": table["best_test_accuracy"].map(percent),
        "paper test acc (%)": table["test_accuracy"].map(percent),
    })
    out = in_table_order(out).reset_index(drop=True)
    out.attrs["compared"] = int(table["init_paper"].notna().sum())
    out.attrs["agree"] = int(same.sum())
    # where the choice is the same, both rows describe one (init, lr): how far apart they are, as
    # the difference of the two accuracies the table shows (points_apart), so the sentence that
    # states it is the difference of the numbers in the table
    for split in ("train", "test"):
        gap = pd.Series([abs(points_apart(ours, theirs)) for ours, theirs
                         in zip(table[f"best_{split}_accuracy"], table[f"{split}_accuracy"])], index=table.index)[same]
        where = gap.idxmax() if len(gap) else None
        out.attrs[f"largest {split} gap"] = float(gap[where]) if where is not None else float("nan")
        out.attrs[f"largest {split} gap at"] = (f"{table.loc[where, 'algorithm']}, {table.loc[where, 'setting']}"
                                                if where is not None else "")
    return out


def logged_accuracy_gap_sentence(comparison: pd.DataFrame, budget: Budget) -> str:
    """Where our grid-search choice is the paper's, the largest differences between our accuracies
    and those the paper logged for the same (init, lr), per split, from :func:`grid_comparison`."""
    agree = comparison.attrs.get("agree", 0)
    if agree == 0:
        return ""
    gap = {split: (f"**{comparison.attrs[f'largest {split} gap']:.2f} points**",
                   comparison.attrs[f"largest {split} gap at"]) for split in ("train", "test")}
    paper_epochs = get_budget("paper").epochs
    sentence = (f"Where our choice is the paper's ({agree} configuration{'s' if agree != 1 else ''}), our accuracies "
                f"and those the paper logged for the same run are at most {gap['train'][0]} apart in training "
                f"accuracy ({gap['train'][1]}) and {gap['test'][0]} in test accuracy ({gap['test'][1]})")
    if budget.epochs != paper_epochs:
        return sentence + f" — ours after {budget.epochs} epochs, the paper's after {paper_epochs}."
    return sentence + "."


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def choices_apart(grid: pd.DataFrame, dataset: str, batch_norm: bool) -> Optional[List[dict]]:
    """Where our grid-search choice is not the paper's: per configuration, our choice and the
    paper's, and how our own run at the paper's (init, lr) trained — ``theirs`` (its best training
    accuracy; None where we have no such run) and ``diverged``, its ``rank`` among our runs of the
    configuration and ``usable`` how many did not diverge. None where the paper published no grid."""
    selection = with_setting(select_hyperparameters(grid))
    paper = paper_grid(dataset, batch_norm)
    keys = ["algorithm", "weights", "activation"]
    table = selection.merge(paper[keys + ["init", "lr"]], on=keys, how="inner", suffixes=("", "_paper"))
    if len(table) == 0:
        return None
    differing = in_table_order(table[(table["init"] != table["init_paper"]) | (table["lr"] != table["lr_paper"])])
    ranked = grid.assign(rank=grid[~grid["diverged"]].groupby(keys)["best_train_accuracy"]
                         .rank(ascending=False, method="min"))
    out = []
    for _, row in differing.iterrows():
        same_config = ranked[(ranked[keys] == row[keys]).all(axis=1)]
        theirs = same_config[(same_config["init"] == row["init_paper"]) & (same_config["lr"] == row["lr_paper"])]
        out.append(dict(where=f"{row['algorithm']}, {row['setting']}", ours=row["best_train_accuracy"],
                        choice=(row["init"], row["lr"]), paper_choice=(row["init_paper"], row["lr_paper"]),
                        theirs=None if theirs.empty else theirs["best_train_accuracy"].iloc[0],
                        diverged=(not theirs.empty) and bool(theirs["diverged"].iloc[0]),
                        rank=None if theirs.empty else theirs["rank"].iloc[0],
                        usable=int((~same_config["diverged"]).sum())))
    return out


def selection_differences(grid: pd.DataFrame, dataset: str, batch_norm: bool) -> str:
    """Where our grid-search choice is not the paper's, how our own run at the paper's (init, lr)
    trained: its best training accuracy, the gap to our choice, and its rank among our runs of
    that configuration — a near tie and a real difference read apart."""
    apart = choices_apart(grid, dataset, batch_norm)
    if apart is None:  # the paper published no grid for this setting
        return ""
    if not apart:
        return "Every one of our selections is the paper's."
    parts = []
    for row in apart:
        paper_choice = f"({init_and_lr(*row['paper_choice'])})"
        ours = f"{100 * row['ours']:.2f} % at ours ({init_and_lr(*row['choice'])})"
        if row["theirs"] is None:
            parts.append(f"{row['where']}: no run of ours at the paper's {paper_choice}")
        elif row["diverged"]:
            parts.append(f"{row['where']}: our run at the paper's {paper_choice} diverged")
        else:
            gap = points_apart(row["ours"], row["theirs"])  # of the two shown
            parts.append(f"{row['where']}: {100 * row['theirs']:.2f} % at the paper's {paper_choice} against "
                         f"{ours}, {gap:.2f} points less ({_ordinal(int(row['rank']))} best of our {row['usable']} runs of it)")
    sentence = ("Where the choices differ, our own run at the paper's (init, lr) — best training accuracy, the "
                "criterion of the selection: " + "; ".join(parts) + ".")
    return prose(sentence)


def finding(grids: Dict[bool, tuple], dataset: str) -> str:
    """The page's opening: per BN setting, how many of our selections are the paper's, and how far
    behind ours our own runs at the paper's other choices trained (:func:`choices_apart`)."""
    counts, gaps, where = [], [], []
    for batch_norm, (budget, _, summary) in grids.items():
        apart = choices_apart(summary, dataset, batch_norm)
        if apart is None:
            continue
        total = len(select_hyperparameters(summary))
        counts.append(f"**{total - len(apart)} of {total}** {bn_with(batch_norm)} BN")
        gaps += [points_apart(r["ours"], r["theirs"]) for r in apart if r["theirs"] is not None and not r["diverged"]]
        where += [r["where"] for r in apart]
    if not counts:
        return ""
    budgets = {epochs_bold(budget) for budget, _, _ in grids.values()}
    text = (f"**What we found.** After {' and '.join(sorted(budgets))}, our grid search on {DATASET_NAMES[dataset]} "
            f"chooses the paper's (init, lr) for {' and '.join(counts)}.")
    if gaps:
        text += (f" Where it chooses otherwise ({'; '.join(dict.fromkeys(where))}), our own run at the paper's choice "
                 f"trained {min(gaps):.2f} to {max(gaps):.2f} points less than ours in best training accuracy, the "
                 f"selection's criterion — near ties; the final runs of these configurations train our choice, not the "
                 f"paper's (the results pages show what that changes).")
    return text


def grid_agreement_by_budget(dataset: str, results_base: Optional[str] = None,
                             budgets: Sequence[str] = ("cpu", "paper")) -> pd.DataFrame:
    """How many of our grid-search selections are the paper's, per budget and BN setting, from
    the records alone (a grid not yet complete says how far it is)."""

    rows = []
    for name in budgets:
        budget, store = open_store(name, results_base)
        for batch_norm in (False, True):
            configs = grid_configs(dataset, batch_norm, budget)
            grid = summarise(store, configs, budget)
            row = {"our runs": epochs_label(budget), "BN": bn_with(batch_norm)}
            if not all_finished(grid, configs, budget):
                row["our (init, lr) is the paper's"] = (f"grid not complete: {finished_runs(grid, budget)} of "
                                                        f"{len(configs)} runs")
            else:
                table = grid_comparison(select_hyperparameters(grid), dataset, batch_norm)
                row["our (init, lr) is the paper's"] = f"{table.attrs['agree']} of {table.attrs['compared']}"
            rows.append(row)
    return pd.DataFrame(rows)


def agreement_statements(dataset: str, results_base: Optional[str] = None,
                         budgets: Sequence[str] = ("cpu", "paper")) -> List[str]:
    """The provenance of every grid :func:`grid_agreement_by_budget` reads, one statement per budget."""
    parts = []
    for name in dict.fromkeys(budgets):
        budget, store = open_store(name, results_base)
        parts.append((budget, store, [c for bn in (False, True) for c in grid_configs(dataset, bn, budget)]))
    return _statements_by_budget(parts)


def grid_outcomes_sentence(summary: pd.DataFrame, budget: Budget, batch_norm: bool) -> str:
    """How many of one BN setting's grid runs diverged and collapsed (at their last epoch they
    predict one class for every test image), which rules and inits the collapsed ones had, and
    whether the selection took any of them (it ranks by best training accuracy, which a run can
    reach before it collapses)."""
    head = f"{'With' if batch_norm else 'Without'} BN ({epochs_label(budget)}): of the {len(summary)} grid runs, " \
           f"{int(summary['diverged'].sum())} diverged (a diverged run is never selected)"
    collapsed = summary["collapsed"].astype("boolean")
    unknown = int(collapsed.isna().sum())
    if unknown == len(summary):
        return prose(head + "; whether any collapsed is not recorded (its runs were recorded before the "
                             "class counts were).")
    hit = summary[collapsed.fillna(False).astype(bool)]
    text = head + f" and {len(hit)} collapsed"
    if len(hit):
        rules = count_by_rule(hit)
        inits = hit["init"].value_counts().sort_index()
        where = f"all {len(hit)} with init {inits.index[0]:g}" if len(inits) == 1 else \
            "init " + ", ".join(f"{init:g} for {n}" for init, n in inits.items())
        selected = set(select_hyperparameters(summary)["run_id"]) & set(hit["run_id"])
        text += f" — at their last epoch they predict one class for every test image ({rules}; {where}); " + \
            ("none of them is selected" if not selected else f"{len(selected)} of them selected, on a training "
                                                            f"accuracy reached before collapsing")
    if unknown:
        text += f"; collapse is not recorded for {unknown} runs recorded before the class counts were"
    return prose(text + ".")


def shared_accuracy_range(summaries, column: str = "best_train_accuracy", margin: float = 0.04) -> Tuple[float, float]:
    """One y range (%) for figures set side by side: every run's ``column`` of every summary
    (diverged runs left out, as the figures leave them out), widened by ``margin`` of its span on
    each side — so the heights of boxes in different figures compare."""
    values = pd.concat([100 * s.loc[~s["diverged"], column] for s in summaries]).dropna()
    if values.empty:
        return 0.0, 100.0
    low, high = float(values.min()), float(values.max())
    pad = margin * max(high - low, 1.0)
    return low - pad, high + pad


def grid_robustness_boxplot(summary: pd.DataFrame, title: str, ylim: Optional[Tuple[float, float]] = None):
    """Per rule (x) and weight kind (colour): every grid run's best training accuracy as a dot over a box;
    collapsed runs as red crosses. ``ylim``: the y range (%), to share one between figures."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    frame = with_setting(summary[~summary["diverged"]])
    frame["best training accuracy (%)"] = 100 * frame["best_train_accuracy"]
    frame["weights"] = pd.Categorical(frame["weights"], ["continuous", "binary"], ordered=True)
    with readable():
        fig, ax = plt.subplots(figsize=(READABLE_WIDTH, 4.2))
        sns.boxplot(data=frame, x="algorithm", y="best training accuracy (%)", hue="weights", ax=ax,
                    showfliers=False, boxprops={"alpha": 0.6})  # no outlier marks: every run is a dot below
        # the dots are black and add no legend entries: the boxes' colours name the weight kinds
        _dots_with_collapsed_apart(ax, frame, "weights", ["continuous", "binary"],
                                   {"continuous": "black", "binary": "black"}, "weights",
                                   y="best training accuracy (%)", size=3, alpha=0.5, legend=False)
        ax.set_title(title)
        ax.set_xlabel("")
        if ylim is not None:
            ax.set_ylim(*ylim)
        fig.tight_layout()
    return fig


def selections_by_setting(grids: Dict[bool, tuple]) -> Tuple[Dict[bool, pd.DataFrame], Dict[bool, pd.DataFrame]]:
    """(summaries, selections) by BN setting, from :func:`grid_runs_by_setting`'s grids."""
    summaries = {batch_norm: summary for batch_norm, (_, _, summary) in grids.items()}
    selections = {batch_norm: select_hyperparameters(summary) for batch_norm, summary in summaries.items()}
    return summaries, selections


def draw_grids(grids: Dict[bool, tuple], dataset: str) -> None:
    """Each BN setting's grid (:func:`grid_robustness_boxplot`), drawn and saved, all on one y range
    (:func:`shared_accuracy_range`): the page compares their boxes' heights."""
    ylim = shared_accuracy_range([summary for _, _, summary in grids.values()])
    for batch_norm, (grid_budget, _, summary) in grids.items():
        title = f"Grid search on {DATASET_NAMES[dataset]}, BN {bn_switch(batch_norm)} ({epochs_label(grid_budget)})"
        figure = grid_robustness_boxplot(summary, title, ylim)
        save_figure(figure, f"grid_search_{dataset}_{bn_slug(batch_norm)}")


def show_outcomes(grids: Dict[bool, tuple]) -> None:
    """:func:`grid_outcomes_sentence` for each BN setting."""
    for batch_norm, (grid_budget, _, summary) in grids.items():
        display(Markdown(grid_outcomes_sentence(summary, grid_budget, batch_norm)))
