"""Runs as data: a RunConfig's identity, validation (one clear line per bad field) and fields."""

import dataclasses

import pytest

from bnnlib.cli import batch_norm_settings, build_parser, run_config
from bnnlib.config import SWITCH, RunConfig, switch_word


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


# ------------------------------------------------------------- the command line, derived from the fields
RUN = ["run", "--dataset", "mnist", "--algorithm", "DFA"]
BATCH_NORM_WORDS = [  # (what follows the command, BN of the run, settings the protocol runs)
    ([], False, [False, True]),
    (["--batch-norm"], True, [True]),
    (["--batch-norm", "on"], True, [True]),
    (["--batch-norm", "off"], False, [False]),
    (["--batch-norm=on"], True, [True]),
]


@pytest.mark.parametrize("words,run_bn,protocol_settings", BATCH_NORM_WORDS)
def test_batch_norm_is_spelled_the_same_in_run_and_protocol(words, run_bn, protocol_settings):
    parser = build_parser()
    assert run_config(parser.parse_args(RUN + words)).batch_norm is run_bn
    assert batch_norm_settings(parser.parse_args(["protocol"] + words).batch_norm) == protocol_settings
    assert batch_norm_settings(parser.parse_args(["protocol", "--batch-norm", "both"]).batch_norm) == [False, True]
    assert [switch_word(v) for v in (False, True)] == list(SWITCH)


def test_run_options_are_the_run_fields_with_their_defaults():
    args = build_parser().parse_args(RUN)
    config = run_config(args)
    for f in dataclasses.fields(RunConfig):
        if f.metadata["cli"] and f.default is not dataclasses.MISSING:
            assert getattr(config, f.name) == f.default, f.name
    assert config == RunConfig(dataset="mnist", algorithm="DFA")


@pytest.mark.parametrize("words", [["--batch-norm", "yes"], ["--algorithm", "SGD"], ["--lr", "x"]])
def test_run_options_refuse_what_the_fields_refuse(words, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--dataset", "mnist", "--algorithm", "DFA"] + words)
    assert "invalid" in capsys.readouterr().err
