"""The book's own runs beyond the paper's protocol (``protocol --book-runs``): SHALLOW's grid, the
probed runs, SHALLOW's finals — counted stage by stage, the fully binary SHALLOW finals computed
once (the probed runs') and adopted, never trained twice."""

import dataclasses

import pytest

from bnnlib.protocol import (ALGORITHMS, CONTROLS, PROBED_RULES, Budget, adopt_probed, final_configs,
                             grid_configs, probed_finals, probed_store, progress)
from bnnlib.config import RunConfig
from bnnlib.store import ResultsStore
from bnnlib.sweep import run_summary, select_hyperparameters

TINY = Budget("tiny", 2, None, None, (2, 3), "two epochs, two seeds")


def record(store, configs, epochs_done, status="complete", seconds_per_epoch=3.0):
    store.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=e, loss=0.1, train_accuracy=0.5 + c.lr,
                           train_precision=0.5, train_f1=0.5, test_accuracy=0.5 + c.seed / 100, test_precision=0.5,
                           test_f1=0.5) for c in configs for e in range(1, epochs_done + 1)])
    store.update_runs([dict(run_id=c.run_id, **c.identity(), status=status, epochs_done=epochs_done,
                            seconds=seconds_per_epoch * epochs_done) for c in configs])




def test_progress_lists_the_book_runs_after_the_protocol_in_the_order_they_run(tmp_path):
    store = ResultsStore(tmp_path)
    paper_only = progress(store, TINY)
    state = progress(store, TINY, book_runs=True)
    assert state.stages[:len(paper_only.stages)] == paper_only.stages
    names = [name for name, _, _ in state.stages[len(paper_only.stages):]]
    assert names == ["SHALLOW grid, mnist, BN off", "SHALLOW grid, mnist, BN on",
                     "evaluation check, mnist, BN on", "evaluation check, fashion-mnist, BN on",
                     "probed runs, mnist, BN off", "probed runs, mnist, BN on",
                     "probed runs, fashion-mnist, BN off", "probed runs, fashion-mnist, BN on",
                     "SHALLOW finals, mnist, BN off", "SHALLOW finals, mnist, BN on",
                     "SHALLOW finals, fashion-mnist, BN off", "SHALLOW finals, fashion-mnist, BN on"]
    totals = [total for _, _, total in state.stages[len(paper_only.stages):]]
    # 24 grid runs per BN setting; the paper's 12 configurations with BN × its first 2 seeds checked;
    # 4 rules × 2 seeds probed; SHALLOW's 4 settings × 2 seeds
    assert totals == [24, 24] + [24, 24] + [8] * 4 + [8] * 4
    assert state.runs_total == paper_only.runs_total + 48 + 32 + 32 + 48


def test_progress_counts_probed_runs_and_adopted_shallow_finals(tmp_path):
    """Both MNIST grids (the paper's rules and SHALLOW) complete without BN; SHALLOW's fully
    binary finals probed (so its finals stage counts them as done before they are adopted)."""
    store = ResultsStore(tmp_path)
    record(store, grid_configs("mnist", False, TINY, algorithms=PROBED_RULES), 2)
    selection = select_hyperparameters(run_summary(store.epochs(), store.runs()))
    probed = probed_finals(selection, "mnist", False, TINY)
    assert len(probed) == len(PROBED_RULES) * 2
    assert {(c.weights, c.activation) for c in probed} == {("binary", "sign")}
    shallow_binary = [c for c in probed if c.algorithm == "SHALLOW"]
    record(probed_store(store), shallow_binary, 2)
    record(probed_store(store), [c for c in probed if c.algorithm == "BP"][:1], 1, status="running")
    state = progress(store, TINY, book_runs=True)
    stages = {name: (finished, total) for name, finished, total in state.stages}
    assert stages["SHALLOW grid, mnist, BN off"] == (24, 24)
    assert stages["probed runs, mnist, BN off"] == (2, 8)
    assert stages["SHALLOW finals, mnist, BN off"] == (2, 8)
    assert stages["SHALLOW finals, mnist, BN on"] == (0, 8)
    # the epochs: the paper's grid (72) and SHALLOW's (24) without BN, 2 + 1 probed runs' epochs
    assert state.run_epochs_done == (72 + 24) * 2 + 2 * 2 + 1 + 2 * 2


