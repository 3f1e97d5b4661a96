"""The committed records are reproduced exactly by the current code (refactors change no number).

A sample of committed runs is recomputed for its first epochs and every metric must be equal,
to the last bit. Only records the current arithmetic computes the same way are sampled: the
arithmetic version (bnnlib.model.ARITHMETIC_VERSION, recorded per run since version 2) changed
BN statistics in version 2 and binary-weight first layers in version 3. Only records computed on
this machine's kind of processor are sampled (runs record it): the long run may move machines.
Each is recomputed at the thread count its run recorded: on some processors the BLAS's float32
sums depend on it (bnnlib.cores) — and then on the GEMMs' shapes too, which grow with the runs
trained together: a run recorded at several threads in a group of several members is recomputed
with its whole group (measured on an Intel Xeon, 2026-12-07: a 10-member group's run at two
threads repeated its record only in its group; alone, only at one thread).
"""

from pathlib import Path

import pandas as pd
import pytest
import torch

from bnnlib.config import IDENTITY_FIELDS, RunConfig
from bnnlib.model import ARITHMETIC_VERSION
from bnnlib.runner import CLASS_COUNTS, METRICS, DataOptions, processor, train_group
from bnnlib.store import EPOCH_KEY, TEXT_COLUMNS, ResultsStore

RESULTS = Path(__file__).resolve().parents[1] / "results"


def same_arithmetic(record) -> bool:
    """Would the current arithmetic compute this record the same way?"""
    version = record.get("arithmetic")
    version = 1 if pd.isna(version) else int(version)
    if version == ARITHMETIC_VERSION:
        return True
    uses_bn, binary = bool(record["batch_norm"]), record["weights"] == "binary"
    return (not binary) and (version >= 2 or not uses_bn)  # v3 changed binary weights only, v2 BN only


#: the kinds of processor on which this test recomputed the runs recorded before runs named their
#: processor, every one exactly: those runs were computed on AMD EPYC machines, whose MKL takes
#: the same float32 kernels with AVX2 and with AVX512. An Intel Xeon (AVX512) does not reproduce
#: their continuous-weight runs (other kernels, other sums): there they are not sampled.
UNNAMED_RUNS_REPRODUCED_ON = ("AMD EPYC (AVX512)", "AMD EPYC (AVX2)")


def same_processor(runs: pd.DataFrame) -> pd.Series:
    """Runs computed on this machine's kind of processor: bit-identity is promised on the same kind
    only (the BLAS picks its kernels by processor). Runs recorded before the processor was are
    kept where this kind of processor has reproduced them (``UNNAMED_RUNS_REPRODUCED_ON``)."""
    here = processor("cpu")
    unnamed = pd.Series(here in UNNAMED_RUNS_REPRODUCED_ON, index=runs.index)
    if "processor" not in runs:
        return unnamed
    return (runs["processor"].isna() & unnamed) | (runs["processor"] == here)


def _sample(budget, n_per_kind=1):
    runs = pd.read_csv(RESULTS / budget / "runs.csv", dtype=TEXT_COLUMNS)
    runs = runs[runs.apply(same_arithmetic, axis=1) & (runs["status"] == "complete") & (runs["dataset"] == "mnist")
                & same_processor(runs)]
    runs = runs.assign(needs_group=runs.apply(_needs_group, axis=1))
    picks = []
    for _, group in runs.groupby(["batch_norm", "weights", "algorithm"], sort=True):
        picks.append(group.sort_values(["needs_group", "run_id"]).head(n_per_kind))  # the cheaper first
    if not picks:
        return runs
    return pd.concat(picks).sort_values("run_id").head(4)  # four kinds, a few seconds each


def _needs_group(record) -> bool:
    """Whether a record can only be repeated with the runs it was trained with: several threads
    (whose sums depend on the shapes on some processors) and several members."""
    threads, members = record.get("threads"), record.get("members_in_group")
    return bool(pd.notna(threads) and int(threads) > 1 and pd.notna(members) and int(members) > 1)


def _config(record) -> RunConfig:
    values = {name: record[name] for name in IDENTITY_FIELDS}
    values.update(n_train=None, n_test=None, batch_norm=bool(values["batch_norm"]), epochs=2)
    config = RunConfig(**values)
    assert config.run_id == record["run_id"]
    return config


def _group_of(record, runs: pd.DataFrame) -> list:
    """The records trained together with ``record``: started at the same moment, of the same
    configuration but for the seed, as many as it recorded."""
    same = runs
    for key in [name for name in IDENTITY_FIELDS if name != "seed"] + ["started", "members_in_group"]:
        same = same[same[key].isna() if pd.isna(record[key]) else same[key] == record[key]]  # n_train: NaN
    assert len(same) == int(record["members_in_group"]), (record["run_id"], len(same))
    return same.sort_values("seed").to_dict("records")


