"""SHALLOW, our control, beside the rules: what random binary features reach with only the output
layer trained, in the binary settings — a harder bar for C1 than chance, and, fully binary, the
bar BP's own training of the hidden layers has to clear (#44's question for C2). Read by the
Conclusions and by the mechanism chapter while its probed runs are shorter than the paper's."""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

import pandas as pd

from ..protocol import (CONTROLS, EXTENSIONS, GRID_DATASET, PROBED_SETTING, Budget, _is_probed_setting, grid_configs,
                        probed_store, summarise)
from ..store import ResultsStore
from ..sweep import select_hyperparameters
from .claims import BINARY_SETTINGS
from .labels import ALTERNATIVES, BASELINE, DATASET_NAMES, bn_short, dataset_name, with_setting
from .records import _recorded_finals_so_far, all_finished, epochs_label, finished_runs, open_store, recorded_finals


def control_sentence(summary: pd.DataFrame, dataset: str, batch_norm: bool, budget: Budget,
                     store: ResultsStore) -> str:
    """Whether the SHALLOW control's rows are in a results page's tables (``summary``), what it is,
    and, where they are not yet, how far its runs are at the page's budget."""
    what = ("SHALLOW is a control, not one of the paper's rules: it trains only the output layer and leaves "
            "the hidden layers at their random initial weights; a rule that does no better than SHALLOW has "
            "not trained its hidden layers.")
    if "SHALLOW" in set(summary["algorithm"]):
        what += " Its grid search and final runs follow the same protocol; the paper has no numbers for it."
    else:
        recorded = _recorded_finals_so_far(dataset, batch_norm, budget, store, CONTROLS)
        if recorded is None:
            what += (f" It is not recorded with **{epochs_label(budget)}** for this setting "
                     f"(`python -m bnnlib protocol --budget {budget.name} --algorithm SHALLOW` runs it).")
        else:
            finals, runs = recorded
            what += (f" Its grid search is recorded with **{epochs_label(budget)}** (one seed per configuration, "
                     f"as the paper's rules'), its final runs not yet: **{finished_runs(runs, budget)} of "
                     f"{len(finals)}** so far (Reproducing shows how far the long run is). Its rows join this "
                     f"page's tables once all are.")
            probed = _fully_binary_probed(dataset, batch_norm, budget, store)
            if probed is not None:  # the same runs as its fully binary finals: Conclusions already reads them
                what += (f" Its {len(probed)} fully binary ones are recorded already, as the mechanism chapter's "
                         f"probed runs (mean best test accuracy {100 * probed['best_test_accuracy'].mean():.1f} %), "
                         f"which the Conclusions and that chapter use; the final runs' stage takes them over.")
    extensions = [a for a in EXTENSIONS if a in set(summary["algorithm"])]
    if extensions:
        what += (f" {' and '.join(extensions)} {'are' if len(extensions) > 1 else 'is'} our extension"
                 f"{'s' if len(extensions) > 1 else ''}, not the paper's: each learning rule of bnnlib/rules/ runs "
                 f"through the same grid search and final runs, and none enters the paper's claims.")
    return what


class ShallowCell(NamedTuple):
    """One binary cell of :func:`shallow_beside`."""
    shallow: float  # SHALLOW's mean best test accuracy
    lowest: float  # the lower of DFA's and DRTP's means in the same cell
    where: str  # "binary sign, MNIST no BN"
    one_seed: bool  # SHALLOW's number is its grid search's selected run, not its final runs


def _fully_binary_probed(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore) -> Optional[pd.DataFrame]:
    """SHALLOW's fully binary final runs of a setting as the probed runs recorded them — the same
    runs: the finals stage adopts them (:func:`~bnnlib.protocol.adopt_probed`) — once every seed has
    finished; None before."""
    recorded = _recorded_finals_so_far(dataset, batch_norm, budget, store, CONTROLS)
    if recorded is None:
        return None
    finals = [c for c in recorded[0] if _is_probed_setting(c)]
    summary = summarise(probed_store(store), finals, budget)
    return summary if finals and all_finished(summary, finals, budget) else None


