"""What a page shows, from the records: which budget (the one owner of that choice), the runs
recorded at it — read, or computed where missing —, and the sentences saying which budget and
which runs a page rests on.

``best``, the book's default budget, is per page (or per unit of a page: a dataset × BN setting,
a dataset's two BN settings): the first of :data:`BEST_ORDER` at which all of its runs are
recorded, else the last (cpu), where the page computes what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from ..config import RunConfig
from ..paths import PROJECT_ROOT
from ..protocol import (ALGORITHMS, CONTROLS, EXTENSIONS, GRID_DATASET, Budget, ensure_finals, final_configs,
                        get_budget, grid_configs, results_dir, summarise)
from ..store import ResultsStore
from ..sweep import select_hyperparameters

#: the book's default budget: per page, ``paper`` where all of that page's runs are recorded at
#: it, else ``cpu`` (each page says which, and why)
BEST = "best"
BEST_ORDER = ("paper", "cpu")


def choose_budget(requested: str, results_base: Optional[str],
                  complete: Callable[[Budget, ResultsStore], bool]) -> Tuple[Budget, ResultsStore]:
    """(Budget, ResultsStore) a page shows: the budget asked for, or for ``best`` the first of
    :data:`BEST_ORDER` where ``complete(budget, store)`` says the page's runs are all recorded,
    else the last. Every page's choice is this one; what "all recorded" means is the page's
    (:func:`open_store`: final runs or grids; the mechanism chapter: its probed runs)."""
    base = Path(results_base) if results_base else None
    if requested != BEST:
        budget = get_budget(requested)
        return budget, ResultsStore(results_dir(budget, base))
    for name in BEST_ORDER:
        candidate = get_budget(name)
        store = ResultsStore(results_dir(candidate, base))
        if complete(candidate, store):
            return candidate, store
    fallback = get_budget(BEST_ORDER[-1])
    return fallback, ResultsStore(results_dir(fallback, base))


def first_recorded(by_budget: Dict[str, object], page_budget: str) -> Optional[str]:
    """The first budget of :data:`BEST_ORDER`, then the page's own, whose entry in ``by_budget``
    is recorded (not None); None when none is."""
    return next((name for name in (*BEST_ORDER, page_budget) if by_budget.get(name) is not None), None)


def open_store(budget: str, results_base: Optional[str] = None, needs: Sequence[tuple] = (),
               grid_only: bool = False) -> tuple:
    """(Budget, ResultsStore) for a budget; results under ``<results_base>/<budget>``.

    ``budget="best"`` takes the first of ``paper``, ``cpu`` at which every (dataset, batch_norm)
    in ``needs`` has all its runs recorded — its grid search, and unless ``grid_only`` its
    final runs — and ``cpu`` when none has (a page then computes what is missing, as always).
    """

    def complete(candidate: Budget, store: ResultsStore) -> bool:
        return (store.directory / "runs.csv").exists() and bool(needs) and all(
            _recorded(dataset, batch_norm, candidate, store, grid_only) for dataset, batch_norm in needs)
    return choose_budget(budget, results_base, complete)


def finished_runs(summary: pd.DataFrame, budget: Budget) -> int:
    """How many summarised runs are finished at the budget: all its epochs done, or diverged."""
    return 0 if summary.empty else int(((summary["epochs_done"] >= budget.epochs) | summary["diverged"]).sum())


def all_finished(summary: pd.DataFrame, configs: Sequence[RunConfig], budget: Budget) -> bool:
    """Whether every one of ``configs`` is summarised and finished (``summary``: protocol.summarise)."""
    return len(summary) >= len(configs) and finished_runs(summary, budget) == len(summary)


def _recorded(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore, grid_only: bool) -> bool:
    if grid_only:
        configs = grid_configs(GRID_DATASET[dataset], batch_norm, budget)
        return all_finished(summarise(store, configs, budget), configs, budget)
    return recorded_finals(dataset, batch_norm, budget, store) is not None


def budget_choice(requested: str, budget: Budget, per_setting: Optional[str] = None) -> str:
    """A sentence saying which budget a page shows and why (for ``budget="best"``); ``per_setting``
    (e.g. "dataset × BN setting"): the page shows each such unit at its own best budget."""
    if per_setting and requested == BEST:
        paper, cpu = (get_budget(name) for name in BEST_ORDER)
        if budget.name == paper.name:  # every unit's runs are recorded at it: the fallback is not named
            return (f"Each {per_setting} shows our runs of **{epochs_label(paper)}** (the `{paper.name}` budget: "
                    f"exactly the paper's protocol): all of them are recorded.")
        return (f"Each {per_setting} shows our runs of **{epochs_label(paper)}** (the `{paper.name}` budget) once "
                f"all of them are recorded, else those of **{epochs_label(cpu)}** (`{cpu.name}`); each says which.")
    if requested != BEST:
        return f"This page was executed at the `{budget.name}` budget (**{epochs_label(budget)}**), as asked."
    paper = get_budget("paper")
    if budget.name == paper.name:
        return (f"This page shows our runs of **{epochs_label(paper)}** (the `{paper.name}` budget: exactly the "
                f"paper's protocol): all of them are recorded.")
    return (f"This page shows our runs of **{epochs_label(budget)}** (the `{budget.name}` budget; the paper trained "
            f"for {paper.epochs}): the {paper.epochs}-epoch runs for it are not all recorded yet (`python -m bnnlib status "
            f"results/paper` shows how far they are). It will show those once they are.")


def epochs_label(budget: Budget) -> str:
    """Our runs as the book names them, by their epochs: "100 epochs", "5 epochs" — never by the
    budget's name, since "paper" beside the paper's own numbers reads as the paper's."""
    return f"{budget.epochs} epoch{'s' if budget.epochs != 1 else ''}"


