"""The protocol: the grid users sweep (``sweep grid``) is the grid the protocol runs; pages read
exactly their budget; progress is counted stage by stage."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.config import RunConfig, switch_word
from bnnlib.store import ResultsStore
from bnnlib.sweep import run_summary

from bnnlib.protocol import BUDGETS, DEFAULT_DATASETS, GRID_DATASET, grid_configs
from bnnlib.sweep import load_sweep, restrict

ROOT = Path(__file__).resolve().parents[1]


def test_the_named_grid_sweep_is_the_protocols_grid():
    """``sweep grid`` and the protocol name the same runs: MNIST and CIFAR-10 (Fashion-MNIST
    reuses MNIST's selection), BN off and on, 72 runs each, at the paper's 100 epochs."""
    from bnnlib.cli import sweep_configs

    swept = sweep_configs("grid")
    assert len(swept) == 4 * 72 and {c.epochs for c in swept} == {BUDGETS["paper"].epochs}
    for dataset in DEFAULT_DATASETS:
        for batch_norm in (False, True):
            grid = grid_configs(GRID_DATASET[dataset], batch_norm, BUDGETS["paper"])
            chosen = restrict(swept, [f"dataset={GRID_DATASET[dataset]}", f"batch_norm={switch_word(batch_norm)}"])
            assert sorted(c.run_id for c in chosen) == sorted(c.run_id for c in grid)


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_sweep_file_loads(path):
    from bnnlib.cli import sweep_configs

    assert sweep_configs(str(path)) == load_sweep(path) and load_sweep(path)


def test_protocol_reads_only_its_runs_up_to_its_budget(tmp_path):
    """A store may hold other runs and epochs beyond the budget (run ids exclude epochs): pages
    built from it must show exactly the budget they state."""
    from bnnlib.protocol import Budget, epoch_records, summarise

    budget = Budget("two", 2, None, None, (2,), "two epochs")
    config = RunConfig(dataset="mnist", algorithm="DFA", weights="binary", activation="sign", init=0.1,
                       lr=1e-4, seed=2, epochs=2)
    store = ResultsStore(tmp_path)
    store.add_epochs([dict(run_id=run_id, epoch=epoch, **dataclasses.asdict(config), loss=0.1,
                           train_accuracy=0.1 * epoch, train_precision=0.0, train_f1=0.0,
                           test_accuracy=0.1 * epoch, test_precision=0.0, test_f1=0.0)
                      for run_id in (config.run_id, "e15e" * 4) for epoch in (1, 2, 3)])
    records = epoch_records(store, [config], budget)
    assert set(records["run_id"]) == {config.run_id} and sorted(records["epoch"]) == [1, 2]
    summary = summarise(store, [config], budget)
    assert summary["best_test_accuracy"].tolist() == [0.2] and summary["epochs_done"].tolist() == [2]


def test_a_stage_run_in_turn_with_the_next_ends_when_that_one_does():
    """Work left 1 h, 2 h, 1 h, 0.5 h on one worker: in order the stages end after 1, 3, 4, 4.5 h;
    the first run in turn with the second ends with it at 3 h, a finished stage reads None."""
    from bnnlib.protocol import Progress
    stages = [("check, mnist", 0, 2), ("check, fashion", 1, 2), ("probed", 0, 4), ("finals", 3, 3)]
    state = Progress(11, 4, 22, 8, 1.0, stages, stage_seconds_left=[3600.0, 7200.0, 3600.0, 1800.0],
                     with_next=[True, False, False, False])
    assert state.hours_until_done(1) == [pytest.approx(3.0), pytest.approx(3.0), pytest.approx(4.0), None]
    assert state.hours_until_done(2)[0] == pytest.approx(1.5)
    alone = Progress(11, 4, 22, 8, 1.0, stages, stage_seconds_left=[3600.0, 7200.0, 3600.0, 1800.0])
    assert alone.hours_until_done(1)[:3] == [pytest.approx(1.0), pytest.approx(3.0), pytest.approx(4.0)]


def test_status_progress_counts_stages_in_protocol_order(tmp_path):
    """Synthetic records: the MNIST grid without BN complete, two of its finals done."""
    from bnnlib.protocol import Budget, final_configs, grid_configs, progress

    budget = Budget("tiny", 2, None, None, (2, 3), "two epochs, two seeds")
    store = ResultsStore(tmp_path)
    grid = grid_configs("mnist", False, budget)

    def record(configs, epochs_done, status="complete", seconds_per_epoch=3.0, epoch_rows=True):
        if epoch_rows:
            store.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=e, loss=0.1, train_accuracy=0.5 + c.lr,
                                   train_precision=0.5, train_f1=0.5, test_accuracy=0.5, test_precision=0.5,
                                   test_f1=0.5) for c in configs for e in range(1, epochs_done + 1)])
        store.update_runs([dict(run_id=c.run_id, **c.identity(), status=status, epochs_done=epochs_done,
                                seconds=seconds_per_epoch * epochs_done) for c in configs])

    record(grid, 2)
    state = progress(store, budget)
    assert state.runs_total == 2 * 72 + 4 * 24 and state.runs_complete == 72
    assert state.stages[0] == ("mnist grid, BN off", 72, 72) and state.stages[1] == ("mnist finals, BN off", 0, 24)
    from bnnlib.sweep import select_hyperparameters
    finals = final_configs(select_hyperparameters(run_summary(store.epochs(), store.runs())), "mnist", False, budget)
    record(finals[:2], 2)
    record(finals[2:3], 1, status="running")
    state = progress(store, budget)
    assert state.stages[1] == ("mnist finals, BN off", 2, 24)
    assert state.run_epochs_done == 72 * 2 + 2 * 2 + 1 and state.run_epochs_total == state.runs_total * 2
    assert state.seconds_per_run_epoch == 3.0
    assert state.hours_left(2) == pytest.approx((state.run_epochs_total - state.run_epochs_done) * 3.0 / 2 / 3600)
    # stage by stage, in protocol order: each stage is done after its own work and all before it
    until = state.hours_until_done(2)
    hour = 3.0 / 2 / 3600  # one run-epoch at 3 s, on 2 workers
    assert until[0] is None  # the grid without BN is finished
    assert until[1] == pytest.approx((24 * 2 - 5) * hour)  # 43 epochs of finals left
    assert until[2] - until[1] == pytest.approx(72 * 2 * hour)  # the BN grid's own epochs, counted in its stage
    assert until[3] - until[2] == until[4] - until[3] == pytest.approx(24 * 2 * hour)
    assert until[-1] == pytest.approx(state.hours_left(2))
    # BP's grid runs took 9 s per epoch: every BP epoch left — its finals, the BN grid's, the
    # finals not selected yet — counts 9 s, every other epoch 3 s (the rates of their kinds)
    record([c for c in grid if c.algorithm == "BP"], 2, seconds_per_epoch=9.0, epoch_rows=False)
    state = progress(store, budget)
    done = {**{c.run_id: 2 for c in finals[:2]}, finals[2].run_id: 1}
    left = [(2 - done.get(c.run_id, 0), c.algorithm == "BP") for c in finals]
    bp = sum(e for e, is_bp in left if is_bp) + (24 + 8 + 8 + 8) * 2     # + BN grid, 3 × finals to come
    other = sum(e for e, is_bp in left if not is_bp) + (48 + 16 + 16 + 16) * 2
    assert bp + other == state.run_epochs_total - state.run_epochs_done
    assert state.hours_left(2) == pytest.approx((9 * bp + 3 * other) / 2 / 3600)
    assert state.seconds_per_run_epoch == 3.0  # the median over all runs


def test_hours_left_are_at_the_speed_of_the_processor_the_long_run_is_on_now(tmp_path):
    """The grid ran on processor A (3 s per epoch, BP 9 s); the long run moved to B, where two DFA
    runs took 6 s per epoch: DFA epochs left count 6 s (B's own median), every other kind its
    A-median scaled by B's measured slowdown (6 / 3 = 2×): BP 18 s, DRTP 6 s."""
    from bnnlib.protocol import Budget, grid_configs, progress

    budget = Budget("tiny", 2, None, None, (2, 3), "two epochs, two seeds")
    store = ResultsStore(tmp_path)
    grid = grid_configs("mnist", False, budget)

    def record(configs, epochs_done, seconds_per_epoch, processor, updated, status="complete"):
        store.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=e, loss=0.1, train_accuracy=0.5 + c.lr,
                               train_precision=0.5, train_f1=0.5, test_accuracy=0.5, test_precision=0.5,
                               test_f1=0.5) for c in configs for e in range(1, epochs_done + 1)])
        store.update_runs([dict(run_id=c.run_id, **c.identity(), status=status, epochs_done=epochs_done,
                                seconds=seconds_per_epoch * epochs_done, processor=processor, updated=updated)
                           for c in configs])

    record([c for c in grid if c.algorithm != "BP"], 2, 3.0, "A", "2026-11-28T10:00:00+00:00")
    record([c for c in grid if c.algorithm == "BP"], 2, 9.0, "A", "2026-11-28T10:00:00+00:00")
    on_a = progress(store, budget)
    assert on_a.processor == "A"
    bn_grid = grid_configs("mnist", True, budget)
    moved = [c for c in bn_grid if c.algorithm == "DFA"][:2]
    record(moved, 1, 6.0, "B", "2026-11-29T10:00:00+00:00", status="running")
    state = progress(store, budget)
    assert state.processor == "B" and state.seconds_per_run_epoch == 6.0
    left_by_rule = {"BP": 0, "DFA": 0, "DRTP": 0}
    for c in bn_grid:
        left_by_rule[c.algorithm] += 2 - (1 if c in moved else 0)
    # the four final stages (MNIST and Fashion-MNIST, BN off and on), each 4 structures per rule × 2 seeds × 2 epochs
    finals_per_rule = 4 * 4 * len(budget.seeds) * 2
    for rule in left_by_rule:
        left_by_rule[rule] += finals_per_rule
    expected = 18 * left_by_rule["BP"] + 6 * left_by_rule["DFA"] + 6 * left_by_rule["DRTP"]
    assert state.work_seconds_left == pytest.approx(expected)


