"""Executing runs: member groups, per-epoch records, checkpoints, resumption, divergence.

The unit of work is a *member group*: runs with the same structure (``RunConfig.group_key``),
device and progress (epochs already done) trained together as the members of one model.
:func:`train_group` yields, after every epoch, the records of every run and each member's
resumable state; :func:`execute` drives groups in-process or on a Dask cluster and is the
only writer of the store (workers just compute and return).
"""

from __future__ import annotations

import math
import multiprocessing
import re
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from queue import Empty
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from . import __version__
from .checks import check_count, reject
from .config import RunConfig
from .cores import CoreShare
from .data import load_dataset
from .diagnostics import DIAGNOSTICS_KEY, DIAGNOSTICS_TABLE, check_every
from .model import ARITHMETIC_VERSION, BinaryMLP
from .store import ResultsStore
from .trainers import make_trainer
from .training import MemberTraining

METRICS = ("train_accuracy", "train_precision", "train_f1", "test_accuracy", "test_precision", "test_f1")
#: how many distinct classes a member predicts on each split: 1 means it collapsed onto one
#: class (a huge learning rate can do that with a finite loss); recorded every epoch
CLASS_COUNTS = ("train_classes_predicted", "test_classes_predicted")
#: at most this many runs trained together as one model, unless told otherwise (CLI, sweeps, book)
DEFAULT_MAX_MEMBERS = 10

#: the signal that asks a sweep to stop once its member groups in progress are recorded
STOP_SIGNAL = signal.SIGUSR1
#: the exit status of a command stopped that way (sysexits' EX_TEMPFAIL: "try again later")
STOPPED_EXIT_STATUS = 75
_STOP = threading.Event()


class StopRequested(RuntimeError):
    """A sweep stopped on request: the member groups in progress finished and were recorded, no
    other started. Nothing is lost: the same command continues with the runs left."""


def request_stop(signum=None, frame=None) -> None:
    """Finish the member groups in progress, start no other (the handler of ``STOP_SIGNAL``).

    A machine that is going away keeps every epoch it computed this way: a kill would leave the
    runs in progress to resume from checkpoints, which go with the machine."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # the only one Python gives signals to


@contextmanager
def _children_deaf_to_stop():
    """Processes started inside inherit ``STOP_SIGNAL`` blocked: `kill -USR1 -PGID` reaches the
    whole process group, and would end worker processes — and multiprocessing's resource
    tracker, started here too — by SIGUSR1's default action. Only this process takes it."""
    if not _in_main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    from multiprocessing import resource_tracker

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {STOP_SIGNAL})
    try:
        resource_tracker.ensure_running()
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a request that came meanwhile arrives now


@contextmanager
def stop_on_signal():
    """While inside, ``STOP_SIGNAL`` (``kill -USR1 <pid>``) calls :func:`request_stop`; on the way
    out the previous handler is back and the request forgotten. Outside the main thread it
    does nothing."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(STOP_SIGNAL, request_stop)
    try:
        yield
    finally:
        signal.signal(STOP_SIGNAL, previous)
        _STOP.clear()


@lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit bnnlib runs from, with ``-dirty`` when its ``bnnlib/`` has uncommitted
    changes; ``unknown`` outside a git checkout (an installed wheel)."""
    package = Path(__file__).resolve().parent

    def git(*args):
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, timeout=30)

    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--", ".").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit.stdout.strip()[:12] + ("-dirty" if dirty else "")


