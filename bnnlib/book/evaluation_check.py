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
original code evaluates. A check run's training losses must equal its record's (the run of the
same seed in the results folder), epoch by epoch: where they do not, the training was not the
same, and the pages say so (and leave the run out of what they conclude) — unless the two were
computed on different kinds of processor or at different thread counts, whose float32 sums may
differ in the last bit (the Reproducing page measures it; :mod:`bnnlib.cores`): such a run counts,
because the pass's effect is measured within the check run (both evaluations of the same
training), and the pages say how many there are.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from ..protocol import ALGORITHMS, epoch_records, evaluation_configs, evaluation_store
from .claims import central_values
from .labels import dataset_name, with_setting
from .pages import Page
from .records import open_store


def check_runs(page: Page, selection: pd.DataFrame) -> pd.DataFrame:
    """:func:`check_runs_of` the page's dataset and BN setting (none without BN: the pass moves nothing)."""
    return check_runs_of(page.store, page.budget, page.dataset, selection if page.batch_norm else selection.iloc[0:0],
                         page.device)


def check_runs_of(store, budget, dataset: str, selection: pd.DataFrame, device: str = "cpu") -> pd.DataFrame:
    """One row per finished check run of ``dataset`` with BN, whose final runs used ``selection``
    (every epoch of the budget recorded, not diverged): its configuration, the best test accuracy
    evaluated as the original code does (``paper_code``) and as every record is (``standard``),
    and whether it trained as the record of the same seed did (``same_training``: every epoch's
    training loss equal — the loss, because the pass moves the running statistics that later
    evaluations use, never the batches' own; None where that record is not complete), where it
    did not whether the two were computed where float32 sums are rounded otherwise — another kind
    of processor at the first epoch whose loss differs, or another thread count (``other_rounding``:
    :func:`_other_rounding`; False where the training is the same), and the
    record's best test accuracy (``record``; NaN where it is not complete).
    ``attrs["planned"]``: how many check runs the setting has (``store``: the budget's results
    folder; the check runs live in its ``evaluation`` folder)."""
    columns = ["algorithm", "weights", "activation", "seed", "paper_code", "standard", "same_training",
               "other_rounding", "record"]
    none = pd.DataFrame(columns=columns)
    none.attrs["planned"] = 0
    if selection.empty:
        return none
    configs = evaluation_configs(selection[selection["algorithm"].isin(ALGORITHMS)], dataset, budget, device)
    none.attrs["planned"] = len(configs)
    epochs = epoch_records(evaluation_store(store), configs, budget)
    if epochs.empty or "standard_test_accuracy" not in epochs:
        return none
    twins = {c.run_id: dataclasses.replace(c, evaluation="standard") for c in configs}
    records = epoch_records(store, list(twins.values()), budget)
    threads = {**_threads(store), **_threads(evaluation_store(store))}  # run ids differ: one map serves both
    rows = []
    for config in configs:
        run = epochs[epochs["run_id"] == config.run_id].sort_values("epoch")
        if run["epoch"].nunique() < budget.epochs or run[["test_accuracy", "standard_test_accuracy"]].isna().any().any():
            continue
        record = records[records["run_id"] == twins[config.run_id].run_id].sort_values("epoch") \
            if len(records) else None
        complete = record is not None and record["epoch"].nunique() >= budget.epochs
        same = bool(np.array_equal(run["loss"].to_numpy(float), record["loss"].to_numpy(float),
                                   equal_nan=True)) if complete else None
        rows.append({"algorithm": config.algorithm, "weights": config.weights, "activation": config.activation,
                     "seed": config.seed, "paper_code": float(run["test_accuracy"].max()),
                     "standard": float(run["standard_test_accuracy"].max()), "same_training": same,
                     "other_rounding": False if same is not False else _other_rounding(
                         run, record, threads.get(config.run_id), threads.get(twins[config.run_id].run_id)),
                     "record": float(record["test_accuracy"].max()) if complete else np.nan})
    out = pd.DataFrame(rows, columns=columns)
    out.attrs["planned"] = len(configs)
    return out


def _threads(store) -> dict:
    """run id → the thread count its run recorded (runs.csv's ``threads``; absent where not recorded)."""
    runs = store.runs()
    if runs.empty or "threads" not in runs:
        return {}
    return runs.dropna(subset=["threads"]).set_index("run_id")["threads"].astype(int).to_dict()