def _timed_runs(rows):
    """runs.csv rows (processor, rule, BN, seconds per epoch, updated) for _seconds_per_epoch."""
    return pd.DataFrame([dict(run_id=f"r{i}", processor=proc, algorithm=rule, weights="binary", activation="sign",
                              batch_norm=bn, epochs_done=10, seconds=10 * seconds, updated=updated)
                         for i, (proc, rule, bn, seconds, updated) in enumerate(rows)])


def test_a_kind_not_run_on_the_new_processor_is_scaled_against_each_earlier_processor_that_ran_it():
    """Slow ran BP and DRTP (12 s, 14 s), Fast ran BP and DFA (4 s, 5 s); the long run moved to New,
    where BP took 8 s: 8/12 of Slow's speed, 2× Fast's. DRTP, run only on Slow, counts 14 × 8/12;
    DFA, run only on Fast, 5 × 2 — not the others' median scaled by one factor for all of them,
    which would count DRTP at 14 × 8/8 and DFA at 5 × 8/8 (the others' BP median is 8 s)."""
    from bnnlib.protocol import _seconds_per_epoch

    old, new = "2026-11-28T10:00:00+00:00", "2026-11-30T10:00:00+00:00"
    runs = _timed_runs([("Slow", "BP", True, 12.0, old), ("Slow", "DRTP", True, 14.0, old),
                        ("Fast", "BP", True, 4.0, old), ("Fast", "DFA", True, 5.0, old),
                        ("New", "BP", True, 8.0, new)])
    overall, rate_of, processor = _seconds_per_epoch(runs)
    assert processor == "New" and overall == 8.0
    assert rate_of(("BP", "binary", "sign", True)) == 8.0
    assert rate_of(("DRTP", "binary", "sign", True)) == pytest.approx(14 * 8 / 12)
    assert rate_of(("DFA", "binary", "sign", True)) == pytest.approx(5 * 2)
    # without the BN switch, the peers with it on each processor, scaled the same way
    assert rate_of(("DRTP", "binary", "sign", False)) == pytest.approx(14 * 8 / 12)
    # a kind both ran: the median of the two scaled estimates; recorded twice, a kind's median
    both = _seconds_per_epoch(pd.concat([runs, _timed_runs([("Fast", "DRTP", True, 3.0, old)])
                                         .assign(run_id="extra")], ignore_index=True))[1]
    assert both(("DRTP", "binary", "sign", True)) == pytest.approx((14 * 8 / 12 + 3 * 2) / 2)
    # runs that recorded no processor count as one more earlier processor
    unknown = _timed_runs([(None, "BP", True, 16.0, old), (None, "DFA", False, 6.0, old), ("New", "BP", True, 8.0, new)])
    assert _seconds_per_epoch(unknown)[1](("DFA", "binary", "sign", False)) == pytest.approx(6 * 8 / 16)


