"""The paper's protocol as functions: budgets, the grid search, selection and the final runs.

The book's chapters call these; so does ``python -m bnnlib protocol``. Everything is
resumable: what a results folder already holds is read, never recomputed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from .config import RunConfig, switch_word
from .runner import DataOptions, execute
from .store import ResultsStore
from .sweep import expand_grid, run_summary, select_hyperparameters
from .trainers import rules

# The rules by role, from the registry (bnnlib/rules/: a rule declares its role), in table order.
#: the paper's learning rules: what the protocol runs unless told otherwise
ALGORITHMS = rules("paper")
#: our controls (SHALLOW: the output layer trained alone; ``protocol --algorithm SHALLOW`` runs
#: it through the same grid and finals)
CONTROLS = rules("control")
#: our extensions (``protocol --algorithm FA``): shown beside the paper's rules, never in its claims
EXTENSIONS = rules("extension")
#: every rule the book reports where its runs are recorded, in table order
REPORTED_ALGORITHMS = ALGORITHMS + CONTROLS + EXTENSIONS
#: the rules the mechanism chapter probes: the paper's and the controls it measures them against
PROBED_RULES = ALGORITHMS + CONTROLS
WEIGHT_KINDS = ("continuous", "binary")
ACTIVATION_KINDS = ("tanh", "sign")
GRID = {"init": [0.1, 0.001], "lr": [1e-4, 1e-5, 1e-6]}
GRID_SEED = 1
FINAL_SEEDS = tuple(range(2, 12))  # seeds 2 … 11
DEFAULT_DATASETS = ("mnist", "fashion-mnist")


@dataclass(frozen=True)
class Budget:
    """How much of the protocol to run. Only ``epochs``, the data subset and the seeds vary."""

    name: str
    epochs: int
    n_train: Optional[int]
    n_test: Optional[int]
    seeds: Tuple[int, ...]
    description: str


BUDGETS: Dict[str, Budget] = {
    "smoke": Budget("smoke", 2, 512, 256, FINAL_SEEDS[:2],
                    "seconds: the first 512 training and 256 test images, 2 epochs, 2 seeds — checks "
                    "that the pipeline runs (CI); its numbers mean nothing"),
    "cpu": Budget("cpu", 5, None, None, FINAL_SEEDS,
                  "full data, the full 72-run grid (seed 1) and 10 seeds of final runs, 5 epochs instead of 100, so "
                  "that the whole book fits a few hours on a 2-core CPU; the Reproducing chapter shows the time it "
                  "took"),
    "paper": Budget("paper", 100, None, None, FINAL_SEEDS,
                    "exactly the paper: full data, the full grid (seed 1), 10 seeds of final runs, 100 epochs; days "
                    "on a CPU, hours on a GPU"),
}

# The paper ran its grid search on MNIST (and CIFAR-10); Fashion-MNIST reused MNIST's choice.
GRID_DATASET = {"mnist": "mnist", "fashion-mnist": "mnist", "cifar10": "cifar10"}


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ValueError(f"unknown budget {name!r}; accepted: {', '.join(BUDGETS)}")
    return BUDGETS[name]


def results_dir(budget: Budget, base: Optional[Path] = None) -> Path:
    """The one home of a budget's records: ``<base>/<budget>``, base the project's ``results/``."""
    from .paths import RESULTS_DIR
    return Path(base if base is not None else RESULTS_DIR) / budget.name


def grid_configs(dataset: str, batch_norm: bool, budget: Budget, device: str = "cpu",
                 algorithms: Sequence[str] = ALGORITHMS) -> List[RunConfig]:
    """The grid search for one dataset and BN setting: 24 runs per algorithm (72 for the paper's three)."""
    return expand_grid({"dataset": dataset, "batch_norm": batch_norm, "algorithm": list(algorithms),
                        "weights": list(WEIGHT_KINDS), "activation": list(ACTIVATION_KINDS), **GRID,
                        "seed": GRID_SEED, "epochs": budget.epochs, "n_train": budget.n_train,
                        "n_test": budget.n_test, "device": device})


def grid_sweep(budget: Optional[Budget] = None) -> List[RunConfig]:
    """``python -m bnnlib sweep grid``: every grid search the paper ran (MNIST and CIFAR-10, BN off
    and on, its three rules) at ``budget`` (default the paper's 100 epochs) — the protocol's own
    grid, so the sweep and the protocol name the same runs."""
    budget = budget or BUDGETS["paper"]
    return [config for dataset in dict.fromkeys(GRID_DATASET.values()) for batch_norm in (False, True)
            for config in grid_configs(dataset, batch_norm, budget)]


#: sweeps known by name (``sweep NAME``, ``status --sweep NAME``) besides YAML files
NAMED_SWEEPS = {"grid": grid_sweep}


def final_configs(selection: pd.DataFrame, dataset: str, batch_norm: bool, budget: Budget,
                  device: str = "cpu") -> List[RunConfig]:
    """The selected (algorithm, weights, activation) settings (12 for the paper's rules) × the budget's seeds."""
    configs = []
    for row in selection.itertuples():
        for seed in budget.seeds:
            configs.append(RunConfig(dataset=dataset, algorithm=row.algorithm, weights=row.weights,
                                     activation=row.activation, batch_norm=batch_norm, init=float(row.init),
                                     lr=float(row.lr), seed=seed, epochs=budget.epochs,
                                     n_train=budget.n_train, n_test=budget.n_test, device=device))
    return configs


def epoch_records(store: ResultsStore, configs: Sequence[RunConfig], budget: Budget) -> pd.DataFrame:
    """The per-epoch records of exactly these runs, up to the budget's epochs.

    Run ids exclude ``epochs`` (a longer run extends a shorter one), so a results folder may hold
    epochs beyond the budget: they are cut here, so every page shows the budget it states.
    """
    epochs = store.epochs()
    if epochs.empty:
        return epochs
    wanted = {c.run_id for c in configs}
    return epochs[epochs["run_id"].isin(wanted) & (epochs["epoch"] <= budget.epochs)]


def summarise(store: ResultsStore, configs: Sequence[RunConfig], budget: Budget) -> pd.DataFrame:
    """run_summary of exactly these runs, cut at the budget's epochs (by epoch_records)."""
    epochs = epoch_records(store, configs, budget)
    if epochs.empty:
        return pd.DataFrame()
    return run_summary(epochs, store.runs())


def ensure_grid(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore,
                data: Optional[DataOptions] = None, device: str = "cpu", algorithms: Sequence[str] = ALGORITHMS,
                **execute_options) -> pd.DataFrame:
    """Run whatever of the grid search is missing; return its per-run summary."""
    configs = grid_configs(GRID_DATASET[dataset], batch_norm, budget, device, algorithms)
    execute(configs, store, data, **execute_options)
    return summarise(store, configs, budget)


def ensure_finals(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore,
                  data: Optional[DataOptions] = None, device: str = "cpu", algorithms: Sequence[str] = ALGORITHMS,
                  **execute_options) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Grid search (on the grid dataset), selection, then the final runs; returns (selection, summary).

    Final runs keep their trained state (``<results>/states/``, git-ignored): the deployment
    chapter exports the fully binary ones without retraining.
    """
    grid = ensure_grid(dataset, batch_norm, budget, store, data, device, algorithms, **execute_options)
    selection = select_hyperparameters(grid)
    configs = final_configs(selection, dataset, batch_norm, budget, device)
    # each group's fully binary runs are exported as soon as it ends: the packed files are
    # committed, the kept states stay on the machine (and go if it is replaced mid-setting);
    # runs completed before — another process, an earlier session — are exported first and last
    export_binary_finals(store, configs, data)
    execute(configs, store, data, **{**execute_options, "keep_checkpoints": True},
            after_group=lambda group: export_binary_finals(store, group, data))
    export_binary_finals(store, configs, data)
    return selection, summarise(store, configs, budget)


def export_binary_finals(store: ResultsStore, configs: Sequence[RunConfig], data: Optional[DataOptions] = None) -> int:
    """Export every complete fully binary run of ``configs`` that has a kept state and no packed
    file yet, to ``<results>/packed/<run_id>.bnn``, with its agreement with the float model on
    the test set in ``<results>/packed.csv``. Packed files are small (~150 KB): commit them —
    the float states they come from stay on the machine that trained them. Returns how many."""
    from .data import load_dataset
    from .deploy import export, summary, PackedNetwork

    data = data or DataOptions()
    runs = store.runs()
    complete = set() if runs.empty else set(runs[runs["status"] == "complete"]["run_id"])
    folder = store.directory / "packed"
    done = 0
    for config in configs:
        path = folder / f"{config.run_id}.bnn"
        if not (config.binary_weights and config.activation == "sign") or config.run_id not in complete \
                or path.exists() or not store.state_path(config.run_id).exists():
            continue
        dataset = load_dataset(config.dataset, data.root, data.mirror, data.download).subset(None, config.n_test)
        header = export(store, config.run_id, path, verify_on=dataset)
        total = summary(PackedNetwork.load(path)).iloc[-1]
        store.update_table("packed.csv", [{"run_id": config.run_id, **config.identity(),
                                           "file_bytes": path.stat().st_size,
                                           "float32_bytes": int(total["float32 bytes"]),
                                           "test_images": header["verified_on"]["images"],
                                           "agreement": header["verified_on"]["agreement"]}])
        done += 1
    return done


# ---------------------------------------------------------------------- the book's own runs
# Beyond the paper's protocol the book runs two things of its own, at the same budget and
# arithmetic: the SHALLOW control (the output layer trained alone on the network's random binary
# hidden features) through the paper's grid search and final runs, and the mechanism chapter's
# *probed* runs — every rule's fully binary final runs again, with per-layer diagnostics
# (bnnlib.diagnostics) every PROBE_EVERY-th batch, into <results>/<budget>/diagnostics/. Probing
# changes no number (a test pins it); a probed run has its final run's id and records.

#: probe every 10th batch: 47 of an MNIST epoch's 468 batches, each a BP twin step plus the rule's
PROBE_EVERY = 10
PROBED_FOLDER = "diagnostics"
#: the setting the mechanism chapter probes: the paper's fully binary network
PROBED_SETTING = {"weights": "binary", "activation": "sign"}


def probed_store(store: ResultsStore) -> ResultsStore:
    """Where a budget's probed runs live: apart from its final runs, which are complete without
    diagnostics and never recomputed."""
    return ResultsStore(store.directory / PROBED_FOLDER)


def _is_probed_setting(config: RunConfig) -> bool:
    return all(getattr(config, k) == v for k, v in PROBED_SETTING.items())


def probed_finals(selection: pd.DataFrame, dataset: str, batch_norm: bool, budget: Budget,
                  device: str = "cpu") -> List[RunConfig]:
    """The final runs of the probed setting, for every rule a grid selection holds."""
    chosen = selection[(selection["weights"] == PROBED_SETTING["weights"]) &
                       (selection["activation"] == PROBED_SETTING["activation"])]
    return final_configs(chosen, dataset, batch_norm, budget, device)


def ensure_probed(settings: Sequence[Tuple[str, bool]], budget: Budget, store: ResultsStore,
                  data: Optional[DataOptions] = None, device: str = "cpu", every: int = PROBE_EVERY,
                  algorithms: Sequence[str] = PROBED_RULES, **execute_options) -> List[RunConfig]:
    """Run what is missing of the probed runs of these (dataset, batch_norm) settings (the grid
    searches they need first, SHALLOW's included); returns their configs."""
    configs = []
    for dataset, batch_norm in settings:
        grid = ensure_grid(dataset, batch_norm, budget, store, data, device, algorithms, **execute_options)
        configs += probed_finals(select_hyperparameters(grid), dataset, batch_norm, budget, device)
    execute(configs, probed_store(store), data, diagnostics_every=every, **execute_options)
    return configs


def ensure_book_runs(budget: Budget, store: ResultsStore, data: Optional[DataOptions] = None, device: str = "cpu",
                     datasets: Sequence[str] = DEFAULT_DATASETS, **execute_options) -> None:
    """The book's own runs at ``budget``, in this order (each stage resumable, as the protocol):
    SHALLOW's grid searches; the evaluation check (:func:`evaluation_configs`: 48 runs, the
    datasets in turn configuration by configuration, which say whether the original code's
    evaluation pass explains the results pages' BN bias — run before the 160 probed runs, which
    take longer); the probed runs of every rule, SHALLOW's included; SHALLOW's final runs, whose
    fully binary ones are the probed runs, adopted into the final runs' folder rather than
    computed twice."""
    settings = [(d, b) for d in datasets for b in (False, True)]
    for dataset, batch_norm in settings:
        ensure_grid(dataset, batch_norm, budget, store, data, device, CONTROLS, **execute_options)
    checks = {dataset: evaluation_configs(select_hyperparameters(ensure_grid(
        dataset, True, budget, store, data, device, ALGORITHMS, **execute_options)), dataset, budget, device)
        for dataset in datasets}
    execute(interleaved(checks.values()), evaluation_store(store), data, **execute_options)
    ensure_probed(settings, budget, store, data, device, **execute_options)
    for dataset, batch_norm in settings:
        grid = ensure_grid(dataset, batch_norm, budget, store, data, device, CONTROLS, **execute_options)
        finals = final_configs(select_hyperparameters(grid), dataset, batch_norm, budget, device)
        adopt_probed(store, [c for c in finals if _is_probed_setting(c)])
        execute(finals, store, data, **execute_options)


def interleaved(config_lists: Sequence[Sequence[RunConfig]]) -> List[RunConfig]:
    """The lists' runs taking each list's next configuration in turn, its seeds together (the
    runner trains a configuration's seeds as one member group): an interrupted check has measured
    every dataset's configurations about as far (the BN bias it measures is largest on
    Fashion-MNIST, whose runs came after all of MNIST's before)."""
    ranked = []
    for order, configs in enumerate(config_lists):
        rank = {key: i for i, key in enumerate(dict.fromkeys(c.group_key() for c in configs))}
        ranked += [(rank[c.group_key()], order, i, c) for i, c in enumerate(configs)]
    return [c for *_, c in sorted(ranked, key=lambda r: r[:3])]


#: where the evaluation check's runs live: apart, since they are not the records of record
EVALUATION_FOLDER = "evaluation"
#: how many of the final runs' seeds it repeats (the budget's first ones): each check run is paired
#: with the record of the same seed
EVALUATION_CHECK_SEEDS = 2


def evaluation_store(store: ResultsStore) -> ResultsStore:
    return ResultsStore(store.directory / EVALUATION_FOLDER)


def evaluation_configs(selection: pd.DataFrame, dataset: str, budget: Budget, device: str = "cpu") -> List[RunConfig]:
    """The evaluation check: the paper's final runs with BN (every rule and setting, seeds
    the budget's first EVALUATION_CHECK_SEEDS) again with ``evaluation="paper-code"`` — the original code's pass that
    moves BN's running statistics before each test evaluation. Training is the same, so each
    run's test accuracy against its record's (same seed) measures what that pass does."""
    finals = final_configs(selection, dataset, True, budget, device)
    seeds = budget.seeds[:EVALUATION_CHECK_SEEDS]
    return [dataclasses.replace(c, evaluation="paper-code") for c in finals if c.seed in seeds]


def adopt_probed(store: ResultsStore, configs: Sequence[RunConfig]) -> List[str]:
    """Bring the finished probed runs of ``configs`` into the final runs' folder (their epochs and
    run records; probing changed none of their numbers), so they are computed once and read
    by both the results pages and the mechanism chapter. Returns the run ids adopted."""
    return store.merge_from(probed_store(store), only={c.run_id for c in configs},
                            tables=("epochs", "runs"))["merged"]


#: the worker processes of `make long-run` (one per core of the 2-core reference machine; a test
#: keeps the Makefile's --workers equal to it)
LONG_RUN_WORKERS = 2


@dataclass
class Progress:
    """How far a results folder is through a budget's protocol."""

    runs_total: int
    runs_complete: int          # complete or diverged (a diverged run is finished too)
    run_epochs_total: int
    run_epochs_done: int
    seconds_per_run_epoch: Optional[float]  # median over runs on `processor`, per worker process
    stages: List[Tuple[str, int, int]]      # (stage, finished, total) in protocol order
    processor: Optional[str] = None  # whose speed the estimate is at: the latest record's (None: not recorded)
    boot: Optional[str] = None       # and which boot of such a machine (None: not recorded)
    threads: Optional[int] = None    # and the threads its runs computed with (None: not recorded)
    #: the epochs left stage by stage, as ``stages``, each at its kind's measured rate (None: no rate yet)
    stage_seconds_left: Optional[List[float]] = None
    #: per stage, whether its runs are run in turn with the next stage's (the evaluation check's
    #: datasets): then it ends when that one does (None: every stage runs alone)
    with_next: Optional[List[bool]] = None

    @property
    def machine(self) -> Optional[str]:
        """The machine whose speed the estimate is at, in words (None: no processor recorded)."""
        if self.processor is None or self.boot is None:
            return self.processor
        if self.threads is None:
            return (f"{self.processor}, boot {self.boot}: machines of one processor kind can differ in speed, "
                    f"each boot is timed apart")
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return (f"{self.processor}, boot {self.boot}, runs of {threads}: machines of one processor kind can "
                f"differ in speed, and a run's speed with its thread count, so each boot and thread count is "
                f"timed apart")

    @property
    def work_seconds_left(self) -> Optional[float]:
        return None if self.stage_seconds_left is None else sum(self.stage_seconds_left)

    def hours_left(self, workers: int = 1) -> Optional[float]:
        if self.work_seconds_left is None:
            return None
        return self.work_seconds_left / workers / 3600

    def hours_until_done(self, workers: int = 1) -> List[Optional[float]]:
        """Per stage, the hours until its last run is finished (None: already finished, or no
        rate measured yet): the protocol runs the stages in order, so a stage is done once its
        work and all the work before it are — or, run in turn with the next stage, when that one is."""
        if self.stage_seconds_left is None:
            return [None] * len(self.stages)
        ends = [seconds / workers / 3600 for seconds in accumulate(self.stage_seconds_left)]
        with_next = self.with_next or [False] * len(self.stages)
        for i in reversed(range(len(self.stages) - 1)):
            if with_next[i]:
                ends[i] = max(ends[i], ends[i + 1])
        return [None if finished >= total else end for (_, finished, total), end in zip(self.stages, ends)]


#: what an epoch's cost depends on: the rule, the binarisation and BN (dataset sizes are equal)
RATE_KIND = ("algorithm", "weights", "activation", "batch_norm")


def median_epoch_seconds(epochs: pd.DataFrame) -> pd.Series:
    """run id → median seconds of its recorded epochs, per run (a group's epoch time over its
    members): robust to a few slow epochs — a busy machine, or a slow kernel before a restart —
    which a run's total time over its epochs is not."""
    if epochs.empty or not {"group_epoch_seconds", "members"} <= set(epochs):
        return pd.Series(dtype=float)
    per_run = (epochs["group_epoch_seconds"] / epochs["members"]).groupby(epochs["run_id"]).median()
    return per_run.dropna()


def _seconds_per_epoch(runs: pd.DataFrame, epoch_seconds: Optional[pd.Series] = None
                       ) -> Tuple[Optional[float], Callable[[tuple], float], Optional[str]]:
    """Median seconds per run-epoch (one worker) and by kind, at the speed of the machine the long
    run is on now (the one that wrote the latest record: its processor kind and boot, see
    :func:`_machines`), and that machine's processor kind. A run's seconds per epoch are its median
    epoch's (``epoch_seconds``), else its mean. Below, "processor" means such a machine.

    A kind that processor has run takes its own median there. Any other kind is estimated from
    each earlier processor that ran it, one by one: that processor's median for the kind, scaled
    by how much slower or faster the new processor ran the kinds both have run (the median
    ratio, kind for kind); the estimate is the median over those processors, each weighted by the
    number of the new processor's runs its factor rests on. Scaling processor by processor
    matters because the earlier ones differ too: a kind run only on a slow machine scaled by a
    factor measured against a fast one would count twice its time. The weights matter because a
    factor can rest on a single kind whose first runs met a busy machine: it must not count as
    much as one measured on dozens of runs. A kind no
    processor sharing a kind with the new one has run takes its peers' without the BN switch
    there, else every other run's median scaled by the new processor's overall factor. So a
    long run that moves to another kind of machine is estimated at the new machine's speed as
    soon as it has recorded an epoch there."""
    timed = runs[(runs["epochs_done"] > 0) & (runs["seconds"] > 0)] if not runs.empty else runs
    if timed.empty:
        return None, lambda kind: float("nan"), None
    rate = timed["seconds"] / timed["epochs_done"]
    if epoch_seconds is not None and not epoch_seconds.empty:  # the median epoch where epochs recorded it
        rate = timed["run_id"].map(epoch_seconds).fillna(rate)
    kinds = pd.Series([tuple(row) for row in timed[list(RATE_KIND)].itertuples(index=False)], index=timed.index)
    everywhere = _rates_by_kind(rate, kinds)
    if not {"processor", "updated"} <= set(timed):
        return float(rate.median()), everywhere, None
    newest = timed["updated"].idxmax()
    if pd.isna(timed["processor"].loc[newest]):
        return float(rate.median()), everywhere, None
    machine = _machines(timed)
    here = machine == machine.loc[newest]
    here_by_kind = rate[here].groupby(kinds[here]).median().to_dict()
    if here.all():
        return (float(rate[here].median()), lambda kind: float(here_by_kind.get(kind, everywhere(kind))),
                str(timed["processor"].loc[newest]))
    elsewhere = _rates_by_kind(rate[~here], kinds[~here])
    factor = float((rate[here] / kinds[here].map(elsewhere)).median())  # against all the others at once
    # the same, processor by processor (runs that recorded none count as one more processor)
    others = machine[~here].fillna("not recorded")
    scaled = []  # (factor against that processor, runs it rests on, its median by kind, by kind without BN switch)
    for name in others.unique():
        theirs = others.index[others == name]
        by_kind = rate[theirs].groupby(kinds[theirs]).median()
        shared = kinds[here].map(by_kind).notna()
        if shared.any():
            ratios = rate[here][shared] / kinds[here][shared].map(by_kind)
            by_peer = rate[theirs].groupby(kinds[theirs].map(lambda kind: kind[:-1])).median()
            scaled.append((float(ratios.median()), int(shared.sum()), by_kind.to_dict(), by_peer.to_dict()))

    def rate_of(kind: tuple) -> float:
        if kind in here_by_kind:
            return float(here_by_kind[kind])
        estimates = ([(f * by_kind[kind], n) for f, n, by_kind, _ in scaled if kind in by_kind]
                     or [(f * by_peer[kind[:-1]], n) for f, n, _, by_peer in scaled if kind[:-1] in by_peer])
        return weighted_median(*zip(*estimates)) if estimates else float(factor * elsewhere(kind))

    return float(rate[here].median()), rate_of, str(timed["processor"].loc[newest])


def _machines(runs: pd.DataFrame) -> pd.Series:
    """Per run, the machine whose speed it measured: its processor kind and, where recorded, the
    boot it ran in. Two machines of one processor kind can differ in speed by half (their other
    load, their clocks), so a boot counts as a machine of its own, and a kind of run measured on
    an earlier machine of the same kind is scaled like any other; runs recorded before boots were
    count per processor kind. Within a boot, runs of another thread count count as another machine:
    two in-process runs of 2 threads each on a 2-core Intel Xeon took 1.5× as long per epoch as the
    2 single-threaded workers that replaced them (8.5 against 5.3 s, DRTP binary tanh)."""
    machine = runs["processor"]
    if "boot" in runs:
        booted = runs["boot"].notna() & machine.notna()
        machine = machine.where(~booted, machine.astype(str) + " (boot " + runs["boot"].astype(str) + ")")
        if "threads" in runs:
            counted = booted & runs["threads"].notna()
            threads = runs["threads"].where(counted, 0).astype(int).astype(str)
            machine = machine.where(~counted, machine.astype(str) + " (" + threads + " threads)")
    return machine


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The value at half the total weight once sorted; where half falls exactly between two values,
    their mean. With equal weights this is the ordinary median."""
    pairs = sorted(zip(values, weights))
    total, below = sum(w for _, w in pairs), 0.0
    for i, (value, weight) in enumerate(pairs):
        below += weight
        if 2 * below > total:
            return float(value)
        if 2 * below == total:
            return float((value + pairs[i + 1][0]) / 2)
    raise ValueError("weighted_median needs at least one value of positive weight")


def _rates_by_kind(rate: pd.Series, kinds: pd.Series) -> Callable[[tuple], float]:
    """Median seconds per epoch of a kind; a kind not measured takes its peers' without the BN
    switch, then every run's median."""
    by_kind = rate.groupby(kinds).median().to_dict()
    by_peer = rate.groupby(kinds.map(lambda kind: kind[:-1])).median().to_dict()
    overall = float(rate.median())
    return lambda kind: float(by_kind.get(kind, by_peer.get(kind[:-1], overall)))


def _epochs_done(store: ResultsStore, budget: Budget) -> Callable[[RunConfig], int]:
    """config → its epochs recorded in ``store`` (at most the budget's; a diverged run counts as
    finished): the smaller of runs.csv's count and the epoch rows that back it."""
    runs = store.runs()
    record = {} if runs.empty else runs.set_index("run_id")[["status", "epochs_done"]].to_dict("index")
    rows = store.epoch_counts()

    def done(config: RunConfig) -> int:
        r = record.get(config.run_id)
        if r is None:
            return 0
        if r["status"] == "diverged":
            return budget.epochs
        return min(int(r["epochs_done"]), rows.get(config.run_id, 0), budget.epochs)
    return done


PROBED_SUFFIX = " probed"


def _kind(config: RunConfig, probed: bool = False) -> tuple:
    """A run's kind for its speed (RATE_KIND); a probed run is a kind of its own — the BP twin's
    step on every probed batch costs time — named by its rule and PROBED_SUFFIX."""
    kind = tuple(getattr(config, f) for f in RATE_KIND)
    return (kind[0] + PROBED_SUFFIX, *kind[1:]) if probed else kind


class _StagePlan:
    """The stages of a budget's runs in the order they are run, each with its runs' epochs done
    and the (kind, epochs) left: runs not yet known (finals before their grid is selected) count
    as their structures × seeds, at their full epochs."""

    def __init__(self, budget: Budget):
        self.budget, self.stages, self.left, self.epochs_done = budget, [], [], 0
        self.runs_complete = self.runs_total = 0
        self.with_next: List[bool] = []

    def add(self, name: str, configs: Sequence[RunConfig], done: Sequence[int], total: Optional[int] = None,
            unknown: Sequence[RunConfig] = (), probed: bool = False,
            timed_elsewhere: Optional[Callable[[RunConfig], bool]] = None, with_next: bool = False) -> None:
        """``timed_elsewhere``: runs this stage counts but whose epochs left an earlier stage
        computes (SHALLOW's fully binary finals are its probed runs): not timed twice.
        ``with_next``: its runs are run in turn with the next stage's (Progress.with_next)."""
        epochs = self.budget.epochs
        finished = sum(d >= epochs for d in done)
        self.left.extend((len(self.stages), _kind(c, probed), epochs - d) for c, d in zip(configs, done)
                         if d < epochs and not (timed_elsewhere and timed_elsewhere(c)))
        self.left.extend((len(self.stages), _kind(c, probed), epochs) for c in unknown)
        total = len(configs) if total is None else total
        self.stages.append((name, finished, total))
        self.with_next.append(with_next)
        self.runs_total += total
        self.runs_complete += finished
        self.epochs_done += sum(done)


def _grid_selection(store: ResultsStore, dataset: str, batch_norm: bool, budget: Budget, done,
                    algorithms: Sequence[str]) -> Optional[pd.DataFrame]:
    """The grid search's choice for ``algorithms``, or None while their grid is not finished."""
    grid = grid_configs(GRID_DATASET[dataset], batch_norm, budget, algorithms=algorithms)
    if not all(done(c) >= budget.epochs for c in grid):
        return None
    return select_hyperparameters(summarise(store, grid, budget))


def _structures(dataset: str, batch_norm: bool, budget: Budget, algorithms: Sequence[str], seeds: int,
                setting: Optional[dict] = None) -> List[RunConfig]:
    """Each structure (rule, weights, activation) of a grid once per seed: stand-ins for final runs
    not selected yet."""
    grid = grid_configs(GRID_DATASET[dataset], batch_norm, budget, algorithms=algorithms)
    if setting:
        grid = [c for c in grid if all(getattr(c, k) == v for k, v in setting.items())]
    return [c for c in {c.group_key(): c for c in grid}.values() for _ in range(seeds)]


def progress(store: ResultsStore, budget: Budget, datasets: Sequence[str] = DEFAULT_DATASETS,
             book_runs: bool = False) -> Progress:
    """Runs finished / total and run-epochs done / total for the protocol of ``budget``, stage by
    stage in the order ``python -m bnnlib protocol`` runs them. A setting's final runs are
    known once its grid search is complete (they depend on its selection); until then they
    count as not started. ``book_runs``: then the book's own runs, in the order
    :func:`ensure_book_runs` runs them (SHALLOW's grid, the evaluation check, the probed runs,
    SHALLOW's finals)."""
    done = _epochs_done(store, budget)
    plan, seen = _StagePlan(budget), set()
    n_finals = 12 * len(budget.seeds)
    for dataset in datasets:
        for batch_norm in (False, True):
            grid = grid_configs(GRID_DATASET[dataset], batch_norm, budget)
            key = (GRID_DATASET[dataset], batch_norm)
            if key not in seen:
                seen.add(key)
                plan.add(f"{GRID_DATASET[dataset]} grid, BN {switch_word(batch_norm)}", grid, [done(c) for c in grid])
            selection = _grid_selection(store, dataset, batch_norm, budget, done, ALGORITHMS)
            finals = [] if selection is None else final_configs(selection, dataset, batch_norm, budget)
            plan.add(f"{dataset} finals, BN {switch_word(batch_norm)}", finals, [done(c) for c in finals],
                     total=n_finals, unknown=() if finals else _structures(dataset, batch_norm, budget, ALGORITHMS,
                                                                           len(budget.seeds)))
    epochs = store.epochs()
    runs = store.runs()
    if book_runs:
        _plan_book_runs(plan, store, budget, datasets, done)
        probed = probed_store(store)
        runs, epochs = _with_probed(runs, probed.runs()), _with_probed(epochs, probed.epochs())
        # the evaluation check's runs train as final runs do (their ids differ): their speeds count,
        # and their latest record names the machine the long run is on now
        checked = evaluation_store(store)
        runs = pd.concat([r for r in (runs, checked.runs()) if not r.empty] or [runs], ignore_index=True)
        epochs = pd.concat([e for e in (epochs, checked.epochs()) if not e.empty] or [epochs], ignore_index=True)
    rate, rate_of, processor = _seconds_per_epoch(runs, median_epoch_seconds(epochs))
    if book_runs and rate is not None:
        rate_of = _probed_rates(rate_of, runs, median_epoch_seconds(epochs))
    by_stage = None
    if rate is not None:
        by_stage = [0.0] * len(plan.stages)
        for stage, kind, left in plan.left:
            by_stage[stage] += rate_of(kind) * left
    boot = threads = None
    if processor is not None:  # the boot and threads of the record the estimate's machine is named by
        newest = runs.loc[runs["updated"].idxmax()]
        if "boot" in runs and not pd.isna(newest["boot"]):
            boot = str(newest["boot"])
            threads = None if "threads" not in runs or pd.isna(newest["threads"]) else int(newest["threads"])
    return Progress(plan.runs_total, plan.runs_complete, plan.runs_total * budget.epochs, plan.epochs_done, rate,
                    plan.stages, processor=processor, boot=boot, threads=threads, stage_seconds_left=by_stage,
                    with_next=plan.with_next)


def _with_probed(runs: pd.DataFrame, probed: pd.DataFrame) -> pd.DataFrame:
    """Records (runs.csv or epochs.csv rows) whose speeds estimate the hours left, the probed runs
    among them as kinds of their own (:func:`_kind`)."""
    if probed.empty:
        return runs
    # a probed run has the id of the final run it probes: told apart here, so each keeps its own speed
    probed = probed.assign(algorithm=probed["algorithm"] + PROBED_SUFFIX, run_id=probed["run_id"] + PROBED_SUFFIX)
    return pd.concat([runs, probed], ignore_index=True)


def _probed_rates(rate_of: Callable[[tuple], float], runs: pd.DataFrame,
                  epoch_seconds: pd.Series) -> Callable[[tuple], float]:
    """``rate_of`` where a probed kind not yet recorded takes its plain kind's rate times the
    probing overhead measured so far (the median over the probed runs recorded of their rate over
    their plain kind's; 1 before any is recorded: the estimate then leaves the probes' cost out)."""
    timed = runs[(runs["epochs_done"] > 0) & (runs["seconds"] > 0)] if not runs.empty else runs
    probed = timed[timed["algorithm"].str.endswith(PROBED_SUFFIX)] if not timed.empty else timed
    measured = {tuple(row) for row in probed[list(RATE_KIND)].itertuples(index=False)}

    def plain(kind):
        return (kind[0][:-len(PROBED_SUFFIX)], *kind[1:])
    overheads = []
    for row in probed.itertuples(index=False):
        seconds = epoch_seconds.get(row.run_id, row.seconds / row.epochs_done)
        overheads.append(seconds / rate_of(plain(tuple(getattr(row, f) for f in RATE_KIND))))
    overhead = float(pd.Series(overheads).median()) if overheads else 1.0

    def rate(kind: tuple) -> float:
        if not kind[0].endswith(PROBED_SUFFIX) or kind in measured:
            return rate_of(kind)
        return rate_of(plain(kind)) * overhead
    return rate


def _plan_book_runs(plan: _StagePlan, store: ResultsStore, budget: Budget, datasets: Sequence[str], done) -> None:
    """The stages of :func:`ensure_book_runs`, then those of every extension rule with a run
    recorded (``protocol --algorithm RULE``: its grid searches, then its finals), appended to ``plan``."""
    probed_done = _epochs_done(probed_store(store), budget)
    settings = [(d, b) for d in datasets for b in (False, True)]
    _plan_grids(plan, CONTROLS, budget, settings, done)
    checked_done = _epochs_done(evaluation_store(store), budget)
    seeds = len(budget.seeds[:EVALUATION_CHECK_SEEDS])
    for dataset in datasets:  # run in turn (interleaved): each ends with the last
        selection = _grid_selection(store, dataset, True, budget, done, ALGORITHMS)
        configs = [] if selection is None else evaluation_configs(selection, dataset, budget)
        plan.add(f"evaluation check, {dataset}, BN on", configs, [checked_done(c) for c in configs],
                 total=len(ALGORITHMS) * len(WEIGHT_KINDS) * len(ACTIVATION_KINDS) * seeds,
                 unknown=() if configs else _structures(dataset, True, budget, ALGORITHMS, seeds),
                 with_next=dataset != datasets[-1])
    n_probed = len(PROBED_RULES) * len(budget.seeds)
    for dataset, batch_norm in settings:
        selection = _grid_selection(store, dataset, batch_norm, budget, done, PROBED_RULES)
        configs = [] if selection is None else probed_finals(selection, dataset, batch_norm, budget)
        plan.add(f"probed runs, {dataset}, BN {switch_word(batch_norm)}", configs, [probed_done(c) for c in configs],
                 total=n_probed, probed=True,
                 unknown=() if configs else _structures(dataset, batch_norm, budget, PROBED_RULES,
                                                        len(budget.seeds), PROBED_SETTING))
    # SHALLOW's fully binary finals are the probed runs' (computed once, adopted by ensure_book_runs)
    _plan_finals(plan, store, CONTROLS, budget, settings,
                 lambda c: max(done(c), probed_done(c)) if _is_probed_setting(c) else done(c), adopted=True)
    runs = store.runs()
    recorded = set() if runs.empty else set(runs["algorithm"])
    for rule in (r for r in EXTENSIONS if r in recorded):
        _plan_grids(plan, (rule,), budget, settings, done)
        _plan_finals(plan, store, (rule,), budget, settings, done)


def _plan_grids(plan: _StagePlan, algorithms: Sequence[str], budget: Budget, settings, done) -> None:
    for grid_dataset, batch_norm in dict.fromkeys((GRID_DATASET[d], b) for d, b in settings):
        grid = grid_configs(grid_dataset, batch_norm, budget, algorithms=algorithms)
        plan.add(f"{'+'.join(algorithms)} grid, {grid_dataset}, BN {switch_word(batch_norm)}", grid,
                 [done(c) for c in grid])


def _plan_finals(plan: _StagePlan, store: ResultsStore, algorithms: Sequence[str], budget: Budget, settings, done,
                 adopted: bool = False) -> None:
    """Final-run stages of ``algorithms``; ``adopted``: their probed setting's runs come from the
    probed runs, so their epochs left are timed by the probed runs' stage, not here."""
    total = len(algorithms) * len(WEIGHT_KINDS) * len(ACTIVATION_KINDS) * len(budget.seeds)
    for dataset, batch_norm in settings:
        selection = _grid_selection(store, dataset, batch_norm, budget, done, algorithms)
        configs = [] if selection is None else final_configs(selection, dataset, batch_norm, budget)
        unknown = [] if configs else [c for c in _structures(dataset, batch_norm, budget, algorithms, len(budget.seeds))
                                      if not (adopted and _is_probed_setting(c))]
        plan.add(f"{'+'.join(algorithms)} finals, {dataset}, BN {switch_word(batch_norm)}", configs,
                 [done(c) for c in configs], total=total, unknown=unknown,
                 timed_elsewhere=_is_probed_setting if adopted else None)
