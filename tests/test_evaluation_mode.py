"""The opt-in "paper-code" evaluation: the original code's HSIC pass (the first 2000 training
images through the network in training mode) between each epoch's train and test evaluations.
It moves BN's running statistics and nothing else, and no recorded run's id changes."""

import pandas as pd
import pytest
import torch

from bnnlib import BinaryMLP, make_trainer
from bnnlib.config import RunConfig
from bnnlib.data import Dataset
from bnnlib.model import BN_EPS, BN_MOMENTUM
from bnnlib.paths import RESULTS_DIR
from bnnlib.store import TEXT_COLUMNS
from bnnlib.training import PAPER_CODE_PASS_IMAGES, MemberTraining


def tiny_dataset(n_train=2304, n_test=300, features=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    pixels = lambda n: torch.randint(0, 256, (n, features), generator=g).float() / 127.5 - 1  # noqa: E731
    labels = lambda n: torch.randint(0, 4, (n,), generator=g)  # noqa: E731
    return Dataset("tiny", pixels(n_train), labels(n_train), pixels(n_test), labels(n_test), n_classes=4)


def trained(evaluation, batch_norm=True, epochs=2):
    data = tiny_dataset()
    model = BinaryMLP([3], input_size=12, n_classes=4, hidden_sizes=(10, 8), activation="sign",
                      binary_weights=True, batch_norm=batch_norm, init=0.3)
    # batches of 8: 288 per epoch, so a pass's trace in the running statistics (0.9^288) is gone
    # by the next train evaluation, as with the paper's 468 batches of 128
    training = MemberTraining(model, make_trainer("DFA", model, lr=1e-3), batch_size=8, evaluation=evaluation)
    metrics = []
    for _ in range(epochs):
        training.train_epoch(data)
        metrics.append(training.evaluate(data))
    return training, metrics


def test_recorded_run_ids_do_not_change_and_paper_code_runs_have_their_own():
    runs = pd.read_csv(RESULTS_DIR / "paper" / "runs.csv", dtype=TEXT_COLUMNS).iloc[:20]
    for row in runs.itertuples():
        config = RunConfig(dataset=row.dataset, algorithm=row.algorithm, weights=row.weights, activation=row.activation,
                           batch_norm=bool(row.batch_norm), init=row.init, lr=row.lr, seed=int(row.seed))
        assert config.run_id == row.run_id and "evaluation" not in config.identity()
        other = RunConfig(**{**config.as_dict(), "evaluation": "paper-code"})
        assert other.run_id != config.run_id and other.identity()["evaluation"] == "paper-code"
        assert other.group_key() != config.group_key()  # never trained in one group with a standard run


def test_an_unknown_evaluation_is_refused_naming_the_accepted():
    with pytest.raises(ValueError, match="evaluation.*accepted: standard, paper-code"):
        RunConfig(dataset="mnist", algorithm="BP", evaluation="paper")


def test_training_is_the_same_and_only_the_test_evaluation_moves():
    standard, standard_metrics = trained("standard")
    paper, paper_metrics = trained("paper-code")
    for a, b in zip(standard.model.weights, paper.model.weights):
        assert torch.equal(a, b)  # the pass changes no weight: the same training, step for step
    for a, b in zip(standard_metrics, paper_metrics):
        torch.testing.assert_close(a["train_accuracy"], b["train_accuracy"], rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(standard.model.running_mean, paper.model.running_mean))
    # a paper-code run also evaluates the test set as a standard run does, before its pass
    for a, b in zip(standard_metrics, paper_metrics):
        assert "standard_test_accuracy" not in a
        torch.testing.assert_close(b["standard_test_accuracy"], a["test_accuracy"], rtol=0, atol=0)
    assert any(not torch.equal(b["standard_test_accuracy"], b["test_accuracy"]) for b in paper_metrics)


def test_the_pass_moves_running_statistics_by_hand():
    """After the pass, block 1's running mean and variance are 0.9 · before + 0.1 · the first 2000
    training images' batch statistics of its pre-activation (biased variance, as training's)."""
    training, _ = trained("standard", epochs=1)
    model, data = training.model, tiny_dataset()
    before_mean, before_var = model.running_mean[0].clone(), model.running_var[0].clone()
    x = data.x_train[:PAPER_CODE_PASS_IMAGES].double()
    z = x @ torch.where(model.weights[0][0] > 0, 1.0, -1.0).double()
    mean, var = z.mean(0), z.var(0, unbiased=False)
    training.paper_code_pass(data)
    torch.testing.assert_close(model.running_mean[0][0].double(),
                               (1 - BN_MOMENTUM) * before_mean[0].double() + BN_MOMENTUM * mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.running_var[0][0].double(),
                               (1 - BN_MOMENTUM) * before_var[0].double() + BN_MOMENTUM * var, rtol=1e-5, atol=1e-4)
    assert BN_EPS > 0


def test_without_batch_norm_the_two_evaluations_are_identical():
    _, standard = trained("standard", batch_norm=False)
    _, paper = trained("paper-code", batch_norm=False)
    for a, b in zip(standard, paper):
        assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_paper_code_run_records_both_test_evaluations_per_epoch(tmp_path, mnist_root):
    from bnnlib.runner import DataOptions, execute
    from bnnlib.store import ResultsStore

    base = dict(dataset="mnist", algorithm="DFA", weights="binary", activation="sign", batch_norm=True, init=0.1,
                lr=1e-4, epochs=2, n_train=640, n_test=300, batch_size=128)
    store = ResultsStore(tmp_path)
    standard, paper = RunConfig(**base), RunConfig(**base, evaluation="paper-code")
    execute([standard, paper], store, DataOptions(root=str(mnist_root)), progress=False)
    epochs = store.epochs().set_index(["run_id", "epoch"]).sort_index()
    mine, twin = epochs.loc[paper.run_id], epochs.loc[standard.run_id]
    assert (mine["evaluation"] == "paper-code").all() and twin["standard_test_accuracy"].isna().all()
    # trained apart (other groups), the same training: the same losses. (Its evaluations also keep
    # a trace of the passes here, 0.9^5 after 5 batches; after the paper's 468 there is none.)
    assert list(mine["loss"]) == list(twin["loss"])
    for name in ("accuracy", "precision", "f1"):
        assert mine[f"standard_test_{name}"].between(0, 1).all()