def test_hours_left_time_the_adopted_shallow_finals_once_in_the_probed_stage(tmp_path):
    """SHALLOW's grid and the paper's rules' grid complete without BN, nothing probed yet: the
    finals stage of SHALLOW counts its 2 fully binary runs (total 8) but times only the 6 it
    trains itself; the 2 are timed in the probed runs' stage, which trains them."""
    store = ResultsStore(tmp_path)
    record(store, grid_configs("mnist", False, TINY, algorithms=PROBED_RULES), 2)
    state = progress(store, TINY, book_runs=True)
    names = [name for name, _, _ in state.stages]
    seconds = dict(zip(names, state.stage_seconds_left))
    stages = {name: (finished, total) for name, finished, total in state.stages}
    assert stages["SHALLOW finals, mnist, BN off"] == (0, 8)
    # every rule ran its grid at 3 s per epoch, so every epoch left costs 3 s (probing unmeasured: 1×)
    assert seconds["probed runs, mnist, BN off"] == pytest.approx(len(PROBED_RULES) * 2 * 2 * 3.0)
    assert seconds["SHALLOW finals, mnist, BN off"] == pytest.approx(6 * 2 * 3.0)


def test_probed_shallow_finals_are_adopted_not_trained_twice(tmp_path):
    store = ResultsStore(tmp_path / "tiny")
    record(store, grid_configs("mnist", False, TINY, algorithms=CONTROLS), 2)
    finals = final_configs(select_hyperparameters(run_summary(store.epochs(), store.runs())), "mnist", False, TINY)
    binary = [c for c in finals if c.weights == "binary" and c.activation == "sign"]
    record(probed_store(store), binary[:1], 2)
    record(probed_store(store), binary[1:], 1, status="running")  # unfinished: stays behind
    probed_store(store).update_table("diagnostics.csv", [{"run_id": binary[0].run_id, "epoch": 1, "layer": 1}],
                                     key=("run_id", "epoch", "layer"))
    assert adopt_probed(store, binary) == [binary[0].run_id]
    epochs = store.epochs()
    adopted = epochs[epochs["run_id"] == binary[0].run_id]
    assert sorted(adopted["epoch"]) == [1, 2]
    assert list(adopted["test_accuracy"]) == list(probed_store(store).epochs().query(
        "run_id == @binary[0].run_id")["test_accuracy"])
    assert store.run_record(binary[0].run_id)["status"] == "complete"
    assert store.run_record(binary[1].run_id) is None
    assert store.table("diagnostics.csv").empty  # the probes stay with the probed runs
    assert adopt_probed(store, binary) == []  # adopting again changes nothing


