"""The Reproducing chapter (``08_reproducing``): what each page rests on, how far the paper
budget's long run is, and where the compute went."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import pandas as pd
from IPython.display import Markdown, display

from ..protocol import (ALGORITHMS, BUDGETS, LONG_RUN_WORKERS, Budget, get_budget, grid_configs,
                        median_epoch_seconds, probed_store, progress, summarise)
from ..runner import CLASS_COUNTS, METRICS
from ..store import EPOCH_KEY, ResultsStore
from . import probes
from .labels import DATASET_RANK, bn_short, dataset_name, rule_kind
from .paper import paper_learning_curve
from .records import (BEST, _finals_with_controls, arithmetic_of, epochs_label, open_store, paper_finals_so_far,
                      paper_store, recorded_so_far)
from .render import html_table
from .toc import CHAPTERS, PAGE_UNITS, RESULT_PAGES, SHOWN_SO_FAR, TEMPLATE, result_page_name


def runs_by_budget(page_budget: Budget, store: ResultsStore, results_base: Optional[str] = None) -> Dict[str, pd.DataFrame]:
    """budget name → its recorded runs: the page's budget, and the paper budget's so far where the
    page shows another (a reader planning the long run wants its times too); empty ones left out."""
    out = {page_budget.name: store.runs()}
    if page_budget.name != "paper":
        out["paper"] = paper_store(results_base).runs()
    return {name: runs for name, runs in out.items() if not runs.empty}



def stage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Compute time per dataset × BN × stage (grid search or final runs) × rules (the paper's or
    our control or extensions), from run metadata: runs, epochs, hours, the median seconds per epoch of
    a run (robust to the few runs slowed by other work or paused), devices."""
    frame = runs.assign(stage=runs["seed"].map(lambda s: "grid search" if s == 1 else "final runs"),
                        rules=runs["algorithm"].map(rule_kind),
                        per_epoch=runs["seconds"] / runs["epochs_done"].where(runs["epochs_done"] > 0))
    stages = frame.groupby(["dataset", "batch_norm", "stage", "rules"], sort=False).agg(
        runs=("run_id", "size"), epochs=("epochs_done", "sum"), hours=("seconds", lambda x: x.sum() / 3600),
        per_epoch=("per_epoch", "median"), device=("device", lambda d: ", ".join(sorted(set(d))))).reset_index()
    # in the order the protocol runs them: dataset, BN off then on, grid before finals, the
    # paper's rules before the control
    rank = {**DATASET_RANK, "grid search": 0, "final runs": 1, "paper's": 0, "control": 1, "extension": 2}
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


