"""Command line: ``python -m bnnlib {run,sweep,protocol,book,status,merge,export,export-c,summary,predict} …``
(``--help`` on each). ``run``'s options are generated from :class:`~bnnlib.config.RunConfig`'s fields."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

import pandas as pd
import torch

from . import kernels
from .cores import session_priority
from .checks import check_count, reject
from .config import SWITCH, RunConfig, switch_word
from .data import DATASETS, MIRROR_VARIABLE, ROOT_VARIABLE, DatasetError
from .protocol import BUDGETS
from .runner import (DEFAULT_MAX_MEMBERS, STOPPED_EXIT_STATUS, DataOptions, StopRequested, check_cluster, execute,
                     plan, stop_on_signal)
from .store import ResultsStore
from .sweep import count_by_rule, load_sweep, restrict, run_summary
from .trainers import TRAINERS, rules

EXAMPLES = """examples:
  python -m bnnlib run --dataset mnist --algorithm DFA --epochs 1 --results results/try
  python -m bnnlib sweep grid --only dataset=mnist --only batch_norm=off --epochs 5 --results results/grid
  python -m bnnlib sweep sweeps/binary_lr_scan.yaml --cluster local:2 --results results/scan
  python -m bnnlib status results/grid --sweep grid --only dataset=mnist