def epochs_bold(budget: Budget) -> str:
    """"**100 epochs** (as in the paper)", "**5 epochs** (the paper trained for 100)"."""
    paper_epochs = get_budget("paper").epochs
    return f"**{epochs_label(budget)}** (" + ("as in the paper)" if budget.epochs == paper_epochs
                                              else f"the paper trained for {paper_epochs})")


def epochs_beside_paper(budget: Budget) -> str:
    """"5 epochs; the paper trained for 100", or "100 epochs, as in the paper" at its own budget."""
    paper_epochs = get_budget("paper").epochs
    epochs = epochs_label(budget)
    return f"{epochs}, as in the paper" if budget.epochs == paper_epochs else f"{epochs}; the paper trained for {paper_epochs}"


def produced_from(budget: Budget) -> str:
    """How a page's closing provenance names the budget it shows: by its runs' epochs, the CLI's
    name in code ("Produced from our runs of **5 epochs**, budget `cpu`")."""
    return f"Produced from our runs of **{epochs_label(budget)}**, budget `{budget.name}`"


def arithmetic_of(runs: pd.DataFrame) -> pd.Series:
    """Each run record's arithmetic version; records written before versions were recorded are
    version 1."""
    return runs.get("arithmetic", pd.Series(float("nan"), index=runs.index)).fillna(1).astype(int)


def budget_statement(budget: Budget, store: ResultsStore, configs: Sequence[RunConfig]) -> str:
    """A sentence, from the run metadata, saying which budget produced a page (``configs``: its
    runs' RunConfigs, or their run ids)."""
    runs = store.runs()
    ids = {getattr(c, "run_id", c) for c in configs}
    mine = runs[runs["run_id"].isin(ids)] if not runs.empty else runs
    if mine.empty:
        return f"Our runs of **{epochs_label(budget)}** (budget `{budget.name}`: {budget.description}): none recorded yet."
    devices = ", ".join(sorted(set(mine["device"])))
    torch_versions = ", ".join(sorted(set(mine["torch"])))
    complete = int((mine["status"] == "complete").sum())
    diverged = int((mine["status"] == "diverged").sum())
    versions = sorted(set(arithmetic_of(mine)))
    arithmetic = ", ".join(map(str, versions))
    return (f"{produced_from(budget)} ({budget.description}) from `{_relative(store.directory)}`: "
            f"{len(mine)} runs ({complete} complete, {diverged} diverged), each {int(mine['epochs_done'].max())} "
            f"epochs at most, computed on {devices} with torch {torch_versions} and arithmetic version "
            f"{arithmetic} (the Reproducing chapter says what each version changed), last updated "
            f"{record_time(pd.to_datetime(mine['updated'], utc=True).max())}.")


