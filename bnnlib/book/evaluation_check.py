"""The evaluation check: does the original code's evaluation pass explain why, with BN, our
medians lie above the paper's?

Between its train and test evaluations the original code measures HSIC by running the first 2000
training images through the network in training mode, which moves BN's running statistics before
the test set is seen (:data:`bnnlib.config.EVALUATIONS`). The long run repeats the paper's BN
final runs of the first seeds with ``evaluation="paper-code"``
(:func:`bnnlib.protocol.evaluation_configs`): the training is the same, and each epoch records the
test accuracy both ways — ``standard_test_accuracy`` before the pass, ``test_accuracy`` after.

Per run, the paper's metric (the best test accuracy over the epochs) both ways and their
difference, the pass's effect; per configuration, the mean over its checked seeds. Our median
plus its configuration's effect is what our runs would report had they been evaluated as the
original code evaluates. A check run's standard evaluation must equal its record's (the run of
the same seed in the results folder): where it does not, the training was not the same, and the
page says so.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ..protocol import ALGORITHMS, epoch_records, evaluation_configs, evaluation_store
from .labels import with_setting
from .pages import Page


def check_runs(page: Page, selection: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`check_runs_of` the page's dataset and BN setting (none without BN)."""
    if not page.batch_norm:  # without BN the pass moves nothing: no check runs
        return check_runs_of(None, page.budget, page.dataset, selection.iloc[0:0], summary, page.device)
    return check_runs_of(page.store, page.budget, page.dataset, selection, summary, page.device)


def check_runs_of(store, budget, dataset: str, selection: pd.DataFrame, summary: pd.DataFrame,
                  device: str = "cpu") -> pd.DataFrame:
    """One row per finished check run of ``dataset`` with BN, whose final runs used ``selection``
    (every epoch of the budget recorded, not diverged): its configuration, the best test accuracy evaluated as the original code does
    (``paper_code``) and as every record is (``standard``), and whether the latter equals the
    record of the same seed (``same_training``; None where that record is missing).
    ``attrs["planned"]``: how many check runs the setting has (``store``: the budget's results
    folder; the check runs live in its ``evaluation`` folder)."""
    columns = ["algorithm", "weights", "activation", "seed", "paper_code", "standard", "same_training"]
    none = pd.DataFrame(columns=columns)
    none.attrs["planned"] = 0
    if selection.empty:
        return none
    configs = evaluation_configs(selection[selection["algorithm"].isin(ALGORITHMS)], dataset, budget, device)
    none.attrs["planned"] = len(configs)
    epochs = epoch_records(evaluation_store(store), configs, budget)
    if epochs.empty or "standard_test_accuracy" not in epochs:
        return none
    records = summary.set_index("run_id")["best_test_accuracy"] if len(summary) else pd.Series(dtype=float)
    rows = []
    for config in configs:
        run = epochs[epochs["run_id"] == config.run_id]
        if run["epoch"].nunique() < budget.epochs or run[["test_accuracy", "standard_test_accuracy"]].isna().any().any():
            continue
        standard = float(run["standard_test_accuracy"].max())
        record = records.get(dataclasses.replace(config, evaluation="standard").run_id)
        rows.append({"algorithm": config.algorithm, "weights": config.weights, "activation": config.activation,
                     "seed": config.seed, "paper_code": float(run["test_accuracy"].max()), "standard": standard,
                     "same_training": None if record is None else bool(record == standard)})
    out = pd.DataFrame(rows, columns=columns)
    out.attrs["planned"] = len(configs)
    return out


def effects(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (setting, algorithm): the mean over its checked seeds of the pass's
    effect on the best test accuracy (paper_code − standard, in accuracy) and how many seeds."""
    if runs.empty:
        return pd.DataFrame(columns=["setting", "algorithm", "effect", "seeds"])
    runs = with_setting(runs.assign(effect=runs["paper_code"] - runs["standard"]))
    table = runs.groupby(["setting", "algorithm"], observed=True).agg(effect=("effect", "mean"),
                                                                      seeds=("seed", "nunique")).reset_index()
    table["setting"] = table["setting"].astype(str)
    table["algorithm"] = table["algorithm"].astype(str)
    return table


def bias_sentence(comparison: pd.DataFrame, runs: pd.DataFrame) -> str:
    """What the check measured of the BN bias on this page, from the page's comparison with the
    paper (:func:`~bnnlib.book.results.paper_comparison`) and its finished check runs; "" where none
    has finished."""
    if runs.empty:
        return ""
    table = effects(runs)
    compared = comparison[comparison["Δ (points)"] != "–"][["setting", "algorithm", "Δ (points)"]]
    measured = compared.merge(table, on=["setting", "algorithm"])
    delta = measured["Δ (points)"].astype(float)
    shifted = delta + 100 * measured["effect"]
    effect = 100 * (runs["paper_code"] - runs["standard"])
    known = runs["same_training"].dropna()
    text = (f"The evaluation check measured it on **{len(runs)} of {runs.attrs.get('planned', len(runs))}** runs ({len(measured)} of this page's "
            f"{len(compared)} configurations): the original code's pass changes a run's best test accuracy by "
            f"**{effect.mean():+.2f}** points on average ({effect.min():+.2f} to {effect.max():+.2f}). Our medians "
            f"moved by their configuration's effect would lie above the paper's in **{int((shifted > 0).sum())} of "
            f"{len(measured)}** of these configurations (mean Δ {delta.mean():+.2f} → {shifted.mean():+.2f} points).")
    if len(known):
        same = int(known.sum())
        text += (f" In {same} of {len(known)} runs the standard evaluation equals the record of the same seed, "
                 f"as it must: the pass changes no weight." if same == len(known) else
                 f" In only {same} of {len(known)} runs does the standard evaluation equal the record of the same "
                 f"seed: those runs did not train as their records did, and their effect is not the pass's alone.")
    return text
