"""The mechanism study's probed runs: the fully binary final runs of every rule re-run with
per-layer diagnostics, the budget they are shown at, their records as frames, and the verdicts
computed from them (:func:`verdicts`). The chapter's figures and sentences are in
:mod:`~bnnlib.book.mechanism`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..protocol import (CONTROLS, GRID_DATASET, PROBE_EVERY, PROBED_RULES, Budget, ensure_probed,  # noqa: F401
                        epoch_records, grid_configs, probed_finals, probed_store, summarise)
from ..runner import DataOptions
from ..store import ResultsStore
from ..sweep import select_hyperparameters
from .labels import DATASET_RANK
from .records import all_finished, choose_budget
from .stats import welch_difference



def ensure_mechanism(settings: Sequence[Tuple[str, bool]], budget: Budget, store: ResultsStore,
                     data: Optional[DataOptions] = None, device: str = "cpu", every: int = PROBE_EVERY,
                     **execute_options) -> Tuple[List[RunConfig], ResultsStore]:
    """Run what is missing of the probed runs for these (dataset, batch_norm) settings."""
    configs = ensure_probed(settings, budget, store, data, device, every, **execute_options)
    return configs, probed_store(store)


def diagnostics_frame(probed: ResultsStore, configs: Sequence[RunConfig], budget: Budget) -> pd.DataFrame:
    """diagnostics.csv of exactly these runs up to the budget's epochs, with their config columns."""
    table = probed.table("diagnostics.csv")
    if table.empty:
        return table
    by_id = pd.DataFrame([{"run_id": c.run_id, "dataset": c.dataset, "batch_norm": c.batch_norm,
                           "algorithm": c.algorithm, "seed": c.seed, "init": c.init, "lr": c.lr} for c in configs])
    table = table[table["epoch"] <= budget.epochs].merge(by_id, on="run_id", how="inner")
    # per-weight sizes of the updates: layers of 784 × 700 and 200 × 10 weights compare this way
    root = np.sqrt(table["parameters"].astype(float))
    table["update_rms"] = table["update_norm"] / root
    table["bp_update_rms"] = table["bp_update_norm"] / root
    return table


def accuracy_frame(probed: ResultsStore, configs: Sequence[RunConfig], budget: Budget) -> pd.DataFrame:
    return summarise(probed, configs, budget)


def all_probed(probed: ResultsStore, configs: Sequence[RunConfig], budget: Budget) -> bool:
    """Whether every one of the probed runs ``configs`` is finished at ``budget`` (each epoch
    recorded, or diverged): the one test behind the chapter's budget choice, Methods' paragraph and
    the 100-epoch findings shown while the rest are recorded."""
    return all_finished(accuracy_frame(probed, configs, budget), configs, budget)


#: what a probed run must repeat of its final run, epoch by epoch
REPEATED = ("loss", "train_accuracy", "test_accuracy")


