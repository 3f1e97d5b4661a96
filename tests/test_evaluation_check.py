"""What the BN results pages say of the evaluation check (bnnlib.book.evaluation_check): a run's
best test accuracy evaluated as the original code does against as every record is, per
configuration, and what it does to our medians' distance from the paper's; checked on a folder of
hand-written check runs."""

import dataclasses
from types import SimpleNamespace

import pandas as pd
import pytest

from bnnlib.book.evaluation_check import bias_sentence, check_runs, effects, usable
from bnnlib.book.paper import paper_selection
from bnnlib.protocol import evaluation_configs, evaluation_store, get_budget
from bnnlib.store import ResultsStore

BUDGET = get_budget("paper")


def write_check_run(store, config, standard, paper_code, epochs, processor="AMD EPYC (AVX512)"):
    """``epochs`` epochs whose best accuracies are ``standard`` and ``paper_code`` (at epoch 7),
    training loss 1/epoch."""
    rows = []
    for epoch in range(1, epochs + 1):
        top = epoch == 7
        rows.append({"run_id": config.run_id, **config.identity(), "epoch": epoch, "loss": 1 / epoch,
                     "processor": processor,
                     "train_accuracy": 0.99, "test_accuracy": paper_code if top else paper_code - 0.01,
                     "standard_test_accuracy": standard if top else standard - 0.01})
    evaluation_store(store).add_epochs(rows)


def write_record(store, config, loss_at_last, processor="AMD EPYC (AVX512)", last_processor=None):
    """The record of the check run's seed (the standard evaluation) with the same training loss
    but at the last epoch, computed on ``processor`` (its last epoch on ``last_processor``)."""
    record = dataclasses.replace(config, evaluation="standard")
    store.add_epochs([{"run_id": record.run_id, **record.identity(), "epoch": epoch,
                       "processor": last_processor if epoch == BUDGET.epochs and last_processor else processor,
                       "loss": loss_at_last if epoch == BUDGET.epochs else 1 / epoch,
                       "train_accuracy": 0.99, "test_accuracy": 0.97} for epoch in range(1, BUDGET.epochs + 1)])


@pytest.fixture
def page(tmp_path):
    store = ResultsStore(tmp_path / "paper")
    return SimpleNamespace(store=store, dataset="mnist", batch_norm=True, budget=BUDGET, device="cpu")


def bp_binary_sign(page, seed):
    [config] = [c for c in evaluation_configs(paper_selection(True), page.dataset, page.budget)
                if (c.algorithm, c.weights, c.activation, c.seed) == ("BP", "binary", "sign", seed)]
    return config