def _other_rounding(run: pd.DataFrame, record: pd.DataFrame, run_threads: Optional[int] = None,
                    record_threads: Optional[int] = None) -> Optional[bool]:
    """Of two runs of the same epochs (sorted) whose training losses differ: whether their float32
    sums were rounded otherwise — two kinds of processor computed the first epoch where they part
    (each epoch row names its own; a last-bit difference there changes every step after it), or
    the two ran at different thread counts (on an Intel Xeon MKL's sums depend on it,
    :mod:`bnnlib.cores`). None where neither is known to differ and a row names no processor."""
    if run_threads is not None and record_threads is not None and run_threads != record_threads:
        return True
    losses = [epochs["loss"].to_numpy(float) for epochs in (run, record)]
    first = int(np.flatnonzero(~((losses[0] == losses[1]) | (np.isnan(losses[0]) & np.isnan(losses[1]))))[0])
    kinds = [epochs["processor"].iloc[first] if "processor" in epochs else None for epochs in (run, record)]
    if any(pd.isna(kind) for kind in kinds):
        return None
    return kinds[0] != kinds[1]


def _parted(runs: pd.DataFrame) -> Dict[str, pd.Series]:
    """Masks over check runs whose record is complete and whose training loss differs from it:
    where float32 sums are rounded otherwise (``elsewhere``: another kind of processor at the epoch
    where they part, or another thread count), on the same kind at the same threads
    (``same_kind``), or not known (``unknown``: a row names no processor)."""
    differs = runs["same_training"].eq(False)
    kinds = runs["other_rounding"] if "other_rounding" in runs else pd.Series(None, index=runs.index, dtype=object)
    return {"elsewhere": differs & kinds.eq(True), "same_kind": differs & kinds.eq(False),
            "unknown": differs & kinds.isna()}


def usable(runs: pd.DataFrame) -> pd.DataFrame:
    """The check runs whose effect the pages count: those that trained as their record did, whose
    record is not complete yet, or that differ from it only as two kinds of processor or thread
    counts do (the effect is measured within the check run, both evaluations of one training). A
    run that trained otherwise on the same kind of processor at the same threads would measure more
    than the pass, and is left out."""
    if runs.empty:
        return runs
    return runs[runs["same_training"].ne(False) | _parted(runs)["elsewhere"]]


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