def library_versions() -> dict:
    """What produced a run's numbers: the arithmetic version, the code, the libraries."""
    return {"arithmetic": ARITHMETIC_VERSION, "code": code_version(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "bnnlib": __version__,
            "threads": torch.get_num_threads(), "platform": platform.platform()}


@lru_cache(maxsize=None)
def processor(device: str) -> str:
    """What computed a run: the GPU's name, or the CPU's model with the instruction set torch's
    kernels use on it ("AMD EPYC (AVX512)"). Sums of floats may differ in their last bits from
    one kind to another (the BLAS picks its kernels by both), so a run repeats bit for bit on the
    same kind of processor; the record says which kind that was."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model} ({torch.backends.cpu.get_cpu_capability()})"


@lru_cache(maxsize=None)
def boot() -> Optional[str]:
    """Which boot of which machine computed a run: the first 8 hex digits of Linux's random
    ``boot_id`` (None elsewhere). Two machines of one processor kind, or one machine shared with
    other work, run at different speeds; the hours-left estimate measures each boot's apart."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "")[:8] or None
    except OSError:
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class DataOptions:
    """Where datasets come from; travels to Dask workers with each group."""

    root: Optional[str] = None
    mirror: Optional[str] = None
    download: bool = True


@dataclass
class EpochOutcome:
    epoch: int
    rows: List[dict]
    states: Dict[str, dict]
    diverged: List[str]
    seconds: float
    data_digest: str = ""
    diagnostics: List[dict] = field(default_factory=list)  # rows of diagnostics.csv (opt-in)


def build_training(configs: Sequence[RunConfig], input_size: int, pixel_inputs: bool = True) -> MemberTraining:
    first = configs[0]
    if any(c.group_key() != first.group_key() or c.device != first.device for c in configs):
        raise ValueError("a member group needs runs of the same structure and device")
    if len({c.run_id for c in configs}) != len(configs):
        raise ValueError("a member group cannot hold the same run twice")
    model = BinaryMLP([c.seed for c in configs], input_size=input_size, activation=first.activation,
                      binary_weights=first.binary_weights, batch_norm=first.batch_norm,
                      init=[c.init for c in configs], device=first.device, pixel_inputs=pixel_inputs)
    trainer = make_trainer(first.algorithm, model, lr=[c.lr for c in configs])
    return MemberTraining(model, trainer, batch_size=first.batch_size, evaluation=first.evaluation)


def train_group(configs: Sequence[RunConfig], epochs: int, data: DataOptions,
                member_states: Optional[Sequence[Optional[dict]]] = None,
                batch_progress: Optional[Callable[[int], object]] = None,
                diagnostics_every: int = 0) -> Iterator[EpochOutcome]:
    """Train a member group up to ``epochs``, yielding after every epoch.

    ``member_states`` (one per config, None for a fresh start) must all be at the same epoch.
    ``diagnostics_every`` > 0 probes every N-th batch (:mod:`bnnlib.diagnostics`); the
    numbers of the runs are the same either way.
    """
    first = configs[0]
    dataset = load_dataset(first.dataset, data.root, data.mirror, data.download).subset(first.n_train, first.n_test)
    training = build_training(configs, dataset.input_size, dataset.pixel_inputs)  # the data says 784 or 3072
    training.load_member_states(member_states or [None] * len(configs))
    training.enable_diagnostics(diagnostics_every)
    # threads follow the free cores where the thread count changes no number (bnnlib.cores)
    training.cores = CoreShare.for_run(first.device, *training.model.gemm_shapes(first.batch_size))
    diverged = set()
    n_batches = dataset.x_train.shape[0] // first.batch_size
    try:
        while training.epochs_done < epochs:
            start = time.perf_counter()
            bar = batch_progress(n_batches) if batch_progress else None
            loss = training.train_epoch(dataset, progress=bar)
            if bar is not None:
                bar.close()
            metrics = training.evaluate(dataset)
            if first.device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            epoch = training.epochs_done
            state = training.state_dict()
            probed = training.probe.end_epoch() if training.probe is not None else None
            rows, states, newly_diverged, diagnostics = [], {}, [], []
            for s, config in enumerate(configs):
                if config.run_id in diverged:
                    continue
                row = {"run_id": config.run_id, **config.identity(), "epoch": epoch, "loss": float(loss[s])}
                row.update({name: float(metrics[name][s]) for name in METRICS})
                row.update({name: int(metrics[name][s]) for name in CLASS_COUNTS})
                row.update({name: float(values[s]) for name, values in metrics.items()  # paper-code evaluation's
                            if name.startswith("standard_test_") and not name.endswith("classes_predicted")})
                row.update(group_epoch_seconds=seconds, members=len(configs), device=first.device,
                           processor=processor(first.device), boot=boot())  # where it ran (a Dask worker's own)
                rows.append(row)
                if probed is not None:
                    diagnostics += [{"run_id": config.run_id, "epoch": epoch, **layer} for layer in probed[s]]
                if not math.isfinite(row["loss"]):
                    diverged.add(config.run_id)
                    newly_diverged.append(config.run_id)
                else:
                    states[config.run_id] = training.member_state(s, state)
            yield EpochOutcome(epoch, rows, states, newly_diverged, seconds, dataset.digest, diagnostics)
            if len(diverged) == len(configs):
                return
    finally:  # the threads a busy machine took away come back when the group ends
        if training.cores is not None:
            training.cores.restore()


def train_group_to_end(configs, epochs, data, member_states=None, diagnostics_every=0) -> List[EpochOutcome]:
    """The whole of :func:`train_group` at once (a Dask task: returns, never writes).

    Only the last epoch's states travel back: the client needs no more to checkpoint.
    """
    outcomes = list(train_group(configs, epochs, data, member_states, diagnostics_every=diagnostics_every))
    for outcome in outcomes[:-1]:
        outcome.states = {}
    return outcomes


# ---------------------------------------------------------------------- planning
@dataclass
class Plan:
    """What a sweep still has to do against a store."""

    complete: List[RunConfig] = field(default_factory=list)
    diverged: List[RunConfig] = field(default_factory=list)
    groups: List[tuple] = field(default_factory=list)  # (configs, member_states)

    @property
    def pending(self) -> List[RunConfig]:
        return [c for configs, _ in self.groups for c in configs]


def plan(configs: Sequence[RunConfig], store: ResultsStore, max_members: int = DEFAULT_MAX_MEMBERS) -> Plan:
    """Sort runs into done, diverged and member groups to train (resuming from checkpoints)."""
    check_count("max_members", max_members, 1)
    store.clean_stale_temporaries()
    runs = store.runs()
    records = {r["run_id"]: r for r in runs.to_dict("records")} if not runs.empty else {}
    rows = store.epoch_counts()
    result = Plan()
    buckets = defaultdict(list)
    seen = set()
    for config in configs:
        if config.run_id in seen:
            continue
        seen.add(config.run_id)
        record = records.get(config.run_id)
        if record is not None and record["status"] == "diverged":
            result.diverged.append(config)
            continue
        recorded = rows.get(config.run_id, 0)  # epochs present in epochs.csv, not just claimed
        if record is not None and min(int(record["epochs_done"]), recorded) >= config.epochs:
            result.complete.append(config)
            continue
        state = store.load_checkpoint(config.run_id)
        done = state["epochs_done"] if state is not None else 0
        if state is not None and done > recorded:  # its epochs' rows are missing: recompute them
            state, done = None, 0
        if state is not None and done >= config.epochs:
            result.complete.append(config)
            continue
        buckets[(config.group_key(), config.device, config.epochs, done)].append((config, state))
    # runs resuming from a checkpoint first, furthest along first: they bank the most work
    # soonest, and a checkpoint is what a replaced machine loses (records survive in git); the
    # rest in the order given (the caller's priority: the evaluation check alternates datasets)
    for key in sorted(buckets, key=lambda key: -key[3]):
        members = buckets[key]
        for i in range(0, len(members), max_members):
            chunk = members[i:i + max_members]
            result.groups.append(([c for c, _ in chunk], [s for _, s in chunk]))
    return result


# ---------------------------------------------------------------------- execution
def _run_metadata(config: RunConfig, epoch: int, status: str, seconds: float, members: int,
                  started: str, data_digest: str, collapsed: bool, processor_name: str,
                  boot_id: Optional[str]) -> dict:
    return {"run_id": config.run_id, **config.identity(), "epochs_requested": config.epochs,
            "epochs_done": epoch, "status": status, "collapsed": collapsed, "device": config.device,
            "members_in_group": members, "seconds": seconds, "started": started, "updated": _now(),
            "data_digest": data_digest, **library_versions(), "processor": processor_name,
            "boot": boot_id}


class _Recorder:
    """Writes one group's outcomes into the store (the client side of every executor).

    ``keep_checkpoints``: a run that completes keeps its trained state (``states/``), to be
    exported or extended later; otherwise its checkpoint is deleted.
    """

    def __init__(self, store: ResultsStore, configs: Sequence[RunConfig], keep_checkpoints: bool):
        self.store, self.configs, self.keep = store, list(configs), keep_checkpoints
        self.started = _now()
        self.seconds, self.recorded = {}, {}
        for config in configs:
            previous = store.run_record(config.run_id)
            self.recorded[config.run_id] = int(previous.get("epochs_done", 0)) if previous else 0
            self.seconds[config.run_id] = float(previous["seconds"]) if previous and \
                int(previous.get("epochs_done", 0)) > 0 else 0.0

    def record(self, outcome: EpochOutcome) -> None:
        by_id = {c.run_id: c for c in self.configs}
        if outcome.diagnostics:  # before the epochs: a resumed epoch rewrites them (newest wins)
            self.store.update_table(DIAGNOSTICS_TABLE, outcome.diagnostics, DIAGNOSTICS_KEY)
        self.store.add_epochs(outcome.rows)  # records first: a crash before the checkpoint
        metadata = []                        # only makes the resumed run recompute this epoch
        for row in outcome.rows:
            config = by_id[row["run_id"]]
            self.seconds[config.run_id] += outcome.seconds / len(self.configs)
            if row["run_id"] in outcome.diverged:
                status = "diverged"
            elif outcome.epoch >= config.epochs:
                status = "complete"
            else:
                status = "running"
            # collapsed: one class predicted for every test image at its latest epoch
            collapsed = row.get("test_classes_predicted") == 1
            # epochs recorded never shrink: a run restarted from scratch (its checkpoint was lost
            # or corrupt) recomputes rows it already has, identically
            recorded = max(outcome.epoch, self.recorded.get(config.run_id, 0))
            metadata.append(_run_metadata(config, recorded, status, self.seconds[config.run_id],
                                          len(self.configs), self.started, outcome.data_digest, collapsed,
                                          row["processor"], row.get("boot")))  # its latest epoch's
            state = outcome.states.get(config.run_id)
            if status == "running" and state is not None:  # a Dask group returns only its last states
                self.store.save_checkpoint(config.run_id, state)
            elif status == "complete" and self.keep and state is not None:
                self.store.save_final_state(config.run_id, state)
            else:  # complete (and not kept) or diverged: nothing left to resume
                self.store.delete_checkpoint(config.run_id)
        self.store.update_runs(metadata)


def _progress(total_epochs: int, enabled: bool):
    from tqdm import tqdm  # plain text bars: they render in terminals and in stored notebook outputs
    return tqdm(total=total_epochs, desc="run-epochs", unit="epoch", disable=not enabled, file=sys.stderr)


def _train_and_record(configs: Sequence[RunConfig], states, store: ResultsStore, data: DataOptions,
                      keep_checkpoints: bool, on_epoch: Callable[[int], object], batch_bar=None,
                      diagnostics_every: int = 0) -> None:
    recorder = _Recorder(store, configs, keep_checkpoints)
    for outcome in train_group(configs, configs[0].epochs, data, states, batch_bar, diagnostics_every):
        recorder.record(outcome)
        on_epoch(len(outcome.rows))


def _claim_and_train(configs: Sequence[RunConfig], store: ResultsStore, data: DataOptions, max_members: int,
                     keep_checkpoints: bool, on_epoch: Callable[[int], object], wait_for_claims: bool,
                     batch_bar=None, diagnostics_every: int = 0) -> List[RunConfig]:
    """Train the runs of ``configs`` that this process can claim; return those claimed elsewhere.

    Two processes sweeping one folder split the work instead of repeating it (a lock per run,
    :meth:`ResultsStore.claim`); what another process is training is left to it, or waited
    for with ``wait_for_claims``. The runs are planned again once claimed: another process
    may have advanced them since this one planned.
    """
    with store.claim([c.run_id for c in configs], wait=wait_for_claims) as held:
        mine = [c for c in configs if c.run_id in held]
        for group, states in plan(mine, store, max_members).groups:
            _train_and_record(group, states, store, data, keep_checkpoints, on_epoch, batch_bar, diagnostics_every)
    return [c for c in configs if c.run_id not in held]


CLUSTER_ADDRESS = re.compile(r"(tcp|tls|ucx|inproc)://[^\s:/]+(:\d+)?")


def check_cluster(cluster: Optional[str]) -> None:
    """``None``, ``local:N`` with N ≥ 1, or a Dask scheduler address; else one clear error."""
    if cluster is None:
        return
    text = str(cluster)
    if text.startswith("local:"):
        count = text.split(":", 1)[1]
        if count.isdigit() and int(count) >= 1:
            return
    elif CLUSTER_ADDRESS.fullmatch(text):
        return
    raise reject("cluster", cluster, "local:N (N ≥ 1 worker processes) or a Dask scheduler address such as "
                 "tcp://host:8786")


def execute(configs: Sequence[RunConfig], store: ResultsStore, data: Optional[DataOptions] = None,
            max_members: int = DEFAULT_MAX_MEMBERS, cluster: Optional[str] = None, progress: bool = True,
            keep_checkpoints: bool = False, batch_progress: bool = True, workers: int = 1,
            diagnostics_every: int = 0, after_group: Optional[Callable[[List[RunConfig]], object]] = None) -> Plan:
    """Run every config not yet complete in ``store``; returns the plan it executed.

    ``workers``: 1 trains the member groups one after the other in this process (torch's own
    threads); N > 1 starts N single-threaded worker processes that take groups in plan order —
    the throughput of a sweep on a shared machine (benchmarks/train_speed.py measures both).
    ``cluster``: ``"local:N"`` starts a Dask LocalCluster of N workers; anything else is a Dask
    scheduler address (``tcp://host:8786``).
    ``progress`` shows one bar over run-epochs; ``batch_progress`` adds one per epoch.
    ``keep_checkpoints``: completed runs keep their trained state (``<results>/states/``).
    ``diagnostics_every`` > 0: per-layer diagnostics every N-th batch, into
    ``<results>/diagnostics.csv`` (:mod:`bnnlib.diagnostics`); runs already complete are not
    recomputed for them — probe into a folder of their own.
    ``after_group``: called in this process with the runs of each member group as soon as that
    group has been trained and recorded (e.g. to export what a group leaves behind while the
    sweep goes on: a machine replaced mid-sweep loses its kept states, not what was exported).
    When this returns, every run is complete or diverged — also those another process was
    training at the same time (their claims are waited for). After :func:`request_stop`
    (``kill -USR1``, under :func:`stop_on_signal`) it raises :class:`StopRequested` instead, once
    the groups being trained are recorded, if runs are left.
    """
    data = data or DataOptions()
    check_cluster(cluster)
    check_every(diagnostics_every)
    check_count("workers", workers, 1)
    if workers > 1 and cluster is not None:
        raise ValueError("workers and cluster exclude each other; accepted: one of them")
    work = plan(configs, store, max_members)
    if not work.groups:
        return work
    # every dataset needed must load before any compute starts (a missing one fails now);
    # a remote cluster's workers may see data that this client does not, so it is not checked
    if cluster is None or cluster.startswith("local:"):
        for dataset in sorted({group[0].dataset for group, _ in work.groups}):
            load_dataset(dataset, data.root, data.mirror, data.download)
    _raise_if_stopped(configs, store)
    total = sum(c.epochs - (s["epochs_done"] if s else 0) for group, states in work.groups
                for c, s in zip(group, states))
    bar = _progress(total, progress)
    run_ids = {c.run_id for c in configs}
    _show_tally(bar, store, run_ids)
    trained = _trained_callback(after_group, lambda: _show_tally(bar, store, run_ids))
    if cluster is not None:
        _execute_dask(work, store, data, cluster, bar, keep_checkpoints, diagnostics_every, trained)
    elif workers > 1:
        _execute_workers(work, store, data, workers, max_members, keep_checkpoints, bar, diagnostics_every, trained)
    else:
        from tqdm import tqdm

        def batch_bar(n):
            return tqdm(total=n, desc="batches", unit="batch", leave=False,
                        disable=not (progress and batch_progress), file=sys.stderr)

        deferred = []
        for group, _ in work.groups:
            if stop_requested():
                break
            left = _claim_and_train(group, store, data, max_members, keep_checkpoints, bar.update,
                                    False, batch_bar, diagnostics_every)
            trained(group, left)
            deferred += left
        if deferred and not stop_requested():
            trained(deferred, _claim_and_train(deferred, store, data, max_members, keep_checkpoints, bar.update,
                                               True, batch_bar, diagnostics_every))
    bar.close()
    _raise_if_stopped(configs, store)
    return work


def _raise_if_stopped(configs: Sequence[RunConfig], store: ResultsStore) -> None:
    """After a stop request, :class:`StopRequested` naming how many of ``configs`` are left (if any)."""
    if not stop_requested():
        return
    finished = store.finished_runs()
    over = {} if finished.empty else dict(zip(finished["run_id"], zip(finished["status"], finished["epochs_done"])))
    wanted = {c.run_id: c.epochs for c in configs}
    left = [run_id for run_id, epochs in wanted.items()
            if run_id not in over or (over[run_id][0] == "complete" and int(over[run_id][1]) < epochs)]
    if left:
        raise StopRequested(f"stopped on request with {len(left)} of {len(wanted)} run(s) left, every epoch "
                            f"computed recorded; the same command continues them")


def _show_tally(bar, store: ResultsStore, run_ids: set) -> None:
    """The sweep's runs complete, diverged and left as the store has them now (runs another
    process finished included), on the progress bar: a long run's log shows them advance."""
    runs = store.runs()
    status = runs.loc[runs["run_id"].isin(run_ids), "status"] if not runs.empty else pd.Series(dtype=object)
    done, diverged = int((status == "complete").sum()), int((status == "diverged").sum())
    bar.set_postfix(done=done, diverged=diverged, left=len(run_ids) - done - diverged)


def _trained_callback(after_group: Optional[Callable[[List[RunConfig]], object]],
                      on_group: Callable[[], object] = lambda: None):
    """(group, left to another process) → ``on_group()``, then ``after_group`` with the runs
    this process trained."""
    def trained(group: Sequence[RunConfig], left: Sequence[RunConfig]) -> None:
        on_group()
        elsewhere = {c.run_id for c in left}
        mine = [c for c in group if c.run_id not in elsewhere]
        if after_group is not None and mine:
            after_group(mine)
    return trained


_WORKER_QUEUE = None
_WORKER_STOP = None


def _init_worker(queue, stop) -> None:
    global _WORKER_QUEUE, _WORKER_STOP
    _WORKER_QUEUE, _WORKER_STOP = queue, stop
    # one thread per worker process: N workers on N cores never wait for each other's
    # threads, and a core taken by something else slows one worker instead of all of them
    torch.set_num_threads(1)


def _worker_task(configs, directory: str, data: DataOptions, max_members: int, keep_checkpoints: bool,
                 wait_for_claims: bool, diagnostics_every: int = 0) -> List[RunConfig]:
    if _WORKER_STOP.is_set():  # queued before the stop request: not started, so left as they are
        return list(configs)
    store = ResultsStore(directory)
    return _claim_and_train(configs, store, data, max_members, keep_checkpoints, _WORKER_QUEUE.put,
                            wait_for_claims, None, diagnostics_every)


def _execute_workers(work: Plan, store: ResultsStore, data: DataOptions, workers: int, max_members: int,
                     keep_checkpoints: bool, bar, diagnostics_every: int = 0, trained=None) -> None:
    context = multiprocessing.get_context("spawn")  # fork would copy this process's torch threads
    with _children_deaf_to_stop():
        queue, stop = context.Queue(), context.Event()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(queue, stop)) as pool:
        def run_all(groups, wait_for_claims):
            with _children_deaf_to_stop():  # submit() starts the worker processes
                group_of = {pool.submit(_worker_task, group, str(store.directory), data, max_members, keep_checkpoints,
                                        wait_for_claims, diagnostics_every): group for group in groups}
            pending, left = set(group_of), []
            while pending:
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                _drain(queue, bar)
                if stop_requested() and not stop.is_set():
                    stop.set()  # groups already handed to a worker's queue return untouched
                    for future in pending:
                        future.cancel()  # the others never start
                for future in done:
                    if future.cancelled():
                        continue
                    elsewhere = future.result()  # a worker's exception surfaces here
                    if trained is not None:
                        trained(group_of[future], elsewhere)
                    left += elsewhere
            _drain(queue, bar)
            return left

        deferred = run_all([group for group, _ in work.groups], False)
        if deferred and not stop_requested():
            run_all([deferred[i:i + max_members] for i in range(0, len(deferred), max_members)], True)