def shallow_beside(summaries: Dict[Tuple[str, bool], pd.DataFrame], budget: Budget,
                   results_base: Optional[str] = None) -> Tuple[List[ShallowCell], List[tuple], str]:
    """SHALLOW's mean best test accuracy per binary cell of ``summaries`` (the rules' final runs
    by setting) — from its final runs where recorded at ``budget``, else from its grid search's
    selected runs (one seed, on the grid's dataset), fully binary from its final runs where the
    probed runs have recorded them all (they are those runs). Returns (cells, fully binary: [(BP's
    mean, SHALLOW, where)], the source in words)."""
    _, store = open_store(budget.name, results_base)
    rows, source, from_grid, probed = [], "final runs (mean over seeds)", False, {}
    for (dataset, batch_norm) in summaries:
        recorded = recorded_finals(dataset, batch_norm, budget, store, algorithms=CONTROLS)
        if recorded is not None:
            rows.append((dataset, batch_norm, recorded))
    if not rows:  # not yet: the grid search's choice per setting, on the grid's dataset
        source, from_grid, by_setting = "grid search's selected run of each setting (one seed)", True, {}
        for dataset, batch_norm in dict.fromkeys((GRID_DATASET[d], b) for d, b in summaries):
            configs = grid_configs(dataset, batch_norm, budget, algorithms=CONTROLS)
            grid = summarise(store, configs, budget)
            if not grid.empty and all_finished(grid, configs, budget):
                chosen = select_hyperparameters(grid)[["weights", "activation", "init", "lr"]]
                by_setting[dataset, batch_norm] = grid.merge(chosen, on=["weights", "activation", "init", "lr"])
        probed = {key: runs for key in summaries
                  if (runs := _fully_binary_probed(*key, budget, store)) is not None}
        for key, runs in probed.items():  # fully binary: the final runs' seeds replace the grid's one
            grid = by_setting.get(key, runs.iloc[:0])
            fully_binary = (grid["weights"] == PROBED_SETTING["weights"]) & \
                (grid["activation"] == PROBED_SETTING["activation"])
            by_setting[key] = pd.concat([grid[~fully_binary], runs], ignore_index=True)
        rows = [(dataset, batch_norm, runs) for (dataset, batch_norm), runs in by_setting.items()]
        if probed:
            seeds = sorted({len(runs) for runs in probed.values()})
            where = ", ".join(f"{dataset_name(d)} {bn_short(b)}" for d, b in probed)
            source += (f" and, fully binary on {where}, its {'/'.join(map(str, seeds))} final runs (mean over "
                       f"seeds, recorded with the probed runs)")
    cells, fully_binary = [], []
    for dataset, batch_norm, shallow in rows:
        if (dataset, batch_norm) not in summaries:  # the grid's dataset (MNIST) where only another one is asked
            continue
        shallow = with_setting(shallow[~shallow["diverged"]])
        ours = with_setting(summaries[dataset, batch_norm])
        for setting in BINARY_SETTINGS:
            bar = shallow.loc[shallow["setting"] == setting, "best_test_accuracy"]
            alternatives = ours[(ours["setting"] == setting) & ours["algorithm"].isin(list(ALTERNATIVES))]
            if bar.empty or alternatives.empty:
                continue
            lowest = alternatives.groupby("algorithm", observed=True)["best_test_accuracy"].mean().min()
            where = f"{setting}, {dataset_name(dataset)} {bn_short(batch_norm)}"
            one_seed = from_grid and not ((dataset, batch_norm) in probed and setting == "binary sign")
            cells.append(ShallowCell(bar.mean(), lowest, where, one_seed))
            bp = ours.loc[(ours["setting"] == setting) & (ours["algorithm"] == BASELINE) & ~ours["diverged"],
                          "best_test_accuracy"]
            if setting == "binary sign" and len(bp):  # C2's fully binary networks
                fully_binary.append((bp.mean(), bar.mean(), f"{dataset_name(dataset)} {bn_short(batch_norm)}"))
    return cells, fully_binary, source


def shallow_bar_phrase(cells: List[ShallowCell]) -> str:
    """C1's harder bar in a phrase, from :func:`shallow_beside`'s cells: SHALLOW's highest mean in a
    binary setting, and whether DFA's and DRTP's lowest lies above SHALLOW's cell by cell, by how much
    at the least and where — each rule compared within its own cell, never with another cell's bar
    ("" where none is recorded)."""
    if not cells:
        return ""
    highest = max(cells, key=lambda cell: (cell.shallow, cell.where))  # a tie: the last cell by name
    closest = min(cells, key=lambda cell: (cell.lowest - cell.shallow, cell.where))
    below = sum(cell.lowest <= cell.shallow for cell in cells)
    n = len(cells)
    # which datasets the cells cover (SHALLOW's grid search runs on the grid's dataset alone)
    on = " and ".join(name for name in DATASET_NAMES.values() if any(f", {name} " in cell.where for cell in cells))
    one_seed = "; one seed" if highest.one_seed else ""
    measured = (f"measured in the one binary cell{' on ' + on if on else ''}: {100 * highest.shallow:.1f} %{one_seed}"
                if n == 1 else f"measured in {n} binary cells{' on ' + on if on else ''}: up to "
                f"{100 * highest.shallow:.1f} % in {highest.where}{one_seed}")
    if below:
        beside = f"DFA's or DRTP's mean lies at or below SHALLOW's in the same cell in {below} of {n}"
    else:
        margin = f"by at least {100 * (closest.lowest - closest.shallow):.1f} points"
        beside = (f"DFA's and DRTP's means lie above SHALLOW's in the same cell in all {n}, {margin} ({closest.where})"
                  if n > 1 else f"DFA's and DRTP's means lie above it, {margin}")
    return f"random binary features with only the output layer trained (our SHALLOW control, {measured}): {beside}"


def bp_against_shallow(fully_binary: List[tuple]) -> str:
    """"60.2 % against SHALLOW's 57.4 % on MNIST no BN (+2.8 points: above its untrained hidden
    layers); …" from :func:`shallow_beside`'s fully binary rows."""
    return "; ".join(f"{100 * bp:.1f} % against SHALLOW's {100 * bar:.1f} % on {where} ({100 * (bp - bar):+.1f} "
                     f"points: {'above' if bp > bar else 'at or below'} its untrained hidden layers)"
                     for bp, bar, where in fully_binary)