def test_two_machines_of_one_processor_kind_are_timed_apart_by_their_boot():
    """An earlier AVX2 machine (boot a) ran BP with BN at 13.5 s and DFA without BN at 12 s; the
    Intel one ran DFA without BN at 8 s and BP with BN at 7 s; the long run is now on another AVX2
    machine (boot b), where DFA without BN takes 9 s. BP with BN is estimated from both earlier
    machines, each scaled by this one's speed against it (7 × 9/8 and 13.5 × 9/12) — not boot a's
    13.5 s taken as this machine's own; runs that recorded no boot count per processor kind."""
    from bnnlib.protocol import _seconds_per_epoch

    old, new = "2026-11-28T10:00:00+00:00", "2026-12-01T10:00:00+00:00"
    runs = _timed_runs([("AVX2", "BP", True, 13.5, old), ("AVX2", "DFA", False, 12.0, old),
                        ("Intel", "DFA", False, 8.0, old), ("Intel", "BP", True, 7.0, old),
                        ("AVX2", "DFA", False, 9.0, new)]).assign(boot=["a", "a", None, None, "b"])
    overall, rate_of, processor = _seconds_per_epoch(runs)
    assert processor == "AVX2" and overall == 9.0
    assert rate_of(("DFA", "binary", "sign", False)) == 9.0
    # each factor rests on one run: the two estimates weigh the same, their mean
    assert rate_of(("BP", "binary", "sign", True)) == pytest.approx((7.0 * 9 / 8 + 13.5 * 9 / 12) / 2)
    # without boots, the two AVX2 machines are one: boot a's BP time counts as this machine's own
    assert _seconds_per_epoch(runs.drop(columns="boot"))[1](("BP", "binary", "sign", True)) == 13.5