def _drain(queue, bar) -> None:
    while True:
        try:
            bar.update(queue.get_nowait())
        except Empty:
            return


def _execute_dask(work: Plan, store: ResultsStore, data: DataOptions, cluster: str, bar,
                  keep_checkpoints: bool, diagnostics_every: int = 0, trained=None) -> None:
    from dask.distributed import Client, LocalCluster, wait as wait_dask

    local = None
    if cluster.startswith("local:"):
        n = int(cluster.split(":", 1)[1])
        # one thread per worker process: each worker's torch uses its own cores
        with _children_deaf_to_stop():
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(local)
    else:
        client = Client(cluster)
    try:
        futures = {}
        for group, states in work.groups:
            future = client.submit(train_group_to_end, group, group[0].epochs, data, states, diagnostics_every,
                                   pure=False)
            futures[future] = group
        pending, stopping = set(futures), False
        while pending:
            try:
                done, pending = wait_dask(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            if stop_requested() and not stopping:
                # the groups not yet handed to a worker never start; those handed over finish
                # (a cluster's groups record when they end: one cancelled mid-way would be lost)
                busy = {key for keys in client.processing().values() for key in keys}
                idle = {future for future in pending if future.key not in busy}
                client.cancel(list(idle))
                pending, stopping = pending - idle, True
            for future in done:  # never a cancelled one: those left `pending` when cancelled
                group = futures[future]
                recorder = _Recorder(store, group, keep_checkpoints)
                for outcome in future.result():
                    recorder.record(outcome)
                    bar.update(len(outcome.rows))
                if trained is not None:
                    trained(group, [])
    finally:
        client.close()
        if local is not None:
            local.close()