def test_a_finished_check_run_gives_the_passs_effect_and_an_unfinished_one_nothing(page):
    """Same training is judged by every epoch's training loss (the pass moves the running statistics
    later evaluations use, so a standard evaluation may differ from the record's; the loss may not)."""
    selection = paper_selection(True)
    first, second = bp_binary_sign(page, BUDGET.seeds[0]), bp_binary_sign(page, BUDGET.seeds[1])
    write_check_run(page.store, first, standard=0.9700, paper_code=0.9680, epochs=BUDGET.epochs)
    write_check_run(page.store, second, standard=0.9710, paper_code=0.9700, epochs=BUDGET.epochs - 1)
    runs = check_runs(page, selection)
    assert runs.attrs["planned"] == 24  # 12 configurations × the first 2 seeds
    assert list(runs["seed"]) == [BUDGET.seeds[0]]  # the second has 99 of its 100 epochs
    row = runs.iloc[0]
    assert (row["standard"], row["paper_code"], row["same_training"]) == (0.9700, 0.9680, None)  # no record yet
    write_record(page.store, first, loss_at_last=1 / BUDGET.epochs)
    assert check_runs(page, selection)["same_training"].tolist() == [True]
    write_record(page.store, first, loss_at_last=0.5)  # the record's last epoch trained otherwise
    runs = check_runs(page, selection)
    assert runs[["same_training", "other_rounding"]].values.tolist() == [[False, False]]
    assert usable(runs).empty  # on the same kind of processor: more than the pass differs
    intel = "Intel(R) Xeon(R) Processor (AVX512)"
    write_record(page.store, first, loss_at_last=0.5, processor=intel)
    runs = check_runs(page, selection)
    assert runs[["same_training", "other_rounding", "record"]].values.tolist() == [[False, True, 0.97]]
    assert len(usable(runs)) == 1  # another kind's float32 sums: the effect, within the run, still counts
    # the kind of processor that matters is the one of the first epoch where the two part: here the same
    write_record(page.store, first, loss_at_last=0.5, processor=intel, last_processor="AMD EPYC (AVX512)")
    assert check_runs(page, selection)["other_rounding"].tolist() == [False]
    write_record(page.store, first, loss_at_last=0.5, processor=intel, last_processor=float("nan"))
    runs = check_runs(page, selection)
    assert runs["other_rounding"].tolist() == [None] and usable(runs).empty  # not known: left out
    # on one kind of processor, at two thread counts (an Intel Xeon's MKL rounds its sums by them)
    write_record(page.store, first, loss_at_last=0.5)
    record = dataclasses.replace(first, evaluation="standard")
    for store, config, threads in ((page.store, record, 1), (evaluation_store(page.store), first, 2)):
        store.update_runs([dict(run_id=config.run_id, **config.identity(), status="complete",
                                epochs_done=BUDGET.epochs, seconds=1.0, threads=threads)])
    assert check_runs(page, selection)["other_rounding"].tolist() == [True]
    assert check_runs(SimpleNamespace(**{**vars(page), "batch_norm": False}), selection).empty


def test_the_page_says_how_much_of_the_bias_the_pass_accounts_for():
    """BP binary sign, 2 seeds: effects −0.20 and −0.10 points, mean −0.15; our median +0.20 above
    the paper's moves to +0.05. A third run that did not train as its record did is left out,
    unless another kind of processor computed its record."""
    runs = pd.DataFrame({"algorithm": ["BP"] * 3, "weights": ["binary"] * 3, "activation": ["sign"] * 3,
                         "seed": [1, 2, 3], "paper_code": [0.9680, 0.9700, 0.9000], "standard": [0.9700, 0.9710, 0.9700],
                         "same_training": [True, None, False]})
    runs.attrs["planned"] = 24
    table = effects(runs.iloc[:2])
    assert list(table["setting"]) == ["binary sign"] and table["effect"].iloc[0] == pytest.approx(-0.0015)
    comparison = pd.DataFrame({"setting": ["binary sign", "binary tanh", "continuous tanh"],
                               "algorithm": ["BP", "BP", "BP"], "Δ (points)": ["+0.20", "+0.10", "–"]})
    assert bias_sentence(comparison, runs) == (
        "The evaluation check measured it on **2 of 24** runs (1 of this page's 2 configurations): the original "
        "code's pass changes a run's best test accuracy by **-0.15** points on average (-0.20 to -0.10). Our "
        "medians moved by their configuration's effect would lie above the paper's in **1 of 1** of these "
        "configurations (mean Δ +0.20 → +0.05 points). Of the 2 runs whose record is complete, the training loss "
        "of one of them equals its record's at every epoch, as it must: the pass changes no weight. 1 more check "
        "run did not train as its record did (which kind of processor computed the epoch where they part is not "
        "recorded) and is left out: the pass changes no weight, so such a run measures something else as well.")
    assert bias_sentence(comparison, runs.assign(other_rounding=[False, None, False])).endswith(
        "1 more check run did not train as its record did on the same kind of processor at the same threads and "
        "is left out: the pass changes no weight, so such a run measures something else as well.")
    assert bias_sentence(comparison, runs.iloc[:2]).endswith(
        "The training loss of the one run whose record is complete equals its record's at every epoch, as it "
        "must: the pass changes no weight.")
    # a concat leaves NaN where the first two runs have no other_rounding: they trained alike or have no record
    other = pd.concat([runs.iloc[:2], runs.iloc[2:].assign(paper_code=0.9690, other_rounding=True, record=0.9705)])
    assert bias_sentence(comparison, other) == (
        "The evaluation check measured it on **3 of 24** runs (1 of this page's 2 configurations): the original "
        "code's pass changes a run's best test accuracy by **-0.13** points on average (-0.20 to -0.10). Our "
        "medians moved by their configuration's effect would lie above the paper's in **1 of 1** of these "
        "configurations (mean Δ +0.20 → +0.07 points). Of the 2 runs whose record is complete, the training loss "
        "of one of them equals its record's at every epoch, as it must: the pass changes no weight. 1 check run "
        "differs from its record in the training loss because another kind of processor or another number of "
        "threads computed it, whose float32 sums are rounded otherwise (see Reproducing); its best test accuracy "
        "evaluated as every record is differs from the record's by 0.05 points, and it counts: the pass's effect "
        "is measured within each check run, on one training.")
    assert "its best test accuracy evaluated as every record is equals the record's, and it counts" in \
        bias_sentence(comparison, other.assign(record=[None, None, 0.9700]))
    assert bias_sentence(comparison, runs.iloc[0:0]) == ""
    assert bias_sentence(comparison.iloc[2:], runs) == ""  # no measured configuration the page compares