def test_the_mechanism_chapter_says_whether_its_probed_runs_repeat_the_final_runs(tmp_path):
    """Two probed runs of two epochs beside their final runs: equal at every epoch, then one final
    run's epoch-2 test accuracy other (an older arithmetic, say); one run unfinished is not compared."""
    from bnnlib.book.probes import finals_agreement
    store = ResultsStore(tmp_path / "tiny")
    record(store, grid_configs("mnist", False, TINY, algorithms=ALGORITHMS), 2)
    finals = final_configs(select_hyperparameters(run_summary(store.epochs(), store.runs())), "mnist", False, TINY)
    binary = [c for c in finals if c.weights == "binary" and c.activation == "sign" and c.algorithm == "BP"]
    assert finals_agreement(probed_store(store), store, binary, TINY).startswith("No final run")
    record(probed_store(store), binary, 2)
    record(store, binary[:1], 2)
    record(store, binary[1:], 1, status="running")
    assert finals_agreement(probed_store(store), store, binary, TINY) == (
        "The one probed run of the paper's rules whose final run is complete: it repeats its final run's loss and "
        "train and test accuracy at every epoch exactly: probing changes no number, and the results pages and this "
        "chapter read the same training.")
    record(store, binary[1:], 2)
    c = binary[1]
    store.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=2, loss=0.1, train_accuracy=0.5 + c.lr,
                           test_accuracy=0.25)])  # a recomputed epoch replaces the row: now it differs
    assert finals_agreement(probed_store(store), store, binary, TINY) == (
        "Of the 2 probed runs of the paper's rules whose final run is complete, 1 differs from its final run's "
        "loss or accuracy at some epoch: same arithmetic version, same kind of processor: not explained. Its best "
        "test accuracy minus its final run's: BP +0.00 points: a binary network's signs can turn a last-bit "
        "difference into another training path. This chapter's accuracies are the probed runs' own.")
    store.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=1, loss=0.1, train_accuracy=0.5 + c.lr,
                           test_accuracy=0.5)])  # its best epoch too: the final run's best is 0.50, the probed 0.53
    assert "Its best test accuracy minus its final run's: BP +3.00 points: " in \
        finals_agreement(probed_store(store), store, binary, TINY)
    store.update_runs([dict(run_id=c.run_id, **c.identity(), status="complete", epochs_done=2, seconds=6.0, arithmetic=2)])
    assert ("at some epoch: 1 computed by another arithmetic version than its final run. The probe itself changes no "
            "number (a test pins it on one machine); another processor can round the same arithmetic differently.") in \
        finals_agreement(probed_store(store), store, binary, TINY)

    def named(side, processor):  # the processor a side's epochs name (epochs.csv's column)
        rows = side.epochs().query(f"run_id == '{c.run_id}'").to_dict("records")
        side.add_epochs([{**row, "processor": processor} for row in rows])
    named(probed_store(store), "Intel(R) Xeon(R) Processor (AVX512)")
    named(store, "AMD EPYC (AVX512)")
    assert ("at some epoch: 1 computed by another arithmetic version than its final run; 1 computed on another kind "
            "of processor than its final run. The probe itself") in \
        finals_agreement(probed_store(store), store, binary, TINY)
    named(store, float("nan"))  # a final run from before processors were recorded
    assert "; 1 set beside a final run that did not record its processor (recorded before runs named it). The" in \
        finals_agreement(probed_store(store), store, binary, TINY)
    # the control's fully binary finals are its probed runs (adopted): never evidence against themselves
    shallow = [dataclasses.replace(b, algorithm="SHALLOW") for b in binary]
    record(probed_store(store), shallow, 2)
    record(store, shallow, 2)
    assert finals_agreement(probed_store(store), store, shallow, TINY).startswith("No final run")


def test_merge_refuses_an_unknown_table_before_anything(tmp_path):
    source = ResultsStore(tmp_path / "source")
    record(source, grid_configs("mnist", False, TINY, algorithms=ALGORITHMS)[:1], 2)
    with pytest.raises(ValueError, match="unknown table.*states.*accepted: epochs, runs, packed, diagnostics"):
        ResultsStore(tmp_path / "here").merge_from(source, tables=("states",))
    assert not (tmp_path / "here" / "runs.csv").exists()


@pytest.mark.parametrize("extra", [["--grid-only"], ["--algorithm", "BP"], ["--diagnostics", "5"],
                                   ["--batch-norm", "on"], ["--mechanism"]])