def record_time(when) -> str:
    """A record's time (ISO text or a timestamp) as a reader reads it, "2026-12-01 03:45 UTC", kept
    on one line (a word joiner after each hyphen, no-break spaces: at 390 px
    "2026-12-01T03:45:41+00:00" broke at its hyphens); "not recorded" where there is none. Records
    write their times in UTC with the offset; one without an offset is taken as UTC.
    tests/nbval_sanitize.cfg matches this form."""
    when = pd.Timestamp(when)
    if when is pd.NaT:
        return "not recorded"
    when = when.tz_convert("UTC") if when.tzinfo else when
    return when.strftime("%Y-%m-%d %H:%M UTC").replace("-", "-\u2060").replace(" ", "\u00a0")


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return Path(path).name


def _statements_by_budget(parts: Iterable[tuple]) -> List[str]:
    """One :func:`budget_statement` per budget over the configs of all its (budget, store, configs)."""
    by_budget = {}
    for budget, store, configs in parts:
        by_budget.setdefault(budget.name, (budget, store, []))[2].extend(configs)
    return [budget_statement(budget, store, configs) for budget, store, configs in by_budget.values()]


def _recorded_finals_so_far(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore,
                            algorithms: Sequence[str]) -> Optional[tuple]:
    """(final configs, summary of those recorded) of a setting — nothing is computed — or None
    while the grid search that selects them is incomplete."""

    searched = grid_configs(GRID_DATASET[dataset], batch_norm, budget, algorithms=algorithms)
    grid = summarise(store, searched, budget)
    if not all_finished(grid, searched, budget):
        return None
    finals = final_configs(select_hyperparameters(grid), dataset, batch_norm, budget)
    return finals, summarise(store, finals, budget)


def recorded_finals(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore,
                    algorithms: Sequence[str] = ALGORITHMS) -> Optional[pd.DataFrame]:
    """The summary of a setting's final runs as recorded — nothing is computed — or None while
    its grid search or any of its final runs is incomplete."""
    recorded = _recorded_finals_so_far(dataset, batch_norm, budget, store, algorithms)
    if recorded is None:
        return None
    finals, summary = recorded
    return summary if all_finished(summary, finals, budget) else None


def paper_store(results_base: Optional[str] = None) -> ResultsStore:
    """The paper budget's records (those of the long run), wherever the page's own budget is."""
    return ResultsStore(results_dir(get_budget("paper"), Path(results_base) if results_base else None))


def paper_finals_so_far(dataset: str, batch_norm: bool, results_base: Optional[str] = None,
                        algorithms: Sequence[str] = ALGORITHMS) -> Optional[pd.DataFrame]:
    """While a setting's final runs are still being recorded at the paper budget: the summary of
    the configurations (algorithm × weights × activation) whose every seed has finished there —
    read, never computed. None while the grid search that selects them is incomplete, when no
    configuration has finished yet, or once all have (the page then shows the paper budget)."""
    paper = get_budget("paper")
    recorded = _recorded_finals_so_far(dataset, batch_norm, paper, paper_store(results_base), algorithms)
    if recorded is None or recorded[1].empty:
        return None
    finals, summary = recorded
    configuration = ["algorithm", "weights", "activation"]
    wanted = pd.DataFrame([c.identity() for c in finals]).groupby(configuration).size().rename("seeds")
    done = summary[(summary["epochs_done"] >= paper.epochs) | summary["diverged"]]
    finished = done.groupby(configuration).size().rename("finished")
    counts = pd.concat([wanted, finished], axis=1).fillna(0)
    complete = counts[counts["finished"] >= counts["seeds"]].index
    if len(complete) in (0, len(counts)):
        return None
    keep = summary.set_index(configuration).index.isin(complete)
    out = summary[keep].reset_index(drop=True)
    out.attrs["configurations"] = (len(complete), len(counts))
    return out