def test_conclusions_say_which_unexplained_bn_pairs_the_pass_brings_within_the_seeds(tmp_path):
    """C3's DFA binary sign pair on MNIST: our |Δ BN| 3.0 points against the paper's 1.0, standard
    error 0.5, z −4.0. The pass lowers DFA's BN runs by 1.5 points: our |Δ BN| becomes
    |95.0 − (98.0 − 1.5)| = 1.5, z (1.0 − 1.5) / 0.5 = −1.0."""
    from bnnlib.book.evaluation_check import evaluation_pass_z
    store = ResultsStore(tmp_path / "paper")
    page = SimpleNamespace(store=store, dataset="mnist", batch_norm=True, budget=BUDGET, device="cpu")
    config = bp_binary_sign(page, BUDGET.seeds[0])
    config = dataclasses.replace(config, algorithm="DFA")
    summaries = {(False, 0.950), (True, 0.980)}
    summaries = {("mnist", bn): pd.DataFrame({
        "run_id": [f"{bn}{s}" for s in range(3)], "algorithm": "DFA", "weights": "binary", "activation": "sign",
        "init": config.init, "lr": config.lr, "diverged": False, "best_test_accuracy": value})
        for bn, value in summaries}
    for seed in BUDGET.seeds[:2]:
        write_check_run(store, dataclasses.replace(config, seed=seed), standard=0.980, paper_code=0.965,
                        epochs=BUDGET.epochs)
    cells = pd.DataFrame([{"dataset": "mnist", "setting": "binary sign", "algorithm": "DFA", "paper": 0.010,
                           "ours": 0.030, "se": 0.005, "z": -4.0}])
    [(name, moved, recorded)] = evaluation_pass_z(cells, summaries, BUDGET, tmp_path)
    assert name == "DFA, binary sign on MNIST" and recorded == -4.0 and moved == pytest.approx(-1.0)
    assert evaluation_pass_z(cells.assign(algorithm="BP"), summaries, BUDGET, tmp_path) == []  # not measured


@pytest.mark.parametrize("before, after, words", [
    (0.20, 0.05, "mean Δ +0.20 → +0.05 points"),
    (0.091, 0.094, "mean Δ +0.09 points either way, to two decimals"),  # not "+0.09 → +0.09"
])
def test_the_mean_difference_before_and_after_the_pass_reads_once_where_equal(before, after, words):
    from bnnlib.book.evaluation_check import _moved
    assert _moved(before, after) == words
