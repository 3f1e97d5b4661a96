"""Runs as data: a RunConfig's identity, validation (one clear line per bad field) and fields."""

import dataclasses

import pytest

from bnnlib.config import RunConfig


def test_run_id_is_stable_and_ignores_epochs_and_device():
    config = RunConfig(dataset="mnist", algorithm="DFA", weights="binary", activation="sign", init=0.001,
                       lr=1e-6, seed=2)
    # pinned: changing how ids are computed would orphan every stored result
    assert config.run_id == RunConfig.from_dict(dict(dataset="mnist", algorithm="DFA", weights="binary",
                                                     activation="sign", init=0.001, lr=0.000001, seed=2)).run_id
    assert config.run_id == dataclasses.replace(config, epochs=5, device="cuda").run_id
    assert config.run_id != dataclasses.replace(config, seed=3).run_id
    assert config.run_id != dataclasses.replace(config, n_train=1000).run_id
    assert config.run_id == "8f90de100b9092bd"


BAD_CONFIGS = [
    (dict(dataset="svhn"), r"dataset='svhn' is not accepted; accepted: mnist, fashion-mnist, cifar10"),
    (dict(algorithm="SGD"), r"algorithm='SGD' is not accepted; accepted: BP, DFA, DRTP"),
    (dict(weights="ternary"), r"weights='ternary' is not accepted; accepted: continuous, binary"),
    (dict(activation="relu"), r"activation='relu' is not accepted; accepted: sign, tanh"),
    (dict(batch_norm="yes"), r"batch_norm='yes' is not accepted; accepted: True, False"),
    (dict(lr=0), r"lr=0 is not accepted; accepted: a finite number > 0"),
    (dict(init=-1.0), r"init=-1.0 is not accepted"),
    (dict(epochs=0), r"epochs=0 is not accepted; accepted: a positive integer"),
    (dict(epochs=2.5), r"epochs=2.5 is not accepted"),
    (dict(seed=-1), r"seed=-1 is not accepted"),
    (dict(device="tpu"), r"device='tpu' is not accepted; accepted: cpu, cuda, cuda:N"),
]


@pytest.mark.parametrize("change,message", BAD_CONFIGS)
def test_invalid_config_names_field_and_accepted_values(change, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{"dataset": "mnist", "algorithm": "BP", **change})


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match=r"unknown run field\(s\) learning_rate; accepted: .*lr"):
        RunConfig.from_dict({"dataset": "mnist", "algorithm": "BP", "learning_rate": 1e-4})
