"""One real epoch on MNIST at the protocol's hyperparameters."""

import pytest

from bnnlib import BinaryMLP, make_trainer
from bnnlib.training import MemberTraining


@pytest.mark.slow
def test_one_epoch_of_bp_continuous_tanh_learns_mnist(mnist):
    model = BinaryMLP([1], activation="tanh", init=0.1)
    training = MemberTraining(model, make_trainer("BP", model, lr=1e-4))
    loss = training.train_epoch(mnist)
    metrics = training.evaluate(mnist)
    assert loss.item() < 0.15  # starts near 1.0 (untrained tanh outputs against ±1 targets)
    assert metrics["test_accuracy"].item() > 0.88
    assert metrics["train_accuracy"].item() > 0.88