def test_book_runs_refuse_options_that_would_cut_their_stages(tmp_path, capsys, extra):
    from bnnlib.cli import main

    assert main(["protocol", "--budget", "smoke", "--book-runs", "--results", str(tmp_path), *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: protocol") and "accepted" in error and error.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_an_extension_rule_is_counted_by_status_once_it_has_a_run(tmp_path):
    store = ResultsStore(tmp_path)
    assert not any(name.startswith("FA ") for name, _, _ in progress(store, TINY, book_runs=True).stages)
    fa_grid = grid_configs("mnist", False, TINY, algorithms=("FA",))
    record(store, fa_grid, 2)
    stages = {name: (finished, total) for name, finished, total in progress(store, TINY, book_runs=True).stages}
    assert stages["FA grid, mnist, BN off"] == (24, 24) and stages["FA grid, mnist, BN on"] == (0, 24)
    assert stages["FA finals, mnist, BN off"] == (0, 8) and stages["FA finals, fashion-mnist, BN on"] == (0, 8)
    assert "SDFA grid, mnist, BN off" not in stages
    finals = final_configs(select_hyperparameters(run_summary(store.epochs(), store.runs()).query("algorithm == 'FA'")),
                           "mnist", False, TINY)
    record(store, finals[:3], 2)
    stages = {name: (finished, total) for name, finished, total in progress(store, TINY, book_runs=True).stages}
    assert stages["FA finals, mnist, BN off"] == (3, 8)


def test_the_evaluation_check_repeats_the_first_seeds_of_the_bn_finals_with_the_paper_codes_evaluation(tmp_path):
    from bnnlib.protocol import evaluation_configs, evaluation_store
    store = ResultsStore(tmp_path)
    record(store, grid_configs("mnist", True, TINY), 2)
    selection = select_hyperparameters(run_summary(store.epochs(), store.runs()))
    checks = evaluation_configs(selection, "fashion-mnist", TINY)
    finals = {c.run_id: c for c in final_configs(selection, "fashion-mnist", True, TINY)}
    assert len(checks) == 12 * 2 and {c.seed for c in checks} == {2, 3}
    assert {c.evaluation for c in checks} == {"paper-code"}
    for check in checks:  # the same run as a final one but for the evaluation: its own id, paired by seed
        twin = RunConfig(**{**check.as_dict(), "evaluation": "standard"})
        assert twin.run_id in finals and check.run_id not in finals
    record(evaluation_store(store), checks[:5], 2)
    stages = {name: (finished, total) for name, finished, total in progress(store, TINY, book_runs=True).stages}
    assert stages["evaluation check, fashion-mnist, BN on"] == (5, 24)
    assert stages["evaluation check, mnist, BN on"] == (0, 24)


def test_the_evaluation_check_measures_the_datasets_in_turn_configuration_by_configuration(tmp_path):
    """Each dataset's configurations alternate, a configuration's seeds together, and the runner
    trains them in that order: an interrupted check has measured Fashion-MNIST (where the BN bias
    is largest) as far as MNIST."""
    from bnnlib.protocol import evaluation_configs, interleaved
    from bnnlib.runner import plan
    store = ResultsStore(tmp_path)
    record(store, grid_configs("mnist", True, TINY), 2)
    selection = select_hyperparameters(run_summary(store.epochs(), store.runs()))
    mnist, fashion = (evaluation_configs(selection, d, TINY) for d in ("mnist", "fashion-mnist"))
    order = interleaved([mnist, fashion])
    assert sorted(c.run_id for c in order) == sorted(c.run_id for c in mnist + fashion)
    assert [c.dataset for c in order] == ["mnist", "mnist", "fashion-mnist", "fashion-mnist"] * 12
    assert [c.seed for c in order] == [2, 3] * 24
    assert order[0::4] + order[1::4] == [c for c in mnist if c.seed == 2] + [c for c in mnist if c.seed == 3]
    work = plan(order, ResultsStore(tmp_path / "check"), max_members=1)
    assert [group[0].run_id for group, _ in work.groups] == [c.run_id for c in order]


def test_the_evaluation_checks_latest_record_names_the_machine_the_long_run_is_on(tmp_path):
    """The book's own runs write the evaluation check into a folder of its own: where its latest
    record is newer than every other, the hours left are at that record's machine's speed."""
    from bnnlib.protocol import evaluation_store
    store = ResultsStore(tmp_path)
    grid = grid_configs("mnist", False, TINY)
    record(store, grid, 2)
    store.update_runs([dict(run_id=c.run_id, **c.identity(), status="complete", epochs_done=2, seconds=6.0,
                            processor="A", updated="2026-12-01T10:00:00+00:00") for c in grid])
    assert progress(store, TINY, book_runs=True).processor == "A"
    checked = [dataclasses.replace(c, evaluation="paper-code") for c in grid_configs("mnist", True, TINY)[:2]]
    record(evaluation_store(store), checked, 2, seconds_per_epoch=12.0)
    evaluation_store(store).update_runs([dict(run_id=c.run_id, **c.identity(), status="complete", epochs_done=2,
                                              seconds=24.0, processor="B", updated="2026-12-02T10:00:00+00:00")
                                         for c in checked])
    state = progress(store, TINY, book_runs=True)
    assert state.processor == "B" and state.seconds_per_run_epoch == 12.0


def test_shallow_beside_takes_its_fully_binary_finals_from_the_probed_runs_before_they_are_adopted(tmp_path,
                                                                                                  monkeypatch):
    """SHALLOW's finals not yet run: its bar is the grid's selected run (one seed), except fully
    binary in the settings whose probed runs — the same runs, adopted later — have all finished:
    there the mean of their seeds (TINY's seeds 2 and 3: test accuracy 0.52 and 0.53 → 0.525)."""
    import pandas as pd
    from bnnlib.book import shallow as shallow_module

    store = ResultsStore(tmp_path / "tiny")
    monkeypatch.setattr(shallow_module, "open_store", lambda budget, results_base=None: (None, store))
    grid = grid_configs("mnist", False, TINY, algorithms=CONTROLS)
    record(store, grid, 2)
    [grid_seed] = {c.seed for c in grid}
    selection = select_hyperparameters(run_summary(store.epochs(), store.runs()))
    ours = {(dataset, False): pd.DataFrame([dict(algorithm=a, weights=w, activation=act, seed=s, diverged=False,
                                                 best_test_accuracy=0.9 if a != "BP" else 0.4)
                                            for a in ALGORITHMS for w, act in (("binary", "sign"), ("binary", "tanh"))
                                            for s in TINY.seeds])
            for dataset in ("mnist", "fashion-mnist")}

    cells, fully_binary, source = shallow_module.shallow_beside(ours, TINY)
    assert source == "grid search's selected run of each setting (one seed)"
    grid_bar = 0.5 + grid_seed / 100
    assert [(c.where, c.shallow, c.one_seed) for c in cells] == [
        ("binary tanh, MNIST no BN", grid_bar, True), ("binary sign, MNIST no BN", grid_bar, True)]
    assert fully_binary == [(0.4, grid_bar, "MNIST no BN")]

    for dataset in ("mnist", "fashion-mnist"):
        record(probed_store(store), [c for c in probed_finals(selection, dataset, False, TINY)
                                     if c.algorithm == "SHALLOW"], 2)
    cells, fully_binary, source = shallow_module.shallow_beside(ours, TINY)
    assert source == ("grid search's selected run of each setting (one seed) and, fully binary on MNIST no BN, "
                      "Fashion-MNIST no BN, its 2 final runs (mean over seeds, recorded with the probed runs)")
    probed_bar = pytest.approx(0.525)
    assert [(c.where, c.shallow, c.one_seed) for c in cells] == [
        ("binary tanh, MNIST no BN", grid_bar, True), ("binary sign, MNIST no BN", probed_bar, False),
        ("binary sign, Fashion-MNIST no BN", probed_bar, False)]
    assert fully_binary == [(0.4, probed_bar, "MNIST no BN"), (0.4, probed_bar, "Fashion-MNIST no BN")]
    # a setting asked alone whose grid runs on another dataset (Fashion-MNIST's: MNIST's grid)
    fashion = {key: ours[key] for key in ours if key[0] == "fashion-mnist"}
    fashion_cells, fashion_binary, _ = shallow_module.shallow_beside(fashion, TINY)
    assert [c.where for c in fashion_cells] == ["binary sign, Fashion-MNIST no BN"]
    assert fashion_binary == [(0.4, probed_bar, "Fashion-MNIST no BN")]
    assert shallow_module.shallow_bar_phrase(cells).startswith(
        "random binary features with only the output layer trained (our SHALLOW control, measured in 3 binary cells "
        "on MNIST and Fashion-MNIST: up to 52.5 % in binary sign, MNIST no BN): ")


def test_how_far_probed_runs_end_from_their_finals_never_reads_minus_zero():
    from bnnlib.book.probes import _best_moved
    assert _best_moved({"DRTP": [-0.00001, 0.00001, -0.0001]}) == (
        "Their best test accuracy minus their final run's: DRTP +0.00 points on average (-0.01 to +0.00): a binary "
        "network's signs can turn a last-bit difference into another training path.")
    assert _best_moved({"BP": [-0.00004]}).startswith("Its best test accuracy minus its final run's: BP +0.00 points:")