@pytest.fixture
def started_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("budget", ["cpu", "paper"])  # paper: the long run's records agree with main's code
def test_a_sample_of_committed_records_is_recomputed_exactly(mnist_root, budget, started_threads):
    sample = _sample(budget)
    if sample.empty:
        pytest.skip(f"no committed {budget} record was computed on this kind of processor ({processor('cpu')})")
    assert set(sample["dataset"]) == {"mnist"}
    epochs = pd.read_csv(RESULTS / budget / "epochs.csv", dtype=TEXT_COLUMNS)
    runs = pd.read_csv(RESULTS / budget / "runs.csv", dtype=TEXT_COLUMNS)
    for record in sample.to_dict("records"):
        config = _config(record)
        group = [_config(member) for member in _group_of(record, runs)] if record["needs_group"] else [config]
        threads = record.get("threads")
        torch.set_num_threads(int(threads) if pd.notna(threads) else started_threads)
        outcomes = list(train_group(group, 2, DataOptions(root=str(mnist_root))))
        for outcome in outcomes:
            [row] = [r for r in outcome.rows if r["run_id"] == config.run_id]
            stored = epochs[(epochs["run_id"] == config.run_id) & (epochs["epoch"] == row["epoch"])].iloc[-1]
            for name in ("loss", *METRICS):
                assert row[name] == stored[name], (config, row["epoch"], name, row[name], stored[name])


@pytest.mark.slow
@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_a_record_trained_at_several_threads_in_a_group_is_recomputed_with_its_group(mnist_root, budget,
                                                                                     started_threads):
    """The records the sample above passes over where it can: one epoch of one such run, recomputed
    with the members it was trained with, at its threads."""
    runs = pd.read_csv(RESULTS / budget / "runs.csv", dtype=TEXT_COLUMNS)
    pool = runs[runs.apply(same_arithmetic, axis=1) & (runs["status"] == "complete") & (runs["dataset"] == "mnist")
                & same_processor(runs)]
    pool = pool[pool.apply(_needs_group, axis=1)].sort_values("run_id")
    if pool.empty:
        pytest.skip(f"no committed {budget} record trained at several threads in a group on {processor('cpu')}")
    record = pool.iloc[0].to_dict()
    group = [_config(member) for member in _group_of(record, runs)]
    torch.set_num_threads(int(record["threads"]))
    epochs = pd.read_csv(RESULTS / budget / "epochs.csv", dtype=TEXT_COLUMNS)
    [outcome] = list(train_group(group, 1, DataOptions(root=str(mnist_root))))
    [row] = [r for r in outcome.rows if r["run_id"] == record["run_id"]]
    stored = epochs[(epochs["run_id"] == record["run_id"]) & (epochs["epoch"] == 1)].iloc[-1]
    for name in ("loss", *METRICS):
        assert row[name] == stored[name], (record["run_id"], name, row[name], stored[name])


#: committed folders whose records are being recomputed by today's arithmetic (issue #45: results/cpu's
#: BP, DFA and DRTP runs predate version 3); strict, so the entry goes once the new records land
BEING_RECOMPUTED = set()  # results/cpu's recomputation replaced it on 2026-12-07


@pytest.mark.parametrize("folder", sorted(str(path.parent.relative_to(RESULTS))
                                          for path in RESULTS.rglob("runs.csv")))
def test_every_committed_folder_comes_from_todays_arithmetic(folder, request):
    """Every committed record must come from the arithmetic main computes with now: a change of
    numerics after a budget's runs started would mix two arithmetics in one budget's tables, and a
    reader re-running it would not get the committed pages."""
    if folder in BEING_RECOMPUTED:
        request.applymarker(pytest.mark.xfail(strict=True, reason="recomputation under way"))
    runs = pd.read_csv(RESULTS / folder / "runs.csv", dtype=TEXT_COLUMNS)
    assert not runs.empty and "arithmetic" in runs and set(runs["arithmetic"]) == {ARITHMETIC_VERSION}
    assert runs["data_digest"].groupby(runs["dataset"]).nunique().eq(1).all()  # one copy of each dataset


#: folders written before a recomputed row replaced the older one in epochs.csv, not yet tidied
#: (``python -m bnnlib tidy-epochs``): results/paper is, once the long run appending to it ends
NOT_YET_TIDIED = set()


@pytest.mark.parametrize("folder", sorted(str(path.parent.relative_to(RESULTS))
                                          for path in RESULTS.rglob("epochs.csv")))
def test_committed_epochs_hold_one_row_per_run_and_epoch(folder, request):
    """The README loads epochs.csv with one pandas call: it must hold one row per run and epoch
    (older copies of recomputed epochs live in epochs_replaced.csv)."""
    if folder in NOT_YET_TIDIED:
        request.applymarker(pytest.mark.xfail(strict=True, reason="tidied once the long run ends"))
    epochs = pd.read_csv(RESULTS / folder / "epochs.csv", dtype=TEXT_COLUMNS)
    assert not epochs.duplicated(EPOCH_KEY).any()


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_an_epoch_recorded_twice_was_recomputed_identically(budget):
    """A run resumed from a checkpoint older than its last recorded epoch recomputes that epoch;
    the older copy is kept (epochs_replaced.csv; in epochs.csv before the recomputed row replaced
    it). The copies must agree in every metric: a difference would mean a resume is not
    deterministic, and the kept copy would hide it. Epoch rows name the processor that computed
    them; copies from two kinds are not compared."""
    epochs = ResultsStore(RESULTS / budget).epochs(every_copy=True)
    # copies computed on different kinds of processor (a run restarted from scratch on another
    # machine, its checkpoint lost) may differ in their last bits: only the same kind's must agree
    kind = epochs["processor"].fillna("not recorded") if "processor" in epochs else "not recorded"
    epochs = epochs.assign(kind=kind)
    key = [*EPOCH_KEY, "kind"]
    copies = epochs[epochs.duplicated(key, keep=False)]
    values = ["loss", *METRICS, *CLASS_COUNTS]
    differing = copies.groupby(key)[values].nunique(dropna=False).gt(1).any(axis=1)
    assert not differing.any(), list(differing[differing].index)