def test_one_boots_runs_of_another_thread_count_are_timed_as_another_machine():
    """On one boot, BP with BN ran at 2 threads (12 s) and DFA without BN at 2 threads (9 s); the long
    run now runs single-threaded workers, where DFA without BN takes 6 s: BP with BN is estimated as
    12 × 6/9 — not 12 s taken as the speed the runs have now. Without thread counts, one machine."""
    from bnnlib.protocol import _seconds_per_epoch

    old, new = "2026-12-07T10:00:00+00:00", "2026-12-07T16:00:00+00:00"
    runs = _timed_runs([("Intel", "BP", True, 12.0, old), ("Intel", "DFA", False, 9.0, old),
                        ("Intel", "DFA", False, 6.0, new)]).assign(boot="b", threads=[2, 2, 1])
    overall, rate_of, _ = _seconds_per_epoch(runs)
    assert overall == 6.0 and rate_of(("BP", "binary", "sign", True)) == pytest.approx(12.0 * 6 / 9)
    assert _seconds_per_epoch(runs.drop(columns="threads"))[1](("BP", "binary", "sign", True)) == 12.0


@pytest.mark.parametrize("processor, boot, words", [
    (None, None, None),
    ("AMD EPYC (AVX2)", None, "AMD EPYC (AVX2)"),  # recorded before boots were
    ("AMD EPYC (AVX2)", "2baf139f",
     "AMD EPYC (AVX2), boot 2baf139f: machines of one processor kind can differ in speed, each boot is timed apart"),
])
def test_the_estimates_machine_is_named_by_processor_and_boot_where_recorded(processor, boot, words):
    from bnnlib.protocol import Progress

    assert Progress(1, 0, 1, 0, 1.0, [], processor=processor, boot=boot).machine == words
    assert Progress(1, 0, 1, 0, 1.0, [], processor="Intel Xeon", boot="b4", threads=1).machine == (
        "Intel Xeon, boot b4, runs of 1 thread: machines of one processor kind can differ in speed, and a run's "
        "speed with its thread count, so each boot and thread count is timed apart")