def paper_progress(results_base: Optional[str] = None) -> tuple:
    """How far the long run is at the paper budget, from its records: (stage table, sentence) —
    the paper's protocol, then the book's own runs (``protocol --book-runs``), stage by stage."""

    budget = get_budget("paper")
    store = paper_store(results_base)
    protocol_only = progress(store, budget)
    state = progress(store, budget, book_runs=True)
    until = state.hours_until_done(LONG_RUN_WORKERS)
    first_own = len(protocol_only.stages)
    table = pd.DataFrame([{"runs": "the paper's protocol" if i < first_own else "the book's own",
                           "stage": stage, "runs finished": finished, "of": total,
                           "done in about (h)": "–" if hours is None else f"{hours:.0f}"}
                          for i, ((stage, finished, total), hours) in enumerate(zip(state.stages, until))])
    share = 100 * protocol_only.run_epochs_done / protocol_only.run_epochs_total

    def count(n):
        return f"{n:,}".replace(",", "\u202f")  # a thin space between thousands

    own_finished = state.runs_complete - protocol_only.runs_complete
    own_total = state.runs_total - protocol_only.runs_total
    sentence = (f"Of our runs of **{epochs_label(get_budget('paper'))}** (budget `paper`), {protocol_only.runs_complete} of {protocol_only.runs_total} runs are "
                f"finished ({count(protocol_only.run_epochs_done)} of {count(protocol_only.run_epochs_total)} "
                f"run-epochs, {share:.1f}\u00a0%), stage by stage in the order `python -m bnnlib protocol --budget "
                f"paper` runs them; then the book's own runs at the same budget — the SHALLOW control's grid search "
                f"and final runs, the mechanism chapter's probed runs and the evaluation check — {own_finished} of "
                f"{own_total} (`protocol --budget paper --book-runs`, which `make long-run` starts after the protocol). "
                f"Each page switches to its {get_budget('paper').epochs}-epoch runs when all of them are recorded (the table above says "
                f"which do).")
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
    budget's runs it already shows beside them, marked provisional there ("100 epochs so far": the
    configurations whose seeds have all finished, or the settings whose runs are all recorded).
    Read from the records only; nothing is computed."""

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
                     "100 epochs so far": f"{ahead} runs, {ahead_hours:.2f} h" if ahead else "–", "what": note})

    def shown_so_far(stem, unit, budget):
        """The paper budget's run ids a page shows ahead of its own budget for these settings
        (:data:`SHOWN_SO_FAR`)."""
        shows = SHOWN_SO_FAR.get(stem)
        if shows is None or budget.name == "paper":
            return []
        if shows == "settings":
            summaries = recorded_so_far("paper", list(dict.fromkeys(d for d, _ in unit)), results_base)
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
        budget, store = probes.open_store(requested, results_base, every)
        try:
            configs = [c for d, b in every for c in probes.recorded_configs(d, b, budget, store)]
        except LookupError:
            configs = []
        return budget, probed_store(store), [c.run_id for c in configs]

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
                # the grid search page shows the paper's rules' grid (not SHALLOW's, run by --book-runs)
                configs = grid_configs("mnist", batch_norm, budget, algorithms=ALGORITHMS)
                run_ids = list(summarise(store, configs, budget).get("run_id", []))
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


def arithmetic_versions(runs: pd.DataFrame) -> str:
    """Which arithmetic versions computed these run records, with how many runs each where there
    are several ("3", "1: 312 runs, 2: 312, 3: 336"; records without a version are version 1)."""
    if runs.empty:
        return "no runs recorded"
    counts = arithmetic_of(runs).value_counts().sort_index()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{v}: {n} run{'s' if n != 1 else ''}" if i == 0 else f"{v}: {n}"
                     for i, (v, n) in enumerate(counts.items()))


def budgets_table(results_base: Optional[str] = None) -> pd.DataFrame:
    """Every budget: its epochs, images, final seeds, what it is for, and the arithmetic versions
    of its recorded runs (:func:`arithmetic_versions`)."""
    return pd.DataFrame([{"budget": b.name, "epochs": b.epochs, "training images": b.n_train or "all",
                          "test images": b.n_test or "all", "final seeds": len(b.seeds),
                          "what for": b.description,
                          "arithmetic": arithmetic_versions(open_store(b.name, results_base)[1].runs())}
                         for b in BUDGETS.values()])


def show_compute(runs: Dict[str, pd.DataFrame]) -> None:
    """Per budget of :func:`runs_by_budget`: its stage table and its compute hours in all."""
    if not runs:
        print("no runs recorded")
    for name, recorded in runs.items():
        display(Markdown(f"### {epochs_label(get_budget(name))} (budget `{name}`)"))
        display(html_table(stage_table(recorded), keep_together=["data", "stage", "rules"]))
        display(Markdown(f"In all, {recorded['seconds'].sum() / 3600:.2f} hours of compute: each run's share of its "
                         f"member group's wall time."))


def environment_table(runs: Dict[str, pd.DataFrame]) -> Optional[pd.DataFrame]:
    """The software and machines each budget's runs were computed with (None where no run is recorded)."""
    environments = [recorded.reindex(columns=["python", "torch", "numpy", "bnnlib", "platform", "processor"])
                    .drop_duplicates().assign(budget=name) for name, recorded in runs.items()]
    if not environments:
        return None
    environment = pd.concat(environments, ignore_index=True)
    return environment[["budget", *environment.columns[:-1]]]