def with_controls(summary: pd.DataFrame, dataset: str, batch_norm: bool, budget: Budget,
                  store: ResultsStore) -> pd.DataFrame:
    """The paper's rules' final runs plus, where recorded at this budget, those of our own rules —
    the SHALLOW control and our extensions (``python -m bnnlib protocol --algorithm RULE``): their
    rows join every table."""
    parts = [summary]
    for control in CONTROLS + EXTENSIONS:
        recorded = recorded_finals(dataset, batch_norm, budget, store, algorithms=(control,))
        if recorded is not None:
            parts.append(recorded)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else summary


def _finals_with_controls(dataset: str, batch_norm: bool, budget: Budget, store: ResultsStore) -> List[str]:
    run_ids = []
    for algorithms in (ALGORITHMS, CONTROLS, EXTENSIONS):
        summary = recorded_finals(dataset, batch_norm, budget, store, algorithms=algorithms)
        if summary is not None:
            run_ids += list(summary["run_id"])
    return run_ids


#: how pages run what is missing: one progress bar over run-epochs, not one per epoch
NOTEBOOK_EXECUTION = {"batch_progress": False}


def final_runs(settings: Sequence[tuple], budget: Budget, store: ResultsStore, data, device: str,
               controls: bool = False) -> Dict[tuple, tuple]:
    """Each (dataset, batch_norm) setting's final runs of the paper's rules — read, or trained
    where missing — as ``{setting: (selection, summary)}``, in the order given; ``controls``:
    the summaries also hold the SHALLOW control's rows where recorded (:func:`with_controls`)."""
    runs = {}
    for dataset, batch_norm in settings:
        selection, summary = ensure_finals(dataset, batch_norm, budget, store, data, device, **NOTEBOOK_EXECUTION)
        if controls:
            summary = with_controls(summary, dataset, batch_norm, budget, store)
        runs[dataset, batch_norm] = selection, summary
    return runs


def final_runs_by_setting(requested: str, results_base: Optional[str], units: Sequence[Sequence[tuple]], data,
                          device: str, controls: bool = False) -> Dict[tuple, tuple]:
    """:func:`final_runs` with each unit — a list of (dataset, batch_norm) settings compared at one
    budget — at its own budget (``best``: paper once all of the unit's runs are recorded at it,
    else cpu): ``{setting: (budget, store, selection, summary)}`` for every setting of every unit."""
    finals = {}
    for unit in units:
        budget, store = open_store(requested, results_base, needs=unit)
        for setting, (selection, summary) in final_runs(unit, budget, store, data, device, controls).items():
            finals[setting] = budget, store, selection, summary
    return finals


def budget_statements(finals: Dict[tuple, tuple], device: str, keep=lambda config: True) -> List[str]:
    """:func:`budget_statement` for each budget in :func:`final_runs_by_setting`'s result, over the
    final runs ``keep`` accepts."""
    return _statements_by_budget(
        (budget, store, [c for c in final_configs(selection, dataset, batch_norm, budget, device) if keep(c)])
        for (dataset, batch_norm), (budget, store, selection, _) in finals.items())


def recorded_so_far(budget_name: str, datasets, results_base: Optional[str] = None) -> Dict[Tuple[str, bool], pd.DataFrame]:
    """The summaries of the dataset × BN settings whose final runs are all recorded at a budget
    (possibly none): what a budget shows while :func:`decided_at` still waits for the rest."""

    budget, store = open_store(budget_name, results_base)
    found = {(dataset, batch_norm): recorded_finals(dataset, batch_norm, budget, store)
             for dataset in datasets for batch_norm in (False, True)}
    return {key: summary for key, summary in found.items() if summary is not None}


def agreement_sentence(table: pd.DataFrame, budget: Budget, what: str) -> str:
    """How many rows of a comparison table agree with the paper, with the budget it rests on."""
    return _agreement(table.attrs.get("agree", 0), table.attrs.get("compared", 0), budget, what)


def _agreement(agree: int, compared: int, budget: Budget, what: str) -> str:
    if compared == 0:
        return "The paper published no numbers for this setting to compare with."
    return (f"After {epochs_bold(budget)}, {what} for "
            f"**{agree} of {compared}** configurations.")