"""


def sweep_configs(source: str) -> List[RunConfig]:
    """A sweep by name (``grid``: the protocol's grid search) or from a YAML file."""
    from .protocol import NAMED_SWEEPS

    if source in NAMED_SWEEPS and not Path(source).exists():
        return NAMED_SWEEPS[source]()
    if not Path(source).exists():
        raise reject("sweep", source, f"{', '.join(NAMED_SWEEPS)} or the path of a YAML sweep file")
    return load_sweep(source)


def _add_execution_options(parser):
    parser.add_argument("--results", type=Path, default=Path("results/runs"),
                        help="results folder (epochs.csv, runs.csv, checkpoints/); default results/runs")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (overrides the runs' device)")
    parser.add_argument("--data-root", help=f"where datasets are stored (default ${ROOT_VARIABLE} or ./data)")
    parser.add_argument("--data-mirror", help=f"offline mirror in torchvision's layout (default ${MIRROR_VARIABLE})")
    parser.add_argument("--no-download", action="store_true", help="never try the internet for data")
    parser.add_argument("--max-members", type=int, default=DEFAULT_MAX_MEMBERS,
                        help=f"at most this many runs trained together as one model (default {DEFAULT_MAX_MEMBERS})")
    parser.add_argument("--workers", type=int, default=1,
                        help="N > 1: N single-threaded worker processes train member groups side by side "
                             "(the fastest way through a sweep on a multi-core or shared machine); default 1")
    parser.add_argument("--cluster", help="Dask: local:N for a LocalCluster of N workers, or a scheduler address")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep each run's trained state after it completes, in <results>/states/ "
                             "(to export or extend it later)")
    parser.add_argument("--diagnostics", type=int, default=0, metavar="N",
                        help="per-layer diagnostics every N-th batch into <results>/diagnostics.csv "
                             "(STE pass-through, flips, update norms, alignment with BP); default 0: off")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


_FIELD_TYPES = {"str": str, "float": float, "int": int, "Optional[int]": int, "bool": bool}


def _run_fields():
    return [f for f in dataclasses.fields(RunConfig) if f.metadata.get("cli", False)]


def _add_run_fields(parser) -> None:
    """One option per field of RunConfig: names, types, defaults, help and choices (from the
    registries) all come from the field, so a new field or a new registered name needs no edit here."""
    for f in _run_fields():
        flag = "--" + f.name.replace("_", "-")
        kind = _FIELD_TYPES[str(f.type)]
        help_text = f.metadata["help"]
        if kind is bool:  # --batch-norm alone means on, as a flag would; off and on are spelled out
            words = {meaning: word for word, meaning in f.metadata["choices"]().items()}
            parser.add_argument(flag, choices=list(words.values()), nargs="?", const=words[True],
                                default=words[f.default], help=f"{help_text} (default {words[f.default]}; "
                                                               f"{flag} alone: {words[True]})")
            continue
        options = {"type": kind, "help": help_text}
        choices = f.metadata.get("choices")
        if choices is not None:
            options["choices"] = list(choices())
        if f.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = f.default
            if f.default is not None:
                options["help"] += f" (default {f.default})"
        parser.add_argument(flag, **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bnnlib", description="Train the paper's binary MLPs "
                                     "with BP, DFA, DRTP (or the SHALLOW control); store per-epoch results; resume after interruption.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="train one run (or resume it) and print its metrics",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_fields(run)
    _add_execution_options(run)

    sweep = commands.add_parser("sweep", help="run every configuration of a sweep file (YAML) not yet done",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("file", metavar="SWEEP", help="grid (the paper's grid search, as the protocol runs it, "
                       "100 epochs) or a YAML file: run fields mapped to values or lists to cross")
    sweep.add_argument("--only", action="append", default=[], metavar="FIELD=VALUE[,VALUE]",
                       help="restrict the sweep (repeatable), e.g. --only dataset=mnist")
    sweep.add_argument("--epochs", type=int, help="override the epochs of every run")
    sweep.add_argument("--dry-run", action="store_true", help="say what would run, run nothing")
    _add_execution_options(sweep)

    protocol = commands.add_parser("protocol", help="the paper's protocol at a budget: grid search, "
                                   "selection, final runs (what the book's chapters run)")
    protocol.add_argument("--budget", default="cpu", choices=list(BUDGETS))
    protocol.add_argument("--dataset", action="append", choices=DATASETS,
                          help="repeatable; default mnist and fashion-mnist")
    protocol.add_argument("--batch-norm", choices=[*SWITCH, "both"], nargs="?", const="on", default="both",
                          help="which settings to run (default both; --batch-norm alone: on)")
    protocol.add_argument("--algorithm", action="append", choices=TRAINERS.names(),
                          help=f"repeatable; default the paper's {', '.join(rules('paper'))} (our controls "
                               f"{', '.join(rules('control'))} and extensions {', '.join(rules('extension'))} run "
                               f"through the same grid search and finals; with --mechanism: the rules to probe, "
                               f"default the paper's and the controls)")
    protocol.add_argument("--grid-only", action="store_true", help="stop after the grid search")
    protocol.add_argument("--mechanism", action="store_true",
                          help="instead of grid and finals: the mechanism chapter's probed runs (every rule's fully "
                               "binary finals with per-layer diagnostics, into <results>/diagnostics/; runs "
                               "the grid searches they need, SHALLOW's included)")
    protocol.add_argument("--book-runs", action="store_true",
                          help="instead of grid and finals: the book's own runs, in this order — SHALLOW's grid "
                               "searches, the evaluation check (the BN finals' first 2 seeds with the original "
                               "code's evaluation pass), the probed runs of every rule (as --mechanism), SHALLOW's "
                               "final runs (its fully binary ones adopted from the probed runs, not computed twice)")
    _add_execution_options(protocol)
    protocol.set_defaults(results=None)

    book = commands.add_parser("book", help="execute every chapter of the book with papermill at a budget")
    book.add_argument("--budget", default="best", choices=["best", *BUDGETS],
                      help="best (default): each page at the paper budget where all its runs are recorded, "
                           "else at cpu, saying which")
    book.add_argument("--output", type=Path, help="where executed notebooks go (default: chapters/, in place)")
    book.add_argument("--results-base", help="results folder base (default results/); <base>/<budget> is used")
    book.add_argument("--only", action="append",
                      help="only pages whose file name starts with this, e.g. 04_results_mnist_bn or "
                           "04_results (repeatable)")

    export = commands.add_parser("export", help="write a completed fully binary run as a bit-packed network file")
    export.add_argument("results", type=Path, help="the run's results folder (it must hold the run's kept state)")
    export.add_argument("run_id", help="the run's id (python -m bnnlib status RESULTS lists runs)")
    export.add_argument("-o", "--output", type=Path, required=True, help="the file to write, e.g. model.bnn")
    export.add_argument("--data-root", help=f"where datasets are stored (default ${ROOT_VARIABLE} or ./data)")
    export.add_argument("--data-mirror", help=f"offline mirror in torchvision's layout (default ${MIRROR_VARIABLE})")
    export.add_argument("--no-verify", action="store_true",
                        help="skip classifying the test set with both models (the agreement is recorded in the file)")

    summary = commands.add_parser("summary", help="per-layer parameters, memory and MACs of a packed network")
    summary.add_argument("model", type=Path)

    export_c = commands.add_parser("export-c", help="write a packed network as one dependency-free C99 file "
                                   "defining int bnn_predict(const unsigned char pixels[784])")
    export_c.add_argument("model", type=Path, help="a packed network file (.bnn)")
    export_c.add_argument("-o", "--output", type=Path, required=True, help="the C file to write, e.g. model.c")

    predict = commands.add_parser("predict", help="classify a dataset's test set with a packed network "
                                  "(integer arithmetic for every binary layer)")
    predict.add_argument("model", type=Path)
    predict.add_argument("--dataset", required=True, choices=DATASETS)
    predict.add_argument("--data-root", help=f"where datasets are stored (default ${ROOT_VARIABLE} or ./data)")
    predict.add_argument("--data-mirror", help=f"offline mirror in torchvision's layout (default ${MIRROR_VARIABLE})")
    predict.add_argument("--no-download", action="store_true", help="never try the internet for data")

    merge = commands.add_parser("merge", help="bring the finished runs of another results folder (a GPU "
                                "machine's, another checkout's) into a results folder")
    merge.add_argument("source", type=Path, help="the results folder the runs were trained into")
    merge.add_argument("results", type=Path, help="the results folder they join, e.g. results/paper")
    merge.add_argument("--arithmetic", metavar="VERSION",
                       help="only the source's runs computed by this arithmetic version: a number, or 'current' "
                            "(today's, bnnlib.model.ARITHMETIC_VERSION) — to start a recomputation from the "
                            "records that need none")

    tidy = commands.add_parser("tidy-epochs", help="move the older copies of recomputed epochs out of a results "
                               "folder's epochs.csv (written before a recomputed row replaced the older one) into "
                               "its epochs_replaced.csv: the rows read stay, byte for byte")
    tidy.add_argument("results", type=Path)

    status = commands.add_parser("status", help="what a results folder holds: done, running, diverged, missing")
    status.add_argument("results", type=Path)
    status.add_argument("--sweep", help="also list the runs of this sweep (grid or a YAML file) that are missing")
    status.add_argument("--only", action="append", default=[], metavar="FIELD=VALUE[,VALUE]")
    status.add_argument("--budget", choices=list(BUDGETS),
                        help="progress against this budget's protocol (default: the folder's name, if a budget)")
    status.add_argument("--workers", type=int, default=2,
                        help="worker processes assumed for the hours left (default 2)")
    return parser


def _override(configs: List[RunConfig], **changes) -> List[RunConfig]:
    changes = {k: v for k, v in changes.items() if v is not None}
    return [dataclasses.replace(c, **changes) for c in configs] if changes else list(configs)


def _check_devices(devices) -> None:
    if any(str(d).startswith("cuda") for d in devices) and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but torch sees no GPU here; accepted: cpu")


def _execute(configs: List[RunConfig], args) -> int:
    configs = _override(configs, device=args.device)
    _check_devices(c.device for c in configs)
    check_cluster(args.cluster)
    check_count("--max-members", args.max_members, 1)
    store = ResultsStore(args.results)
    data = DataOptions(args.data_root, args.data_mirror, not args.no_download)
    work = execute(configs, store, data, max_members=args.max_members, cluster=args.cluster,
                   progress=not args.quiet, keep_checkpoints=args.keep_checkpoints, workers=args.workers,
                   diagnostics_every=args.diagnostics)
    print(f"{len(work.pending)} run(s) trained, {len(work.complete)} already complete, "
          f"{len(work.diverged)} diverged earlier; results in {args.results}")
    return 0


def _show_summary(store: ResultsStore, configs: List[RunConfig]) -> None:
    epochs = store.epochs()
    if epochs.empty:
        return
    wanted = {c.run_id for c in configs}
    summary = run_summary(epochs[epochs["run_id"].isin(wanted)], store.runs())
    columns = ["run_id", "algorithm", "weights", "activation", "batch_norm", "seed", "epochs_done",
               "best_train_accuracy", "best_test_accuracy", "last_test_accuracy", "diverged"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary[columns].to_string(index=False))


def run_config(args) -> RunConfig:
    """The run that ``run``'s parsed options describe (yes/no fields are spelled off/on)."""
    return RunConfig(**{f.name: f.metadata["choices"]()[getattr(args, f.name)] if str(f.type) == "bool"
                        else getattr(args, f.name) for f in _run_fields()})


def batch_norm_settings(word: str) -> list:
    """``protocol --batch-norm``: off, on or both → the BN settings to run, in the protocol's order."""
    return list(SWITCH.values()) if word == "both" else [SWITCH[word]]


def cmd_run(args) -> int:
    config = run_config(args)
    code = _execute([config], args)
    _show_summary(ResultsStore(args.results), [config])
    return code


def cmd_sweep(args) -> int:
    configs = restrict(sweep_configs(args.file), args.only)
    configs = _override(configs, epochs=args.epochs)
    if not configs:
        raise ValueError(f"the sweep {args.file} has no run left after --only {' '.join(args.only)}")
    if args.dry_run:
        work = plan(_override(configs, device=args.device), ResultsStore(args.results), args.max_members)
        print(f"{len(configs)} runs: {len(work.complete)} complete, {len(work.diverged)} diverged, "
              f"{len(work.pending)} to train in {len(work.groups)} member group(s)")
        return 0
    return _execute(configs, args)


def cmd_protocol(args) -> int:
    from .protocol import ALGORITHMS, DEFAULT_DATASETS, ensure_finals, ensure_grid, get_budget, results_dir

    budget = get_budget(args.budget)
    check_cluster(args.cluster)
    check_count("--workers", args.workers, 1)
    check_count("--max-members", args.max_members, 1)
    session_priority()  # `setsid nice -n 19 …`: low priority against other sessions too, workers included
    store = ResultsStore(args.results or results_dir(budget))
    data = DataOptions(args.data_root, args.data_mirror, not args.no_download)
    device = args.device or "cpu"
    _check_devices([device])
    options = dict(max_members=args.max_members, cluster=args.cluster, progress=not args.quiet,
                   keep_checkpoints=args.keep_checkpoints, workers=args.workers,
                   diagnostics_every=args.diagnostics)
    algorithms = tuple(dict.fromkeys(args.algorithm)) if args.algorithm else ALGORITHMS
    settings = batch_norm_settings(args.batch_norm)
    if args.mechanism and args.book_runs:
        raise ValueError("protocol: --mechanism and --book-runs exclude each other; accepted: one of them "
                         "(--book-runs includes the probed runs of --mechanism)")
    if args.mechanism:
        from .protocol import PROBE_EVERY, PROBED_FOLDER, PROBED_RULES, ensure_probed
        pairs = [(d, b) for d in args.dataset or list(DEFAULT_DATASETS) for b in settings]
        probed_rules = tuple(dict.fromkeys(args.algorithm)) if args.algorithm else PROBED_RULES
        print(f"[{budget.name}] mechanism runs of {', '.join(probed_rules)} for {pairs} → "
              f"{store.directory / PROBED_FOLDER}", flush=True)
        ensure_probed(pairs, budget, store, data, device, every=args.diagnostics or PROBE_EVERY,
                      algorithms=probed_rules, **{k: v for k, v in options.items() if k != "diagnostics_every"})
        return 0
    if args.book_runs:
        from .protocol import ensure_book_runs
        if args.diagnostics or args.grid_only or args.algorithm or args.batch_norm != "both":
            raise ValueError("protocol --book-runs: runs its stages in full; accepted with it: --budget, --dataset "
                             "and the execution options (not --diagnostics, --grid-only, --algorithm, --batch-norm)")
        print(f"[{budget.name}] the book's own runs (SHALLOW grid, evaluation check, probed runs, SHALLOW finals) "
              f"→ {store.directory}", flush=True)
        ensure_book_runs(budget, store, data, device, datasets=args.dataset or DEFAULT_DATASETS,
                         **{k: v for k, v in options.items() if k != "diagnostics_every"})
        return 0
    for dataset in args.dataset or ["mnist", "fashion-mnist"]:
        for batch_norm in settings:
            print(f"[{budget.name}] {dataset}, BN {switch_word(batch_norm)} → {store.directory}", flush=True)
            if args.grid_only:
                ensure_grid(dataset, batch_norm, budget, store, data, device, algorithms=algorithms, **options)
            else:
                ensure_finals(dataset, batch_norm, budget, store, data, device, algorithms=algorithms, **options)
    return 0


def cmd_book(args) -> int:
    from .book.pipeline import execute_book

    execute_book(args.budget, args.output, args.results_base, only=args.only)
    return 0


def cmd_merge(args) -> int:
    if not args.source.is_dir():
        raise ValueError(f"merge: source folder {args.source} does not exist")
    source = ResultsStore(args.source)
    only = None if args.arithmetic is None else _runs_of_version(source, args.arithmetic)
    report = ResultsStore(args.results).merge_from(source, only=only)
    merged = report["merged"]
    print(f"merged {len(merged)} finished run(s) from {args.source} into {args.results} "
          f"({report['packed']} packed model(s), {report['states']} kept state(s) copied)")
    for key, why in (("already_here", "already finished here: kept as they are"),
                     ("training_here", "being trained here now: merge again once they end"),
                     ("unfinished", "not finished in the source: they are trained here from scratch")):
        if report[key]:
            print(f"  left out: {len(report[key])} run(s) {why}")
    return 0


def _runs_of_version(source: ResultsStore, version: str) -> set:
    """The run ids of ``source`` computed by arithmetic ``version``: 'current' or a positive integer."""
    from .model import ARITHMETIC_VERSION
    number = ARITHMETIC_VERSION if version == "current" else int(version) if version.isdigit() else 0
    if number < 1:
        raise ValueError(f"merge --arithmetic: {version!r} is not a version; accepted: 'current' "
                         f"or a positive integer, e.g. {ARITHMETIC_VERSION}")
    runs = source.runs()
    if "arithmetic" not in runs:  # recorded before runs named their version: none is of the one asked for
        return set()
    return set(runs.loc[runs["arithmetic"] == number, "run_id"])


def cmd_tidy_epochs(args) -> int:
    if not args.results.is_dir():
        raise ValueError(f"results folder {args.results} does not exist")
    store = ResultsStore(args.results)
    moved = store.set_apart_replaced_epochs()
    left = len(store.epochs(every_copy=False))
    if moved:
        print(f"{store.epochs_path}: {moved} older {'copy' if moved == 1 else 'copies'} of "
              f"{'a recomputed epoch' if moved == 1 else 'recomputed epochs'} moved to {store.replaced_path}; "
              f"{left} row{'' if left == 1 else 's'} left, one per run and epoch")
    else:
        print(f"{store.epochs_path}: one row per run and epoch already ({left} rows); nothing moved")
    return 0


def cmd_status(args) -> int:
    if not args.results.is_dir():
        raise ValueError(f"results folder {args.results} does not exist")
    store = ResultsStore(args.results)
    runs = store.runs()
    if runs.empty:
        print(f"{args.results}: no runs recorded yet")
    else:
        counts = runs["status"].value_counts()
        print(f"{args.results}: {len(runs)} run(s) recorded — " +
              ", ".join(f"{counts.get(s, 0)} {s}" for s in ("complete", "running", "diverged")))
        _show_running(store, runs)
        by_setting = runs.groupby(["dataset", "batch_norm", "status"]).size().unstack(fill_value=0)
        print(by_setting.to_string())
        rows = store.epoch_counts()
        unbacked = runs[(runs["status"] == "complete") &
                        (runs["run_id"].map(lambda r: rows.get(r, 0)) < runs["epochs_done"])]
        if not unbacked.empty:
            print(f"  {len(unbacked)} run(s) marked complete in runs.csv lack epoch rows in epochs.csv: "
                  f"they are not complete and will be recomputed")
        _show_collapsed(runs)
        _show_processors(runs)
        for _, row in runs[runs["status"] == "diverged"].iterrows():
            print(f"  diverged: {row['run_id']} {row['algorithm']} {row['weights']} {row['activation']} "
                  f"init={row['init']} lr={row['lr']} seed={row['seed']} at epoch {row['epochs_done']}")
    budget_name = args.budget or (args.results.resolve().name if args.results.resolve().name in BUDGETS else None)
    if budget_name:
        _show_progress(store, BUDGETS[budget_name], args.workers)
    if args.sweep:
        configs = restrict(sweep_configs(args.sweep), args.only)
        known = {} if runs.empty else dict(zip(runs["run_id"], zip(runs["status"], runs["epochs_done"])))
        missing = [c for c in configs if c.run_id not in known]
        short = [c for c in configs if c.run_id in known and known[c.run_id][0] != "diverged"
                 and known[c.run_id][1] < c.epochs]
        print(f"sweep {args.sweep}: {len(configs)} runs, {len(missing)} missing, "
              f"{len(short)} with fewer epochs than asked")
        for c in missing[:20]:
            print(f"  missing: {c.run_id} {c.dataset} {c.algorithm} {c.weights} {c.activation} "
                  f"bn={c.batch_norm} init={c.init} lr={c.lr} seed={c.seed}")
        if len(missing) > 20:
            print(f"  … and {len(missing) - 20} more")
    return 0


def _show_collapsed(runs) -> None:
    """How many runs ended predicting one class for every test image, by rule (and for how many
    that is unknown: recorded before class counts were)."""
    if "collapsed" not in runs.columns:
        return
    state = runs.loc[runs["status"] != "diverged", "collapsed"].map(lambda v: "unknown" if v != v else str(v))
    hit, unknown = runs.loc[state[state == "True"].index], int((state == "unknown").sum())
    if hit.empty and not unknown:
        return
    by_rule = count_by_rule(hit)
    print(f"  collapsed: {len(hit)} run(s) predict one class for every test image at their latest epoch"
          + (f" ({by_rule})" if by_rule else "")
          + (f"; unknown for {unknown} recorded before class counts were" if unknown else ""))


def _show_processors(runs) -> None:
    """Which kinds of processor computed the runs (results repeat bit for bit on one kind): a long
    run that moved to another machine shows it here."""
    if "processor" not in runs.columns:
        return
    counts = runs["processor"].value_counts()
    kinds = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # most runs first, ties by name
    unknown = int(runs["processor"].isna().sum())
    kinds += [("not recorded", unknown)] if unknown else []
    print("  computed on: " + ", ".join(f"{kind} ({n} run{'s' if n > 1 else ''})" for kind, n in kinds))


def _show_running(store: ResultsStore, runs) -> None:
    """Which 'running' runs a process is training now and which were interrupted, and how long
    ago the folder was last written to (a stalled sweep shows)."""
    import pandas as pd

    running = set(runs.loc[runs["status"] == "running", "run_id"])
    now = store.claimed_now()
    if now is None:
        print("  ('running' means started and not finished: in progress, or interrupted and resumable)")
    elif running:
        active = len(running & now)
        print(f"  running: {active} being trained now, {len(running) - active} interrupted (started again, they "
              f"resume from their checkpoint on this machine, else from their first epoch)")
    last = pd.to_datetime(runs["updated"], utc=True, errors="coerce").max()
    if pd.notna(last):
        minutes = (pd.Timestamp.now(tz="UTC") - last).total_seconds() / 60
        print(f"  last record written {last:%Y-%m-%d %H:%M} UTC, {minutes:.0f} min ago")


def _show_progress(store: ResultsStore, budget, workers: int) -> None:
    from .protocol import progress

    check_count("--workers", workers, 1)
    paper = progress(store, budget)
    state = progress(store, budget, book_runs=True)
    for title, part in ((f"protocol at budget {budget.name} (mnist and fashion-mnist)", slice(0, len(paper.stages))),
                        ("then the book's own runs (protocol --book-runs; an extension rule's: protocol "
                         "--algorithm RULE)", slice(len(paper.stages), None))):
        stages = state.stages[part]
        finished, total = sum(s[1] for s in stages), sum(s[2] for s in stages)
        print(f"{title}: {finished}/{total} runs finished")
        for (stage, finished, total), until in zip(stages, state.hours_until_done(workers)[part]):
            print(f"  {stage:<38} {finished:>4}/{total}" + ("" if until is None else f"   done in about {until:.1f} h"))
    print(f"in all: {state.runs_complete}/{state.runs_total} runs finished, {state.run_epochs_done}/"
          f"{state.run_epochs_total} run-epochs ({100 * state.run_epochs_done / state.run_epochs_total:.1f} %)")
    hours = state.hours_left(workers)
    if hours is not None:
        where = f"on the machine of the latest record ({state.machine})" if state.processor else "over all runs"
        print(f"  about {hours:.1f} h left with {workers} worker(s), each run-epoch left at the median time of its "
              f"kind's recorded runs (rule, weights, activation, BN) {where}, a kind not run there at its median "
              f"on the earlier machines, each scaled by this one's speed against it on the kinds both ran "
              f"and weighted by the runs that speed rests on "
              f"({state.seconds_per_run_epoch:.2f} s per run-epoch per worker there)")


def cmd_export(args) -> int:
    from .data import load_dataset
    from .deploy import export, summary, PackedNetwork

    if not args.results.is_dir():
        raise ValueError(f"results folder {args.results} does not exist")
    store = ResultsStore(args.results)
    dataset = None
    if not args.no_verify:
        from .deploy import run_config
        config = run_config(store, args.run_id)
        dataset = load_dataset(config.dataset, args.data_root, args.data_mirror).subset(None, config.n_test)
    header = export(store, args.run_id, args.output, verify_on=dataset)
    size = args.output.stat().st_size
    table = summary(PackedNetwork.load(args.output))
    float_bytes = int(table["float32 bytes"].iloc[-1])
    print(f"{args.output}: {size} bytes ({float_bytes / size:.1f}× smaller than its float32 weights, "
          f"{float_bytes} bytes); run {args.run_id}, {header['config']['dataset']}, "
          f"BN {switch_word(header['batch_norm'])}, state of its last epoch")
    if "verified_on" in header:
        check = header["verified_on"]
        print(f"agreement with the float model on the {check['images']} {check['dataset']} test images: "
              f"{100 * check['agreement']:.2f} %")
    return 0


def cmd_summary(args) -> int:
    from .deploy import PackedNetwork, summary

    network = PackedNetwork.load(args.model)
    table = summary(network)
    config = network.header["config"]
    print(f"{args.model}: {config['algorithm']}, {config['weights']} weights, {config['activation']} activations, "
          f"BN {switch_word(network.header['batch_norm'])}, {config['dataset']}, run {network.header['run_id']}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    total = table.iloc[-1]
    print(f"deployed {int(total['deployed bytes'])} bytes against {int(total['float32 bytes'])} as float32: "
          f"{total['compression']:.1f}× smaller; the output layer stays float32 (the paper does not binarise it)")
    return 0


def cmd_export_c(args) -> int:
    from .cexport import export_c

    if not args.model.is_file():
        raise ValueError(f"model {args.model} does not exist; accepted: a packed network file (.bnn)")
    size = export_c(args.model, args.output)
    print(f"{args.output}: {size} bytes of C99 defining int bnn_predict(const unsigned char pixels[...]); "
          f"compile it beside your program with cc -O2 -std=c99 ... -lm")
    return 0


def cmd_predict(args) -> int:
    from .data import load_dataset
    from .deploy import PackedNetwork, pixels

    network = PackedNetwork.load(args.model)
    trained_on = network.header["config"]["dataset"]
    if args.dataset != trained_on:
        raise ValueError(f"--dataset {args.dataset} is not accepted for {args.model}; accepted: {trained_on}, "
                         f"the dataset it was trained on")
    dataset = load_dataset(args.dataset, args.data_root, args.data_mirror, not args.no_download)
    predictions = network.predict(pixels(dataset.x_test))
    accuracy = float((predictions == dataset.labels_test.numpy()).mean())
    print(f"accuracy={accuracy:.4f}")
    print(f"{len(predictions)} predictions on the {args.dataset} test set, integer arithmetic for every binary layer")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        kernels.requested()  # the environment's kernel choice, checked before any data or compute
        with stop_on_signal():  # kill -USR1 <pid>: the groups in progress end and are recorded, then it stops
            return {"run": cmd_run, "sweep": cmd_sweep, "protocol": cmd_protocol, "book": cmd_book,
                    "export": cmd_export, "export-c": cmd_export_c, "summary": cmd_summary, "predict": cmd_predict,
                    "status": cmd_status, "merge": cmd_merge, "tidy-epochs": cmd_tidy_epochs}[args.command](args)
    except (ValueError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StopRequested as stopped:
        print(stopped, file=sys.stderr)
        return STOPPED_EXIT_STATUS