def finals_agreement(probed: ResultsStore, store: ResultsStore, configs: Sequence[RunConfig], budget: Budget) -> str:
    """Whether the probed runs repeat the results pages' final runs of the same configuration and
    seed (same run id), every epoch's loss and train and test accuracy equal: probing changes no
    number, so they must where both come from one arithmetic on one kind of processor. The
    control's fully binary finals are left out where they are the probed runs themselves (adopted,
    :func:`~bnnlib.protocol.adopt_probed`): a record is not evidence against its own copy."""
    nothing = "No final run of these configurations is complete yet to set the probed runs beside."
    mine, finals = epoch_records(probed, configs, budget), epoch_records(store, configs, budget)
    if mine.empty or finals.empty:
        return nothing
    versions = {name: s.runs().set_index("run_id")["arithmetic"] if "arithmetic" in s.runs() else pd.Series(dtype=float)
                for name, s in (("probed", probed), ("final", store))}
    adopted = {c.run_id for c in configs if c.algorithm in CONTROLS}
    rule = {c.run_id: c.algorithm for c in configs}
    same, differ, best_moved = 0, 0, {}
    causes = {"arithmetic": 0, "processor": 0, "unrecorded": 0}
    for run_id, run in mine.groupby("run_id"):
        final = finals[finals["run_id"] == run_id].sort_values("epoch")
        run = run.sort_values("epoch")
        if run_id in adopted or run["epoch"].nunique() < budget.epochs or final["epoch"].nunique() < budget.epochs:
            continue
        if all(np.array_equal(run[name].to_numpy(float), final[name].to_numpy(float), equal_nan=True)
               for name in REPEATED):
            same += 1
            continue
        differ += 1
        best_moved.setdefault(rule[run_id], []).append(run["test_accuracy"].max() - final["test_accuracy"].max())
        causes["arithmetic"] += versions["probed"].get(run_id) != versions["final"].get(run_id)
        processors = [set(r["processor"].dropna()) if "processor" in r else set() for r in (run, final)]
        causes["processor"] += all(processors) and processors[0] != processors[1]
        causes["unrecorded"] += any(processors) and not all(processors)  # one from before processors were recorded
    compared = same + differ
    if not compared:
        return nothing
    head = (f"Of the {compared} probed runs of the paper's rules whose final run is complete, " if compared > 1 else
            "The one probed run of the paper's rules whose final run is complete: ")
    if not differ:
        return head + (f"{'each' if compared > 1 else 'it'} repeats its final run's loss and train and test accuracy "
                       f"at every epoch exactly: probing changes no number, and the results pages and this chapter "
                       f"read the same training.")
    phrases = {"arithmetic": lambda n: f"computed by another arithmetic version than {'their' if n > 1 else 'its'} "
                                       f"final run",
               "processor": lambda n: f"computed on another kind of processor than {'their' if n > 1 else 'its'} "
                                      f"final run",
               "unrecorded": lambda n: f"set beside a final run that did not record its processor (recorded before "
                                       f"runs named it)"}
    known = [f"{n} {phrases[name](n)}" for name, n in causes.items() if n]
    return head + (f"{differ} {'differ' if differ > 1 else 'differs'} from {'their' if differ > 1 else 'its'} final "
                   f"run's loss or accuracy at some epoch: "
                   + ("; ".join(known) + ". The probe itself changes no number (a test pins it on one machine); "
                      "another processor can round the same arithmetic differently."
                      if known else "same arithmetic version, same kind of processor: not explained.")
                   + f" {_best_moved(best_moved)} This chapter's accuracies are the probed runs' own.")


def _best_moved(by_rule: dict) -> str:
    """"Their best test accuracy minus their final run's: BP −0.49 points on average (−2.59 to
    +0.95), …": how far a differing probed run ends from its final run, per rule."""
    def points(values):
        def signed(v):  # rounded first, + 0.0: a tiny negative reads "+0.00", not "-0.00"
            return f"{round(float(v), 2) + 0.0:+.2f}"
        values = 100 * np.asarray(values)
        if len(values) == 1:
            return f"{signed(values[0])} points"
        low, high = signed(values.min()), signed(values.max())
        return (f"{low} points in each" if low == high else
                f"{signed(values.mean())} points on average ({low} to {high})")
    n = sum(len(v) for v in by_rule.values())
    return (f"{'Their' if n > 1 else 'Its'} best test accuracy minus {'their' if n > 1 else 'its'} final run's: "
            + ", ".join(f"{rule} {points(values)}" for rule, values in sorted(by_rule.items()))
            + ": a binary network's signs can turn a last-bit difference into another training path.")


def _ci(values: np.ndarray) -> Tuple[float, float, float]:
    from scipy import stats
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return (float(values.mean()) if len(values) else float("nan"), float("nan"), float("nan"))
    mean, sem = float(values.mean()), float(stats.sem(values))
    half = float(stats.t.ppf(0.975, len(values) - 1) * sem) if sem > 0 else 0.0
    return mean, mean - half, mean + half