def moved_by_pass(compared: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of ``compared`` (rows of a page's comparison with the paper that have a Δ)
    measured by ``runs`` that count (:func:`usable`): our median's difference from the paper's
    (``delta``, points) and the same moved by the pass's mean effect there (``shifted``) — what our
    median would be had the original code's evaluation produced it."""
    measured = compared.merge(effects(usable(runs)), on=["setting", "algorithm"])
    delta = measured["Δ (points)"].astype(float)
    return measured.assign(delta=delta, shifted=delta + 100 * measured["effect"])


def bias_sentence(comparison: pd.DataFrame, runs: pd.DataFrame) -> str:
    """What the check measured of the BN bias on this page, from the page's comparison with the
    paper (:func:`~bnnlib.book.results.paper_comparison`) and its finished check runs; "" where none
    has finished. Which runs count: :func:`usable`; those that do not are counted apart, and so
    are those that differ from their record as two kinds of processor or thread counts do."""
    if runs.empty:
        return ""
    kept = usable(runs)
    compared = comparison[comparison["Δ (points)"] != "–"][["setting", "algorithm", "Δ (points)"]]
    measured = moved_by_pass(compared, kept)
    if measured.empty:  # no usable check run of a configuration this page compares with the paper
        return ""
    delta, shifted = measured["delta"], measured["shifted"]
    effect = 100 * (kept["paper_code"] - kept["standard"])
    text = (f"The evaluation check measured it on **{len(kept)} of {runs.attrs.get('planned', len(runs))}** runs "
            f"({len(measured)} of this page's {len(compared)} configurations): the original code's pass changes a "
            f"run's best test accuracy by **{effect.mean():+.2f}** points on average ({effect.min():+.2f} to "
            f"{effect.max():+.2f}). Our medians moved by their configuration's effect would lie above the paper's in "
            f"**{int((shifted > 0).sum())} of {len(measured)}** of these configurations "
            f"({_moved(delta.mean(), shifted.mean())}).")
    known = runs[runs["same_training"].notna()]
    equal = int(known["same_training"].eq(True).sum())
    parted = _parted(known)
    elsewhere, same_kind, unknown = (int(parted[name].sum()) for name in ("elsewhere", "same_kind", "unknown"))
    if equal:
        runs_named = f"each of {equal} of them" if equal > 1 else "one of them"
        text += (f" Of the {len(known)} run{'s' if len(known) > 1 else ''} whose record is complete, the training "
                 f"loss of {runs_named} equals its record's at every epoch, as it must: the pass changes no weight."
                 if equal < len(known) else
                 f" The training loss of {'each of the ' + str(equal) + ' runs' if equal > 1 else 'the one run'} "
                 f"whose record is complete equals its record's at every epoch, as it must: the pass changes no weight.")
    if elsewhere:
        other = known[parted["elsewhere"]]
        gap = 100 * (other["standard"] - other["record"]).abs().max()
        plural = elsewhere > 1
        accuracy = (f"{'their' if plural else 'its'} best test accuracy evaluated as every record is "
                    + (f"equals the record's" if f"{gap:.2f}" == "0.00" else
                       f"differs from the record's by {'up to ' if plural else ''}{gap:.2f} points"))
        text += (f" {elsewhere} check run{'s' if plural else ''} {'differ' if plural else 'differs'} from "
                 f"{'their records' if plural else 'its record'} in the training loss because another kind of "
                 f"processor or another number of threads computed {'them' if plural else 'it'}, whose float32 sums "
                 f"are rounded otherwise (see Reproducing); "
                 f"{accuracy}, and {'they count' if plural else 'it counts'}: the pass's effect is measured within "
                 f"each check run, on one training.")
    for count, where in ((same_kind, "on the same kind of processor at the same threads"),
                         (unknown, "(which kind of processor computed the epoch where they part is not recorded)")):
        if count:
            text += (f" {count} more check run{'s' if count > 1 else ''} did not train as "
                     f"{'their' if count > 1 else 'its'} record did {where} and {'are' if count > 1 else 'is'} left "
                     f"out: the pass changes no weight, so such a run measures something else as well.")
    return text


def _moved(before: float, after: float) -> str:
    """The mean Δ before and after the pass's effect, or once where they read equal."""
    if f"{before:+.2f}" == f"{after:+.2f}":
        return f"mean Δ {before:+.2f} points either way, to two decimals"
    return f"mean Δ {before:+.2f} → {after:+.2f} points"


def evaluation_pass_z(cells: pd.DataFrame, summaries: Dict[Tuple[str, bool], pd.DataFrame], budget,
                      results_base: Optional[str] = None) -> list:
    """For C3's cells (rows of :func:`~bnnlib.book.claims.delta_seed_spread`) whose BN runs the
    evaluation check measured: (name, z with our BN median moved by the pass's effect, z as
    recorded), the standard error unchanged — what the original code's evaluation does to the
    distance of our |Δ BN| from the paper's."""
    if cells.empty:
        return []
    _, store = open_store(budget.name, results_base)
    medians = central_values(summaries).set_index(["dataset", "batch_norm", "algorithm", "setting"])["value"]
    effects_by_dataset = {}
    out = []
    for r in cells.itertuples():
        if r.dataset not in effects_by_dataset:
            summary = summaries.get((r.dataset, True))
            selection = (summary[["algorithm", "weights", "activation", "init", "lr"]].drop_duplicates()
                         if summary is not None else pd.DataFrame())
            runs = check_runs_of(store, budget, r.dataset, selection) if summary is not None else pd.DataFrame()
            runs = usable(runs)
            effects_by_dataset[r.dataset] = effects(runs).set_index(["setting", "algorithm"])["effect"] \
                if len(runs) else pd.Series(dtype=float)
        effect = effects_by_dataset[r.dataset].get((r.setting, r.algorithm))
        if effect is None:
            continue
        moved = abs(medians[(r.dataset, False, r.algorithm, r.setting)] -
                    (medians[(r.dataset, True, r.algorithm, r.setting)] + effect))
        out.append((f"{r.algorithm}, {r.setting} on {dataset_name(r.dataset)}", (r.paper - moved) / r.se, r.z))
    return out