@pytest.mark.parametrize("values, weights, expected", [
    ([5.0], [1], 5.0),
    ([3.0, 1.0, 2.0], [1, 1, 1], 2.0),          # equal weights: the ordinary median
    ([1.0, 4.0], [1, 1], 2.5),                  # half falls between two values: their mean
    ([1.0, 4.0], [1, 3], 4.0),                  # 1 holds a quarter of the weight
    ([10.0, 2.0, 3.0], [54, 2, 1], 10.0),       # one heavy value outweighs two light ones
    ([1.0, 2.0, 3.0, 4.0], [1, 2, 2, 1], 2.5),  # cumulative 1, 3 of 6: exactly half after 2.0
])
def test_weighted_median(values, weights, expected):
    from bnnlib.protocol import weighted_median

    assert weighted_median(values, weights) == expected


def test_a_factor_resting_on_one_busy_run_does_not_count_as_much_as_one_resting_on_many():
    """New ran BP with BN on three runs (8 s) and DFA without BN once, while the machine was busy
    (30 s). Wide ran BP with BN and DRTP without, both at 4 s: New is 2× Wide, on 3 runs. Narrow
    ran DFA and DRTP without BN (5 s, 6 s): New is 6× Narrow, on the one busy run. DRTP without BN
    is estimated from both: 2 × 4 = 8 s from Wide, 6 × 6 = 36 s from Narrow. Weighted by the runs
    each factor rests on (3 and 1), the median is Wide's 8 s; unweighted it would be their mean."""
    from bnnlib.protocol import _seconds_per_epoch

    old, new = "2026-11-28T10:00:00+00:00", "2026-11-30T10:00:00+00:00"
    runs = _timed_runs([("Wide", "BP", True, 4.0, old), ("Wide", "DRTP", False, 4.0, old),
                        ("Narrow", "DFA", False, 5.0, old), ("Narrow", "DRTP", False, 6.0, old)]
                       + [("New", "BP", True, 8.0, new)] * 3 + [("New", "DFA", False, 30.0, new)])
    rate_of = _seconds_per_epoch(runs)[1]
    assert rate_of(("DRTP", "binary", "sign", False)) == pytest.approx(2 * 4.0)
    # with the weights equal (one New run shares a kind with each), the plain median of the two
    even = _seconds_per_epoch(runs.drop(index=[5, 6]))[1]
    assert even(("DRTP", "binary", "sign", False)) == pytest.approx((2 * 4.0 + 6 * 6.0) / 2)


def test_a_runs_speed_is_its_median_epoch_not_its_mean():
    """Two 190-s epochs (a slow kernel before a restart) and three 14-s ones: the run's rate is
    14 s, not the mean 84.4 s; a group's epoch counts per member; runs without epoch times keep
    their total over their epochs."""
    from bnnlib.protocol import median_epoch_seconds, _seconds_per_epoch

    epochs = pd.DataFrame({"run_id": ["a"] * 5 + ["b"] * 2, "group_epoch_seconds": [190, 190, 14, 14, 14, 20, 20],
                           "members": [1] * 5 + [2] * 2})
    assert median_epoch_seconds(epochs).to_dict() == {"a": 14.0, "b": 10.0}
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "algorithm": ["DFA"] * 3, "weights": ["binary"] * 3,
                         "activation": ["sign"] * 3, "batch_norm": [True] * 3, "epochs_done": [5, 2, 4],
                         "seconds": [422.0, 20.0, 48.0]})
    overall, rate_of, processor = _seconds_per_epoch(runs, median_epoch_seconds(epochs))
    assert processor is None and overall == 12.0  # median of 14, 10 and 48 / 4
    assert rate_of(("DFA", "binary", "sign", True)) == 12.0


@pytest.mark.slow
def test_sweep_grid_from_the_command_line_names_the_protocols_runs(tmp_path):
    import os
    import subprocess
    import sys
    command = [sys.executable, "-m", "bnnlib", "sweep", "grid", "--only", "dataset=mnist", "--only", "batch_norm=off",
               "--epochs", "5", "--dry-run", "--results", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "72 runs: 0 complete, 0 diverged, 72 to train in 12 member group(s)"