def verdicts(frame: pd.DataFrame, accuracy: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × BN × rule, every cell computed from the records:

    * ``vs SHALLOW``: mean best test accuracy − SHALLOW's, 95 % Welch CI; "hidden layers learn"
      when the CI lies above 0, "hurt" when below, "no better than SHALLOW" when it contains 0;
    * ``alignment``: cosine with BP's hidden updates, mean over hidden layers, epochs and probed
      batches per seed, then mean and 95 % CI over seeds; "aligned" when the CI lies above 0,
      "orthogonal" when it contains 0, "anti-aligned" below;
    * ``BP reach``: in the BP runs, block 1's update norm over the output layer's — how much of
      BP's signal reaches the first block.
    """
    rows = []
    hidden = frame[frame["layer_name"] != "output"]
    for (dataset, batch_norm), part in accuracy.groupby(["dataset", "batch_norm"]):
        usable = part[~part["diverged"]]
        shallow = usable[usable["algorithm"] == "SHALLOW"]["best_test_accuracy"]
        for algorithm in [a for a in PROBED_RULES if a in set(part["algorithm"])]:
            mine = usable[usable["algorithm"] == algorithm]["best_test_accuracy"]
            row = {"dataset": dataset, "batch_norm": batch_norm, "algorithm": algorithm,
                   "mean accuracy": float(mine.mean()), "seeds": int(len(mine))}
            if algorithm != "SHALLOW" and len(shallow):
                d = welch_difference(mine, shallow)
                row.update(vs_shallow=d["difference"], vs_shallow_low=d["low"], vs_shallow_high=d["high"],
                           vs_shallow_p=d["p"])
                row["hidden layers"] = ("learn (beat SHALLOW)" if d["low"] > 0 else
                                        "hurt (below SHALLOW)" if d["high"] < 0 else "no better than SHALLOW")
            else:
                row.update(vs_shallow=np.nan, vs_shallow_low=np.nan, vs_shallow_high=np.nan, vs_shallow_p=np.nan)
                row["hidden layers"] = "fixed (control)" if algorithm == "SHALLOW" else "–"
            mine_diag = hidden[(hidden["dataset"] == dataset) & (hidden["batch_norm"] == batch_norm) &
                               (hidden["algorithm"] == algorithm)]
            per_seed = mine_diag.groupby("run_id")["alignment_cosine"].mean().to_numpy(dtype=float)
            mean, low, high = _ci(per_seed)
            row.update(alignment=mean, alignment_low=low, alignment_high=high)
            if algorithm == "SHALLOW" or not np.isfinite(mean):
                row["updates"] = "none" if algorithm == "SHALLOW" else "–"
            elif algorithm == "BP":
                row["updates"] = "BP itself"
            else:
                row["updates"] = "aligned" if low > 0 else "anti-aligned" if high < 0 else "orthogonal"
            rows.append(row)
    # MNIST before Fashion-MNIST, as every page lists them (groupby sorts them by name)
    out = pd.DataFrame(rows)
    if len(out):
        out = out.sort_values(["dataset", "batch_norm"], kind="stable", key=lambda column: column.map(
            DATASET_RANK) if column.name == "dataset" else column).reset_index(drop=True)
    bp = frame[frame["algorithm"] == "BP"]
    reach = {}
    for (dataset, batch_norm), part in bp.groupby(["dataset", "batch_norm"]):
        per_run = part.pivot_table(index="run_id", columns="layer_name", values="bp_update_norm", aggfunc="mean")
        if "block 1" in per_run and "output" in per_run:
            reach[(dataset, batch_norm)] = float((per_run["block 1"] / per_run["output"]).median())
    out["BP reach"] = [reach.get((d, b), np.nan) for d, b in zip(out["dataset"], out["batch_norm"])]
    return out


def open_store(budget: str, results_base: Optional[str], settings: Sequence[Tuple[str, bool]]):
    """(Budget, ResultsStore) for the chapter (:func:`records.choose_budget`). ``best``: ``paper``
    where its probed runs are all recorded (they are not part of the paper budget's protocol:
    ``python -m bnnlib protocol`` does not run them), else ``cpu`` — the chapter computes what is
    missing at the budget shown."""
    def complete(candidate: Budget, store: ResultsStore) -> bool:
        try:
            configs = [c for d, b in settings for c in recorded_configs(d, b, candidate, store)]
        except LookupError:
            return False
        return all_probed(probed_store(store), configs, candidate)
    return choose_budget(budget, results_base, complete)


def recorded_configs(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore) -> List[RunConfig]:
    """The probed runs' configs from the records alone; LookupError while a grid is incomplete."""
    searched = grid_configs(GRID_DATASET[dataset], batch_norm, budget, algorithms=PROBED_RULES)
    grid = summarise(store, searched, budget)
    if not all_finished(grid, searched, budget):
        raise LookupError(f"the grid search of {dataset}, BN {batch_norm} is incomplete at {budget.name}")
    return probed_finals(select_hyperparameters(grid), dataset, batch_norm, budget)
