"""What the book's chapters need more than once: stores, labels, tables, figures, tests.

Notebooks stay thin: a parameters cell, calls into here, a table or a figure.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..paths import PROJECT_ROOT  # noqa: F401 (the deployment page reads its benchmark under it)
from ..protocol import ALGORITHMS, CONTROLS, Budget, get_budget
from ..store import ResultsStore
from .labels import (COLLAPSED_COLOUR, DATASET_NAMES, DATASET_RANK, SETTINGS, algorithm_palette,  # noqa: F401
                     algorithms_in, bn_short, bn_with, dataset_name, in_table_order, setting_palette,
                     with_setting)
from .paper import READING_UNCERTAINTY, paper_final_medians, paper_grid, paper_learning_curve
from .page import setup_page  # noqa: F401
from .records import (BEST, BEST_ORDER, NOTEBOOK_EXECUTION, _finals_with_controls, all_finished,  # noqa: F401
                      budget_choice, budget_statement, budget_statements, epochs_beside_paper, final_runs,
                      final_runs_by_setting, finished_runs, grid_budget_statements, grid_runs, grid_runs_by_setting,
                      open_store, paper_finals_so_far, paper_store, recorded_finals, runs_by_budget, with_controls)
from .render import (_collapsed_mask, _dots_with_collapsed_apart, _unbreakable, figures_dir,  # noqa: F401
                     html_table, percent, prose, save_figure, signed_points, style)
from .stats import anova_sentence, holm, one_way_anova, welch_difference  # noqa: F401
from .toc import PAGE_UNITS, SHOWN_SO_FAR, page_stem  # noqa: F401


# ---------------------------------------------------------------------- where things are


# ---------------------------------------------------------------------- tables


def selection_table(selection: pd.DataFrame, batch_norm: bool) -> pd.DataFrame:
    """Our selected (init, lr) per configuration with its metrics (%, 2 decimals, at the epoch of
    best accuracy on each split). The paper's choice is in :func:`grid_comparison`."""
    table = with_setting(selection).sort_values(["setting", "algorithm"])
    out = pd.DataFrame({
        "setting": table["setting"].astype(str), "algorithm": table["algorithm"].astype(str),
        "init": table["init"].map(lambda v: f"{v:g}"), "lr": table["lr"].map(lambda v: f"{v:.0e}"),
        "train acc (%)": table["best_train_accuracy"].map(percent),
        "test acc (%)": table["best_test_accuracy"].map(percent),
        "test precision (%)": table["test_precision_at_best"].map(percent),
        "test F1 (%)": table["test_f1_at_best"].map(percent),
    })
    return out.reset_index(drop=True)


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Best test accuracy over seeds per algorithm × setting: mean ± std, median, n (diverged apart)."""
    frame = with_setting(summary)
    usable = frame[~frame["diverged"]]
    grouped = usable.groupby(["setting", "algorithm"], observed=True)["best_test_accuracy"]
    table = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(), "median": grouped.median(),
                          "seeds": grouped.size()})
    table["diverged"] = frame.groupby(["setting", "algorithm"], observed=True)["diverged"].sum()
    # a collapsed run (one class for every test image) is kept in the statistics but counted apart
    table["collapsed"] = frame.groupby(["setting", "algorithm"], observed=True)["collapsed"].agg(collapsed_count) \
        if "collapsed" in frame.columns else "–"  # not recorded: not known
    table["mean ± std (%)"] = [f"{100 * m:.2f} ± {100 * s:.2f}" for m, s in zip(table["mean"], table["std"].fillna(0))]
    # the same formatter as paper_comparison's: numpy's round(2) and Python's decimal rounding
    # disagree on ties such as 60.085, and both tables stand on one page
    table["median (%)"] = table["median"].map(percent)
    return table.reset_index()


def collapsed_count(collapsed: pd.Series) -> str:
    """How many runs collapsed, from a column that is True, False or NA (class counts not
    recorded): "k" when every run is known, "–" when none is, "k of n recorded" otherwise."""
    known = collapsed.dropna()
    if len(known) == len(collapsed):
        return str(int(known.sum()))
    return "–" if known.empty else f"{int(known.sum())} of {len(known)} recorded"


def paper_comparison(summary: pd.DataFrame, dataset: str, batch_norm: bool) -> pd.DataFrame:
    """Our final runs beside the paper's, per algorithm × setting: the paper's median (read from
    its box plot, ± the reading uncertainty), our median, inter-quartile range and range over the
    seeds, the difference, and whether the paper's median lies within our range (widened by the
    reading uncertainty). Diverged runs are left out of our statistics. Percent, 2 decimals."""
    frame = with_setting(summary[~summary["diverged"]])
    grouped = frame.groupby(["setting", "algorithm"], observed=True)["best_test_accuracy"]
    ours = pd.DataFrame({"median": grouped.median(), "q1": grouped.quantile(0.25), "q3": grouped.quantile(0.75),
                         "min": grouped.min(), "max": grouped.max(), "seeds": grouped.size()}).reset_index()
    paper = with_setting(paper_final_medians(dataset, batch_norm))[["setting", "algorithm", "paper_median",
                                                                     "uncertainty"]]
    grid = pd.DataFrame([(s, a) for s in SETTINGS for a in algorithms_in(summary)], columns=["setting", "algorithm"])
    grid = with_setting(grid.assign(weights=grid["setting"].str.split().str[0],
                                    activation=grid["setting"].str.split().str[1]))[["setting", "algorithm"]]
    table = grid.merge(paper, on=["setting", "algorithm"], how="left").merge(ours, on=["setting", "algorithm"],
                                                                             how="left")
    compared = table["paper_median"].notna() & table["median"].notna()
    inside = (table["paper_median"] >= table["min"] - table["uncertainty"]) & \
             (table["paper_median"] <= table["max"] + table["uncertainty"])
    reading = READING_UNCERTAINTY.get(dataset, float("nan"))
    out = pd.DataFrame({
        "setting": table["setting"].astype(str), "algorithm": table["algorithm"].astype(str),
        f"paper (%, ±{100 * reading:.1f})": table["paper_median"].map(percent),
        "median (%)": table["median"].map(percent),
        "IQR (%)": [f"{percent(a)}–{percent(b)}" if a == a else "–" for a, b in zip(table["q1"], table["q3"])],
        "range (%)": [f"{percent(a)}–{percent(b)}" if a == a else "–" for a, b in zip(table["min"], table["max"])],
        "Δ (points)": [f"{100 * (m - p):+.2f}" if c else "–"
                       for m, p, c in zip(table["median"], table["paper_median"], compared)],
        "paper in range": ["yes" if i else "no" if c else "–" for i, c in zip(inside, compared)],
    })
    out.attrs["compared"] = int(compared.sum())
    out.attrs["agree"] = int((inside & compared).sum())
    return out


def paper_so_far_comparison(so_far: pd.DataFrame, dataset: str, batch_norm: bool,
                            shown: Budget) -> Tuple[str, pd.DataFrame]:
    """(sentence, table): :func:`paper_comparison` of the configurations finished so far at the
    paper budget (:func:`paper_finals_so_far`), only their rows, with how many of the setting's
    they are; ``shown``: the budget the rest of the page shows."""
    table = paper_comparison(so_far, dataset, batch_norm)
    rows = table[table["median (%)"] != "–"].reset_index(drop=True)
    finished, total = so_far.attrs["configurations"]
    agree = int((rows["paper in range"] == "yes").sum())
    compared = int((rows["paper in range"] != "–").sum())
    sentence = (f"The long run at the **paper** budget (100 epochs, as the paper) has finished every seed of "
                f"**{finished} of the {total}** configurations of this setting so far; until it finishes all, "
                f"this page shows the {shown.name} budget above, and here only those {finished}, beside the paper: its median "
                f"lies within our seed range for **{agree} of {compared}**. Provisional: the table grows as the run "
                f"goes on.")
    return sentence, rows


def grid_budget_sentence(budget: Budget) -> str:
    """Which budget a grid section shows (the page shows each BN setting at its own)."""
    return f"This grid search is shown at the **{budget.name}** budget ({epochs_beside_paper(budget)})."


def grid_outcomes_sentence(summary: pd.DataFrame, budget: Budget, batch_norm: bool) -> str:
    """How many of one BN setting's grid runs diverged and collapsed (at their last epoch they
    predict one class for every test image), which rules and inits the collapsed ones had, and
    whether the selection took any of them (it ranks by best training accuracy, which a run can
    reach before it collapses)."""
    from ..sweep import count_by_rule, select_hyperparameters
    head = f"{'With' if batch_norm else 'Without'} BN ({budget.name} budget): of the {len(summary)} grid runs, " \
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


def control_sentence(summary: pd.DataFrame, budget: Budget) -> str:
    """Whether the SHALLOW control's rows are in this page's tables, and what it is."""
    what = ("SHALLOW is a control, not one of the paper's rules: it trains only the output layer and leaves "
            "the hidden layers at their random initial weights; a rule that does no better than SHALLOW has "
            "not trained its hidden layers.")
    if "SHALLOW" in set(summary["algorithm"]):
        return what + " Its grid search and final runs follow the same protocol; the paper has no numbers for it."
    return what + (f" It is not recorded at the **{budget.name}** budget for this setting "
                   f"(`python -m bnnlib protocol --budget {budget.name} --algorithm SHALLOW` runs it).")


def results_overview(budget: Budget, store: ResultsStore,
                     settings: Sequence[tuple] = (("mnist", False), ("mnist", True), ("fashion-mnist", False),
                                                  ("fashion-mnist", True))) -> pd.DataFrame:
    """Every cell of the results pages beside the paper: one row per dataset × BN × algorithm ×
    setting (only settings whose runs are all recorded at this budget)."""
    parts = []
    for dataset, batch_norm in settings:
        summary = recorded_finals(dataset, batch_norm, budget, store)
        if summary is None:
            continue
        table = paper_comparison(with_controls(summary, dataset, batch_norm, budget, store), dataset, batch_norm)
        parts.append(_overview_rows(table, dataset, batch_norm))
    if not parts:
        return pd.DataFrame()
    return _with_agreement(pd.concat(parts, ignore_index=True))


def _overview_rows(comparison: pd.DataFrame, dataset: str, batch_norm: bool, note: str = "") -> pd.DataFrame:
    """A results page's comparison with the paper as rows of the results index: one paper column
    for every dataset (its reading uncertainty is in the page's text), a data column first."""
    table = comparison.rename(columns={c: "paper (%)" for c in comparison.columns if c.startswith("paper (%")})
    table = table.drop(columns=["IQR (%)"])
    table.insert(0, "data", f"{DATASET_NAMES[dataset]}, {bn_short(batch_norm)}{note}")
    return table


def _with_agreement(table: pd.DataFrame) -> pd.DataFrame:
    table.attrs["compared"] = int((table["paper in range"] != "–").sum())
    table.attrs["agree"] = int((table["paper in range"] == "yes").sum())
    return table


def results_overview_so_far(requested: str, results_base: Optional[str], settings: Sequence[tuple]) -> pd.DataFrame:
    """The rows the results index adds while the long run goes on: for each setting shown at
    another budget than paper, its configurations finished so far at the paper budget
    (:func:`paper_finals_so_far`), named "(paper, 8 of 12 so far)" in the data column."""
    parts = []
    for dataset, batch_norm in settings:
        budget, _ = open_store(requested, results_base, needs=[(dataset, batch_norm)])
        so_far = None if budget.name == "paper" else paper_finals_so_far(dataset, batch_norm, results_base)
        if so_far is None:
            continue
        _, rows = paper_so_far_comparison(so_far, dataset, batch_norm, budget)
        finished, total = so_far.attrs["configurations"]
        parts.append(_overview_rows(rows, dataset, batch_norm, f" (paper, {finished} of {total} so far)"))
    return _with_agreement(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()


def overview_so_far_sentence(table: pd.DataFrame) -> str:
    """The sentence above :func:`results_overview_so_far`'s table."""
    return (f"While the long run goes on, the configurations it has finished at the **paper** budget (100 epochs, "
            f"as the paper) in the settings shown above at another budget, beside the paper. Provisional: the "
            f"paper's median lies within our seed range for **{table.attrs['agree']} of {table.attrs['compared']}** "
            f"of them so far.")


def results_overview_by_setting(requested: str, results_base: Optional[str],
                                settings: Sequence[tuple]) -> pd.DataFrame:
    """:func:`results_overview` with each setting at its own budget — with ``best``, the paper
    budget as soon as all of that setting's runs are recorded at it, else cpu — named in the data
    column ("MNIST, no BN (cpu)"); ``attrs["by_budget"]``: {budget: (agree, compared)}."""
    parts, by_budget = [], {}
    for setting in settings:
        budget, store = open_store(requested, results_base, needs=[setting])
        table = results_overview(budget, store, [setting])
        if table.empty:
            continue
        table["data"] = table["data"] + f" ({budget.name})"
        agree, compared = by_budget.get(budget.name, (0, 0))
        by_budget[budget.name] = (agree + table.attrs["agree"], compared + table.attrs["compared"])
        parts.append(table)
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out.attrs["by_budget"] = by_budget
    return out


def overview_agreement(table: pd.DataFrame, what: str) -> str:
    """:func:`agreement_sentence` for each budget the overview's rows come from."""
    return " ".join(_agreement(agree, compared, get_budget(name), what)
                    for name, (agree, compared) in table.attrs["by_budget"].items())


def agreement_sentence(table: pd.DataFrame, budget: Budget, what: str) -> str:
    """How many rows of a comparison table agree with the paper, with the budget it rests on."""
    return _agreement(table.attrs.get("agree", 0), table.attrs.get("compared", 0), budget, what)


def _agreement(agree: int, compared: int, budget: Budget, what: str) -> str:
    if compared == 0:
        return "The paper published no numbers for this setting to compare with."
    return (f"At the **{budget.name}** budget ({epochs_beside_paper(budget)}), {what} for "
            f"**{agree} of {compared}** configurations.")


def model_summary_table(layers: pd.DataFrame) -> pd.DataFrame:
    """deploy.summary for a page: short headers, thousands separated, the thresholds column left
    to the text (one per hidden unit)."""
    columns = {"layer": "layer", "shape": "shape", "1-bit parameters": "1-bit params",
               "32-bit parameters": "32-bit params", "deployed bytes": "bytes", "float32 bytes": "float32 bytes",
               "binary MACs": "±1 MACs", "float MACs": "float MACs", "compression": "smaller"}
    table = layers[list(columns)].rename(columns=columns).copy()
    for column in ("1-bit params", "32-bit params", "bytes", "float32 bytes", "±1 MACs", "float MACs"):
        table[column] = table[column].map(lambda v: f"{int(v):,}")
    table["smaller"] = table["smaller"].map(lambda v: f"{v:.1f}×")
    return table


def packed_by_setting(requested: str, results_base: Optional[str], settings: Sequence[tuple]) -> pd.DataFrame:
    """The exported fully binary final models (``packed.csv``) of each (dataset, BN) setting at its
    own budget — with ``best``, paper once all of that setting's runs are recorded at it, else
    cpu — with the budget's name and the packed file's path in two more columns."""
    parts = []
    for dataset, batch_norm in settings:
        budget, store = open_store(requested, results_base, needs=[(dataset, batch_norm)])
        packed = store.table("packed.csv")
        if packed.empty:
            continue
        mine = packed[(packed["dataset"] == dataset) & (packed["batch_norm"].astype(bool) == batch_norm)]
        parts.append(mine.assign(budget=budget.name,
                                 path=[str(store.directory / "packed" / f"{run_id}.bnn") for run_id in mine["run_id"]]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def deployment_example(packed: pd.DataFrame) -> str:
    """The packed file a page describes layer by layer: a model of the paper's rules with BN (its
    thresholds fold BN: the fullest case) where there is one, else the first exported."""
    rules = packed["algorithm"].isin(ALGORITHMS)
    preferred = packed[rules & packed["batch_norm"].astype(bool)]
    for candidates in (preferred, packed[rules], packed):
        if len(candidates):
            return str(candidates.sort_values("run_id")["path"].iloc[0])
    raise LookupError("no exported model")


def deployment_gaps(packed: pd.DataFrame, settings: Sequence[tuple], algorithms=ALGORITHMS) -> str:
    """A sentence naming the settings × rules (the paper's, by default) with no exported model
    ("" when none is missing)."""
    exported = set() if packed.empty else set(zip(packed["dataset"], packed["batch_norm"].astype(bool),
                                                  packed["algorithm"]))
    gaps = []
    for dataset, batch_norm in settings:
        missing = [a for a in algorithms if (dataset, batch_norm, a) not in exported]
        if missing:
            rules = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
            gaps.append(f"{rules} on {dataset_name(dataset)} {bn_with(batch_norm)} BN")
    if not gaps:
        return ""
    return prose("Not exported: " + "; ".join(gaps) + " (their final runs are not all complete yet, or were "
                  "trained before final runs kept their trained state).")


def deployment_table(packed: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × BN × algorithm: how many fully binary final models were exported, their file
    size, how much smaller than their float32 weights, and their lowest agreement with the float
    model (how many test images it was measured on goes in the text: one number for the table).
    With a ``budget`` column (:func:`packed_by_setting`) the dataset names it: "MNIST (cpu)"."""
    if packed.empty:
        return pd.DataFrame()
    frame = packed.sort_values("dataset", key=lambda c: c.map(lambda d: DATASET_RANK.get(d, len(DATASET_RANK))),
                               kind="stable")
    if "budget" in frame:
        frame["dataset"] = [f"{dataset_name(d)} ({b})" for d, b in zip(frame["dataset"], frame["budget"])]
    # MNIST, then Fashion-MNIST (then CIFAR-10), as every page orders them
    frame["dataset"] = pd.Categorical(frame["dataset"], list(dict.fromkeys(frame["dataset"])), ordered=True)
    frame["algorithm"] = pd.Categorical(frame["algorithm"], algorithms_in(frame), ordered=True)
    grouped = frame.groupby(["dataset", "batch_norm", "algorithm"], observed=True, sort=True)
    table = pd.DataFrame({
        "models": grouped.size(),
        "file (KB)": grouped["file_bytes"].median() / 1000,
        "float32 (KB)": grouped["float32_bytes"].median() / 1000,
        "agreement, lowest (%)": 100 * grouped["agreement"].min(),
    }).reset_index()
    table["smaller"] = (table["float32 (KB)"] / table["file (KB)"]).map(lambda v: f"{v:.1f}×")
    table["dataset"] = table["dataset"].astype(str).map(dataset_name)
    table["BN"] = table["batch_norm"].map({True: "with", False: "without"})
    table["file (KB)"] = table["file (KB)"].map(lambda v: f"{v:.1f}")
    table["float32 (KB)"] = table["float32 (KB)"].map(lambda v: f"{v:.1f}")
    table["agreement, lowest (%)"] = table["agreement, lowest (%)"].map(lambda v: f"{v:.2f}")
    table["algorithm"] = table["algorithm"].astype(str)
    return table[["dataset", "BN", "algorithm", "models", "file (KB)", "float32 (KB)", "smaller",
                  "agreement, lowest (%)"]]


def times_faster(ratio: float) -> str:
    """A speed ratio (baseline time / new time) in words: "3.9× faster", "1.3× slower"."""
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def benchmark_processor_phrase(benchmark_processor: str) -> str:
    """Where a committed benchmark ran, set against the processor executing the page: a result
    file travels with the repository, so the page may be built on another kind of machine."""
    from ..runner import processor
    here = processor("cpu")
    if here == benchmark_processor:
        return "the kind of processor that executed this page"
    return f"not the {here} that executed this page, where the timings and the kernel chosen may differ"


def inference_figure(report: dict):
    """Latency at batch 1 and throughput at batch N of the float32 model and the packed engine."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    rows = report["rows"]
    names = list(rows)
    labels = ["float32,\nbnnlib's evaluation", "float32,\nevery layer",
              f"packed engine,\n{report['kernel']} GEMMs\n+ thresholds"]
    colours = sns.color_palette("colorblind", 3)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].bar(labels, [1e6 * rows[n]["latency_s"] for n in names], color=colours)
    axes[0].set_ylabel("µs per image at batch 1\n(lower is better)")
    axes[1].bar(labels, [report["batch"] / rows[n]["batch_s"] for n in names], color=colours)
    axes[1].set_ylabel(f"images per second at batch {report['batch']}\n(higher is better)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=9)
    fig.tight_layout()
    return fig


def grid_comparison(selection: pd.DataFrame, dataset: str, batch_norm: bool) -> pd.DataFrame:
    """Our grid-search choice beside the paper's, with the accuracies each logged for its own
    choice (ours at the epoch of best accuracy on each split; the paper's from its logs)."""
    ours = with_setting(selection)
    paper = paper_grid(dataset, batch_norm)
    table = ours.merge(paper, on=["algorithm", "weights", "activation"], how="left", suffixes=("", "_paper"))
    same = (table["init"] == table["init_paper"]) & (table["lr"] == table["lr_paper"])
    out = pd.DataFrame({
        "setting": table["setting"].astype(str), "algorithm": table["algorithm"].astype(str),
        "our (init, lr)": [f"{i:g}, {lr:.0e}" for i, lr in zip(table["init"], table["lr"])],
        "paper (init, lr)": [f"{i:g}, {lr:.0e}" if i == i else "–" for i, lr in zip(table["init_paper"], table["lr_paper"])],
        "same choice": ["yes" if s else "no" if i == i else "–" for s, i in zip(same, table["init_paper"])],
        "our train acc (%)": table["best_train_accuracy"].map(percent),
        "paper train acc (%)": table["train_accuracy"].map(percent),
        "our test acc (%)": table["best_test_accuracy"].map(percent),
        "paper test acc (%)": table["test_accuracy"].map(percent),
    })
    out = in_table_order(out).reset_index(drop=True)
    out.attrs["compared"] = int(table["init_paper"].notna().sum())
    out.attrs["agree"] = int(same.sum())
    # where the choice is the same, both rows describe one (init, lr): how far apart they are
    for split in ("train", "test"):
        gap = 100 * (table[f"best_{split}_accuracy"] - table[f"{split}_accuracy"]).abs()[same]
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


def selection_differences(grid: pd.DataFrame, dataset: str, batch_norm: bool) -> str:
    """Where our grid-search choice is not the paper's, how our own run at the paper's (init, lr)
    trained: its best training accuracy, the gap to our choice, and its rank among our runs of
    that configuration — a near tie and a real difference read apart."""
    from ..sweep import select_hyperparameters

    selection = with_setting(select_hyperparameters(grid))
    paper = paper_grid(dataset, batch_norm)
    keys = ["algorithm", "weights", "activation"]
    table = selection.merge(paper[keys + ["init", "lr"]], on=keys, how="inner", suffixes=("", "_paper"))
    if len(table) == 0:  # the paper published no grid for this setting
        return ""
    differing = in_table_order(table[(table["init"] != table["init_paper"]) | (table["lr"] != table["lr_paper"])])
    if differing.empty:
        return "Every one of our selections is the paper's."
    ranked = grid.assign(rank=grid[~grid["diverged"]].groupby(keys)["best_train_accuracy"]
                         .rank(ascending=False, method="min"))
    parts = []
    for _, row in differing.iterrows():
        same_config = ranked[(ranked[keys] == row[keys]).all(axis=1)]
        theirs = same_config[(same_config["init"] == row["init_paper"]) & (same_config["lr"] == row["lr_paper"])]
        where = f"{row['algorithm']}, {row['setting']}"
        paper_choice = f"({row['init_paper']:g}, {row['lr_paper']:.0e})"
        ours = f"{100 * row['best_train_accuracy']:.2f} % at ours ({row['init']:g}, {row['lr']:.0e})"
        if theirs.empty:
            parts.append(f"{where}: no run of ours at the paper's {paper_choice}")
        elif bool(theirs["diverged"].iloc[0]):
            parts.append(f"{where}: our run at the paper's {paper_choice} diverged")
        else:
            run = theirs.iloc[0]
            gap = 100 * (row["best_train_accuracy"] - run["best_train_accuracy"])
            usable = int((~same_config["diverged"]).sum())
            parts.append(f"{where}: {100 * run['best_train_accuracy']:.2f} % at the paper's {paper_choice} against "
                         f"{ours}, {gap:.2f} points less ({_ordinal(int(run['rank']))} of our {usable} runs)")
    sentence = ("Where the choices differ, our own run at the paper's (init, lr) — best training accuracy, the "
                "criterion of the selection: " + "; ".join(parts) + ".")
    return prose(sentence)


def grid_agreement_by_budget(dataset: str, results_base: Optional[str] = None,
                             budgets: Sequence[str] = ("cpu", "paper")) -> pd.DataFrame:
    """How many of our grid-search selections are the paper's, per budget and BN setting, from
    the records alone (a grid not yet complete says how far it is)."""
    from ..protocol import grid_configs, summarise
    from ..sweep import select_hyperparameters

    rows = []
    for name in budgets:
        budget, store = open_store(name, results_base)
        for batch_norm in (False, True):
            configs = grid_configs(dataset, batch_norm, budget)
            grid = summarise(store, configs, budget)
            row = {"budget": f"{name} ({budget.epochs} epochs)", "BN": bn_with(batch_norm)}
            if not all_finished(grid, configs, budget):
                row["our (init, lr) is the paper's"] = (f"grid not complete: {finished_runs(grid, budget)} of "
                                                        f"{len(configs)} runs")
            else:
                table = grid_comparison(select_hyperparameters(grid), dataset, batch_norm)
                row["our (init, lr) is the paper's"] = f"{table.attrs['agree']} of {table.attrs['compared']}"
            rows.append(row)
    return pd.DataFrame(rows)


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


def stage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Compute time per dataset × BN × stage (grid search or final runs) × rules (the paper's or
    the SHALLOW control), from run metadata: runs, epochs, hours, the median seconds per epoch of
    a run (robust to the few runs slowed by other work or paused), devices."""
    frame = runs.assign(stage=runs["seed"].map(lambda s: "grid search" if s == 1 else "final runs"),
                        rules=runs["algorithm"].map(lambda a: "control" if a in CONTROLS else "paper's"),
                        per_epoch=runs["seconds"] / runs["epochs_done"].where(runs["epochs_done"] > 0))
    stages = frame.groupby(["dataset", "batch_norm", "stage", "rules"], sort=False).agg(
        runs=("run_id", "size"), epochs=("epochs_done", "sum"), hours=("seconds", lambda x: x.sum() / 3600),
        per_epoch=("per_epoch", "median"), device=("device", lambda d: ", ".join(sorted(set(d))))).reset_index()
    # in the order the protocol runs them: dataset, BN off then on, grid before finals, the
    # paper's rules before the control
    rank = {**DATASET_RANK, "grid search": 0, "final runs": 1, "paper's": 0, "control": 1}
    stages = stages.sort_values(["dataset", "batch_norm", "stage", "rules"], kind="stable",
                                key=lambda c: c if c.name == "batch_norm" else c.map(lambda v: rank.get(v, len(rank)))) \
        .reset_index(drop=True)
    return pd.DataFrame({
        "data": [f"{dataset_name(d)}, {bn_short(b)}" for d, b in zip(stages["dataset"],
                                                                                      stages["batch_norm"])],
        "stage": stages["stage"], "rules": stages["rules"], "runs": stages["runs"], "run-epochs": stages["epochs"],
        "hours": stages["hours"].map(lambda v: f"{v:.2f}"),
        "median s/epoch": stages["per_epoch"].map(lambda v: "–" if v != v else f"{v:.1f}"),
        "device": stages["device"]})


# ---------------------------------------------------------------------- figures


def best_test_boxplot(summary: pd.DataFrame, title: str):
    """Per rule (x) and setting (colour): every seed's best test accuracy as a dot over a box of
    its median and quartiles (whiskers 1.5 IQR; no separate outlier marks: the dots show them).
    Without BN the boxes of a rule are a few tenths of a point tall — the dots keep them visible.
    A collapsed run stays in its box but is drawn as a red cross."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    frame = with_setting(summary[~summary["diverged"]])
    frame["best test accuracy (%)"] = 100 * frame["best_test_accuracy"]
    palette = setting_palette()
    fig, ax = plt.subplots(figsize=(10, 4.8))
    sns.boxplot(data=frame, x="algorithm", y="best test accuracy (%)", hue="setting", hue_order=SETTINGS,
                palette=palette, ax=ax, showfliers=False, boxprops={"alpha": 0.35}, linewidth=1, legend=False)
    _dots_with_collapsed_apart(ax, frame, "setting", SETTINGS, palette, "weights, activation",
                               y="best test accuracy (%)", jitter=0.12, size=4, linewidth=0.5, edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def grid_robustness_boxplot(summary: pd.DataFrame, title: str):
    """Per rule (x) and weight kind (colour): every grid run's best training accuracy as a dot over a box;
    collapsed runs as red crosses."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    frame = with_setting(summary[~summary["diverged"]])
    frame["best training accuracy (%)"] = 100 * frame["best_train_accuracy"]
    frame["weights"] = pd.Categorical(frame["weights"], ["continuous", "binary"], ordered=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.boxplot(data=frame, x="algorithm", y="best training accuracy (%)", hue="weights", ax=ax, showfliers=False,
                boxprops={"alpha": 0.6})  # no outlier marks: every run is a dot below
    # the dots are black and add no legend entries: the boxes' colours name the weight kinds
    _dots_with_collapsed_apart(ax, frame, "weights", ["continuous", "binary"],
                               {"continuous": "black", "binary": "black"}, "weights",
                               y="best training accuracy (%)", size=3, alpha=0.5, legend=False)
    ax.set_title(title)
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def learning_curves_figure(epochs: pd.DataFrame, title: str, paper_curve: Optional[dict] = None):
    """Test accuracy versus epoch, mean ± std over seeds, one panel per weight kind (sign activations).
    ``paper_curve`` (:func:`~bnnlib.book.paper.paper_learning_curve`): the paper's points for BP with
    binary weights, and its plateau band, drawn where they fall within the epochs shown."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    frame = with_setting(epochs)
    frame["test accuracy (%)"] = 100 * frame["test_accuracy"]
    weights = ["continuous", "binary"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    # a marker per epoch helps read a few epochs; over the paper's 100 it hides the spread band
    marker = "o" if len(frame) == 0 or frame["epoch"].max() <= 20 else None
    for ax, kind in zip(axes, weights):
        part = frame[frame["weights"] == kind]
        sns.lineplot(data=part, x="epoch", y="test accuracy (%)", hue="algorithm", errorbar="sd", ax=ax,
                     marker=marker, hue_order=algorithms_in(frame), palette=algorithm_palette(),
                     legend=kind == weights[-1])
        ax.set_title(f"{kind} weights, sign activations")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if paper_curve is not None and len(frame):
        last = int(frame["epoch"].max())
        points = [(e, a) for e, a in paper_curve["bp_binary_sign"] if e <= last]
        if points:
            axes[-1].plot([e for e, _ in points], [100 * a for _, a in points], "X", color="black", markersize=9,
                          label="paper, BP (read from its figure)")
        if paper_curve["plateau_from"] <= last:
            low, high = paper_curve["plateau"]
            for ax in axes:
                ax.fill_between([paper_curve["plateau_from"], last], 100 * low, 100 * high, color="grey", alpha=0.15,
                                lw=0, label="paper, other rules' plateau" if ax is axes[-1] else None)
        axes[-1].legend()
    sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.01, 1), title=None, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def learning_curve_comparison(epochs: pd.DataFrame, paper_curve: dict, budget: Budget, with_paper: bool = True,
                              heading: Optional[str] = None) -> str:
    """The paper's published curve (Fashion-MNIST, sign activations, no BN) beside ours at the
    same epochs: BP with binary weights, and where the other configurations end up
    (``with_paper=False``: ours only, introduced by ``heading``)."""
    frame = with_setting(epochs)
    mean = frame.groupby(["algorithm", "setting", "epoch"], observed=True)["test_accuracy"].mean()
    last = int(frame["epoch"].max()) if len(frame) else 0
    bp = mean.xs(("BP", "binary sign"), level=["algorithm", "setting"]) if ("BP", "binary sign") in \
        mean.index.droplevel("epoch") else pd.Series(dtype=float)
    paper_points = ", ".join(f"{100 * a:.0f} % {'after epoch' if e == 1 else 'at epoch'} {e}"
                             for e, a in paper_curve["bp_binary_sign"])
    epochs = [e for e, _ in paper_curve["bp_binary_sign"]]
    ours = [f"{100 * bp[e]:.1f} % {'after epoch' if e == 1 else 'at epoch'} {e}" for e in epochs if e in bp.index]
    if last and last not in epochs and last in bp.index:
        ours.append(f"{100 * bp[last]:.1f} % at epoch {last}, the last of this budget")
    unreached = [str(e) for e in epochs if e > last]
    if unreached and ours:
        ours[-1] += f" (epoch{'s' if len(unreached) > 1 else ''} {' and '.join(unreached)} not reached at this budget)"
    others = mean[mean.index.get_level_values("epoch") == last]
    others = others[~((others.index.get_level_values("algorithm") == "BP") &
                      (others.index.get_level_values("setting").str.startswith("binary")))]
    low, high = paper_curve["plateau"]
    if not len(others):
        return "No Fashion-MNIST runs without BN are recorded at this budget."
    theirs = (f"The paper's figure (Fashion-MNIST, sign activations, no BN; read by eye): BP with binary weights at "
              f"about {paper_points}; every other configuration on a plateau of {100 * low:.0f}–{100 * high:.0f} % by "
              f"about epoch {paper_curve['plateau_from']}. ")
    bp_text = f"BP with binary weights {', '.join(ours)}; " if ours else ""
    low_ours, high_ours = f"{100 * others.min():.1f}", f"{100 * others.max():.1f}"
    spread = low_ours if low_ours == high_ours else f"{low_ours}–{high_ours}"
    return (f"{theirs if with_paper else ''}{heading or f'Ours at the **{budget.name}** budget'} (mean over the "
            f"seeds): {bp_text}every other configuration {spread} % at epoch {last}.")


def learning_curve_so_far(so_far: pd.DataFrame, epochs: pd.DataFrame, paper_curve: dict) -> str:
    """:func:`learning_curve_comparison`'s sentence for the sign configurations finished so far at
    the paper budget (``so_far``: :func:`paper_finals_so_far`; ``epochs``: the paper budget's
    records), while the page shows another budget; "" when none of them has sign activations."""
    sign = so_far[so_far["activation"] == "sign"]
    if sign.empty:
        return ""
    names = ", ".join(f"{a} {w} sign" for a, w in
                      sign[["algorithm", "weights"]].drop_duplicates().sort_values(["algorithm", "weights"]).values)
    shown = epochs[epochs["run_id"].isin(sign["run_id"]) & (epochs["epoch"] <= get_budget("paper").epochs)]
    return learning_curve_comparison(shown, paper_curve, get_budget("paper"), with_paper=False,
                                     heading=f"At the **paper** budget so far — provisional, from the sign "
                                             f"configurations whose seeds have all finished ({names}) — ours")


def late_gains(epochs: pd.DataFrame, budget: Budget, alpha: float = 0.05) -> pd.DataFrame:
    """Are the runs still learning when the budget ends? Per configuration (setting × algorithm):
    the change of test accuracy over the last tenth of the budget's epochs (at least one), epoch
    N − w → N, mean over the seeds; a one-sided paired t-test over the seeds that it is above 0,
    Holm-corrected over the configurations; and how much those epochs raised the figure of merit
    (best test accuracy over epochs 1…N against 1…N − w), which only grows. A seed lacking either
    epoch (diverged, or not that far) is left out."""
    from scipy import stats

    last = budget.epochs
    window = max(1, last // 10)
    frame = with_setting(epochs[epochs["epoch"] <= last])
    rows = []
    for (setting, algorithm), runs in frame.groupby(["setting", "algorithm"], observed=True):
        accuracy = runs.pivot_table(index="seed", columns="epoch", values="test_accuracy")
        if last not in accuracy or last - window not in accuracy:
            continue
        change = (accuracy[last] - accuracy[last - window]).dropna()
        best_gain = (accuracy.max(axis=1) - accuracy.loc[:, :last - window].max(axis=1))[change.index]
        p = float("nan")
        if len(change) >= 2 and change.std() > 0:
            p = float(stats.ttest_1samp(change, 0.0, alternative="greater").pvalue)
        elif len(change) >= 2:  # every seed changed by the same amount: no doubt about its sign
            p = 0.0 if change.mean() > 0 else 1.0
        rows.append({"setting": str(setting), "algorithm": str(algorithm),
                     "accuracy": float(accuracy[last][change.index].mean()), "change": float(change.mean()),
                     "best_gain": float(best_gain.mean()), "seeds": len(change), "p": p})
    table = pd.DataFrame(rows, columns=["setting", "algorithm", "accuracy", "change", "best_gain", "seeds", "p"])
    table["p_holm"] = holm(table["p"].tolist())
    table["rising"] = table["p_holm"] < alpha
    table.attrs.update(first=last - window, last=last)
    return table


def late_gains_display(gains: Dict[tuple, pd.DataFrame], budgets: Dict[tuple, Budget]) -> pd.DataFrame:
    """:func:`late_gains` of several dataset × BN settings side by side: per configuration, the
    change of mean test accuracy over each setting's last epochs (points), starred where it is
    significantly above 0."""
    columns = {}
    for key, table in gains.items():
        if table.empty:
            continue
        dataset, batch_norm = key
        name = (f"{dataset_name(dataset)}, {bn_short(batch_norm)} "
                f"({budgets[key].name}, epoch {table.attrs['first']} → {table.attrs['last']})")
        starred = [f"{signed_points(c)}{' *' if r else ''}" for c, r in zip(table["change"], table["rising"])]
        columns[name] = pd.Series(starred,
                                  index=pd.MultiIndex.from_arrays([table["setting"], table["algorithm"]]))
    if not columns:
        return pd.DataFrame(columns=["setting", "algorithm"])
    out = pd.DataFrame(columns).reindex(pd.MultiIndex.from_tuples(
        [(s, a) for s in SETTINGS for a in (*ALGORITHMS, *CONTROLS)], names=["setting", "algorithm"]))
    out = out.dropna(how="all").fillna("–").reset_index()
    return out


def late_gains_sentence(gains: Dict[tuple, pd.DataFrame], budgets: Dict[tuple, Budget], named: int = 3) -> str:
    """Which configurations are still rising when each setting's budget ends (the ``named``
    largest rises by name), and the largest late rise of the figure of merit: a Markdown list."""
    items = []
    for (dataset, batch_norm), table in gains.items():
        if table.empty:
            continue
        rising = table[table["rising"]].sort_values("change", ascending=False)
        top = table.loc[table["best_gain"].idxmax()]
        names = [f"{r.algorithm} {r.setting} ({100 * r.change:+.2f} points)" for r in rising.itertuples()]
        if len(names) > named:
            names = names[:named] + [f"{len(names) - named} more"]
        items.append(f"- {dataset_name(dataset)} {bn_with(batch_norm)} BN "
                     f"({budgets[dataset, batch_norm].name} budget, epoch {table.attrs['first']} → "
                     f"{table.attrs['last']}): **{len(rising)} of {len(table)}** configurations still rising"
                     + (f" — {', '.join(names)}" if names else "")
                     + f". Over those epochs the figure of merit rose by at most {100 * top.best_gain:.2f} points "
                       f"({top.algorithm}, {top.setting}).")
    if not items:
        return "No complete final runs are recorded to tell."
    return ("Still rising when the budget ends: mean test accuracy higher at the last epoch than a tenth of the "
            "budget before (one-sided paired t-test over the seeds, Holm-corrected per setting).\n\n"
            + "\n".join(items))


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


# ---------------------------------------------------------------------- what each page rests on


def paper_progress(results_base: Optional[str] = None) -> tuple:
    """How far the paper budget's protocol is, from its records: (stage table, sentence)."""
    from ..protocol import LONG_RUN_WORKERS, progress

    budget = get_budget("paper")
    state = progress(paper_store(results_base), budget)
    until = state.hours_until_done(LONG_RUN_WORKERS)
    table = pd.DataFrame([{"stage": stage, "runs finished": finished, "of": total,
                           "done in about (h)": "–" if hours is None else f"{hours:.0f}"}
                          for (stage, finished, total), hours in zip(state.stages, until)])
    share = 100 * state.run_epochs_done / state.run_epochs_total

    def count(n):
        return f"{n:,}".replace(",", "\u202f")  # a thin space between thousands

    sentence = (f"At the **paper** budget, {state.runs_complete} of {state.runs_total} runs are finished "
                f"({count(state.run_epochs_done)} of {count(state.run_epochs_total)} run-epochs, {share:.1f}\u00a0%), "
                f"stage by stage in the order `python -m bnnlib protocol --budget paper` runs them; each page "
                f"switches to the paper budget when all of its runs are recorded (the table above says which do).")
    hours = state.hours_left(LONG_RUN_WORKERS)
    if hours is not None and state.runs_complete < state.runs_total:
        if state.processor:
            speed = (f"At the speed of the machine that wrote the latest record ({state.machine}) — each kind of run "
                     f"at its median seconds per epoch there, a kind not yet run there at its median on the earlier "
                     f"machines, each scaled by this one's measured speed against it and weighted by the number of "
                     f"runs that speed was measured on —")
        else:
            speed = "At the speed each kind of run has recorded (its median seconds per epoch),"
        sentence += (f" {speed} about {hours:.0f}\u00a0hours are left for the {LONG_RUN_WORKERS} single-threaded "
                     f"workers of `make long-run`.")
    return table, sentence


def processor_table(epochs: pd.DataFrame) -> pd.DataFrame:
    """Per kind of processor that computed a budget's epochs (each epoch row names its own; pass
    every copy of a recomputed epoch, and each kind counts what it computed): the
    runs and run-epochs it computed, its compute hours (each run's share of its group's wall
    time) and the median seconds of a run-epoch on one worker (the median over runs of each run's
    median epoch there, robust to a few epochs slowed by other work)."""
    from ..protocol import median_epoch_seconds

    if epochs.empty or not {"group_epoch_seconds", "members"} <= set(epochs):
        return pd.DataFrame(columns=["processor", "runs", "run-epochs", "hours", "median s/run-epoch"])
    frame = epochs.assign(processor=epochs.get("processor", pd.Series(index=epochs.index, dtype=object))
                          .fillna("not recorded (older runs)"),
                          seconds=epochs["group_epoch_seconds"] / epochs["members"])
    rows = []
    for name, group in frame.groupby("processor", sort=False):
        rows.append({"processor": name, "runs": group["run_id"].nunique(), "run-epochs": len(group),
                     "hours": f"{group['seconds'].sum() / 3600:.1f}",
                     "median s/run-epoch": f"{median_epoch_seconds(group).median():.1f}"})
    return pd.DataFrame(rows).sort_values("run-epochs", ascending=False, kind="stable").reset_index(drop=True)


def cross_processor_copies(epochs: pd.DataFrame) -> pd.DataFrame:
    """Per kind of run (rule, weights, activation, BN), its epochs recorded by two or more kinds of
    processor, how many of them differ in any metric or class count, and the largest difference in
    test accuracy (points) between the copies: a run restarted from scratch on another kind of
    machine computes its first epochs again, and the copies show whether the two kinds' sums
    agreed to the last bit."""
    from ..runner import CLASS_COUNTS, METRICS
    from ..store import EPOCH_KEY

    columns = ["algorithm", "weights", "activation", "batch_norm", "epochs", "differing", "largest difference"]
    if epochs.empty or "processor" not in epochs:
        return pd.DataFrame(columns=columns)
    known = epochs[epochs["processor"].notna()]
    kinds = known.groupby(EPOCH_KEY)["processor"].nunique()
    shared = kinds[kinds > 1].index
    if shared.empty:
        return pd.DataFrame(columns=columns)
    copies = known.set_index(EPOCH_KEY).loc[shared]
    by_epoch = copies.groupby(level=list(range(len(EPOCH_KEY))))
    per_epoch = by_epoch[["algorithm", "weights", "activation", "batch_norm"]].first().assign(
        differing=by_epoch[[name for name in ("loss", *METRICS, *CLASS_COUNTS) if name in copies]]
        .nunique(dropna=False).gt(1).any(axis=1),  # every value recorded (older tables lack class counts)
        spread=100 * (by_epoch["test_accuracy"].max() - by_epoch["test_accuracy"].min()))
    table = per_epoch.groupby(["algorithm", "weights", "activation", "batch_norm"], sort=True).agg(
        epochs=("differing", "size"), differing=("differing", "sum"), spread=("spread", "max"))
    return table.rename(columns={"spread": "largest difference"}).reset_index()


def paper_processors(results_base: Optional[str] = None) -> Tuple[pd.DataFrame, str]:
    """:func:`processor_table` of the paper budget's records, and a sentence on the epochs two kinds
    of processor computed (:func:`cross_processor_copies`; empty where there are none): which kinds
    of run agreed to the last bit, which did not, and why."""
    epochs = paper_store(results_base).epochs(every_copy=True)
    table = processor_table(epochs)
    copies = cross_processor_copies(epochs)
    if copies.empty:
        return table, ""

    def kind(row) -> str:
        return (f"{row['algorithm']}, {row['weights']} weights, {row['activation']}, "
                f"{bn_short(row['batch_norm'])} ({int(row['epochs'])}\u00a0epochs")

    same = [kind(row) + ")" for _, row in copies.iterrows() if row["differing"] == 0]
    other = [kind(row) + f", {int(row['differing'])} differing, test accuracy by up to "
             f"{row['largest difference']:.2f}\u00a0points)" for _, row in copies.iterrows() if row["differing"] > 0]
    sentence = (f"{int(copies['epochs'].sum())} epochs were computed on two kinds of processor (runs restarted from "
                f"scratch on another machine, their checkpoints lost).")
    if same:
        sentence += f" Identical in every metric and class count: {'; '.join(same)}."
    if other:
        sentence += (f" Not identical: {'; '.join(other)}. Sums of ±1 × ±1 products are integers, exact in any "
                     f"order; float32 sums are rounded in the order the BLAS's kernels add them, and the BLAS "
                     f"picks its kernels by processor; a last-bit difference in one step changes every step "
                     f"after it. Every run keeps the latest copy of each epoch, so a run "
                     f"restarted elsewhere is one processor's computation throughout.")
    return table, sentence


def pages_overview(requested: str = BEST, results_base: Optional[str] = None) -> pd.DataFrame:
    """Per page of the book: the budget it shows (as ``python -m bnnlib book --budget requested``
    chooses it), how many recorded runs it rests on, and their compute time (hours, from the run
    metadata); and, where a page shows part of its settings at another budget than paper, the paper
    budget's runs it already shows beside them, marked provisional there ("paper so far": the
    configurations whose seeds have all finished, or the settings whose runs are all recorded).
    Read from the records only; nothing is computed."""
    from . import claims, mechanism
    from .pipeline import CHAPTERS, RESULT_PAGES, TEMPLATE, result_page_name
    from ..protocol import grid_configs, summarise

    every = [(d, b) for d in ("mnist", "fashion-mnist") for b in (False, True)]
    rows = []

    def recorded(store, run_ids):
        """(runs, hours) of these run ids in a store's records."""
        runs = store.runs()
        mine = runs[runs["run_id"].isin(set(run_ids))] if not runs.empty else runs
        return len(mine), (float(mine["seconds"].sum()) if len(mine) else 0.0) / 3600

    def add(page, budget, store, run_ids, note="", so_far=()):
        add_parts(page, [(budget, store, run_ids)], note, so_far)

    def add_parts(page, parts, note, so_far=()):
        """One row from parts shown at possibly different budgets: "paper + cpu" while they differ;
        ``so_far``: the paper budget's run ids shown provisionally beside a part at another budget."""
        count, hours = 0, 0.0
        for _, store, run_ids in parts:
            runs, part_hours = recorded(store, run_ids)
            count, hours = count + runs, hours + part_hours
        ahead, ahead_hours = recorded(paper_store(results_base), so_far) if so_far else (0, 0.0)
        rows.append({"page": page, "budget": " + ".join(dict.fromkeys(b.name for b, _, _ in parts)), "runs": count,
                     "compute (h)": f"{hours:.2f}" if count else "–",
                     "paper so far": f"{ahead} runs, {ahead_hours:.2f} h" if ahead else "–", "what": note})

    def shown_so_far(stem, unit, budget):
        """The paper budget's run ids a page shows ahead of its own budget for these settings
        (:data:`SHOWN_SO_FAR`)."""
        shows = SHOWN_SO_FAR.get(stem)
        if shows is None or budget.name == "paper":
            return []
        if shows == "settings":
            summaries = claims.recorded_so_far("paper", list(dict.fromkeys(d for d, _ in unit)), results_base)
            return [run_id for summary in summaries.values() for run_id in summary["run_id"]]
        run_ids = []
        for dataset, batch_norm in unit:
            if shows == "figure" and (dataset, batch_norm) != paper_learning_curve()["setting"]:
                continue  # the page sets only the paper's figure's setting beside the long run so far
            so_far = paper_finals_so_far(dataset, batch_norm, results_base)
            if so_far is None:
                continue
            if shows == "figure":
                so_far = so_far[so_far["activation"] == "sign"]  # the figure's configurations
            run_ids += list(so_far["run_id"])
        return run_ids

    def probed():
        budget, store = mechanism.open_store(requested, results_base, every)
        try:
            configs = [c for d, b in every for c in mechanism.recorded_configs(d, b, budget, store)]
        except LookupError:
            configs = []
        return budget, mechanism.mechanism_store(store), [c.run_id for c in configs]

    for chapter in CHAPTERS:
        stem = chapter.removesuffix(".ipynb")
        if chapter == TEMPLATE:
            for dataset, batch_norm in RESULT_PAGES:
                page = result_page_name(dataset, batch_norm).removesuffix(".ipynb")
                budget, store = open_store(requested, results_base, needs=[(dataset, batch_norm)])
                run_ids = _finals_with_controls(dataset, batch_norm, budget, store)
                add(page, budget, store, run_ids, "final runs" if run_ids else "no runs recorded",
                    shown_so_far(TEMPLATE.removesuffix(".ipynb"), [(dataset, batch_norm)], budget))
        elif stem in ("02_methods", "06c_mechanism"):
            budget, store, run_ids = probed()
            add(stem, budget, store, run_ids, "probed fully binary final runs (diagnostics)")
        elif stem == "03_grid_search":  # each BN setting's grid at its own best budget
            parts = []
            for batch_norm in (False, True):
                budget, store = open_store(requested, results_base, needs=[("mnist", batch_norm)], grid_only=True)
                run_ids = []
                for algorithms in (ALGORITHMS, CONTROLS):
                    configs = grid_configs("mnist", batch_norm, budget, algorithms=algorithms)
                    run_ids += list(summarise(store, configs, budget).get("run_id", []))
                parts.append((budget, store, run_ids))
            add_parts(stem, parts, "grid search (seed 1)")
        else:  # pages that show each setting (or dataset) at its own best budget, or all at one
            parts, so_far = [], []
            for unit in PAGE_UNITS.get(stem, [every]):
                budget, store = open_store(requested, results_base, needs=unit)
                parts.append((budget, store, [r for d, b in unit for r in _finals_with_controls(d, b, budget, store)]))
                so_far += shown_so_far(stem, unit, budget)
            add_parts(stem, parts, "final runs of MNIST and Fashion-MNIST", so_far)
    return pd.DataFrame(rows)
