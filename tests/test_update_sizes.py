"""The mechanism chapter's update sizes: what each recorded quantity is, checked by hand on one
probed step, and the decomposition of one rule's update over BP's into learning rate × weights ×
rule (bnnlib.book.update_sizes)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib.book.update_sizes import FACTORS, decomposition, finding, page_table, shares
from bnnlib.model import BinaryMLP
from bnnlib.trainers import make_trainer
from bnnlib.training import MemberTraining


def one_probed_step(algorithm, lr, init):
    model = BinaryMLP([1], input_size=12, n_classes=4, hidden_sizes=(10, 8), activation="sign",
                      binary_weights=True, init=init)
    training = MemberTraining(model, make_trainer(algorithm, model, lr=lr), batch_size=32)
    training.enable_diagnostics(1)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(32, 12, generator=g) * 2 - 1) * 0.3
    t = torch.nn.functional.one_hot(torch.randint(0, 4, (32,), generator=g), 4).float() * 2 - 1
    twin = copy.deepcopy(model)  # BP at the same weights, batch and learning rate, by hand
    before = [w.clone() for w in model.weights]
    make_trainer("BP", twin, lr=lr).step(x, t)
    training.probe.step(x, t)
    rows = training.probe.end_epoch()[0]
    return rows, [model.weights[k][0] - before[k][0] for k in range(3)], \
        [twin.weights[k][0] - before[k][0] for k in range(3)]


@pytest.mark.parametrize("algorithm", ["DFA", "DRTP", "BP"])
def test_both_recorded_update_sizes_are_the_steps_they_say_by_hand(algorithm):
    """update_norm is ‖the rule's own step‖ and bp_update_norm ‖the step BP would take from the
    same weights on the same batch at the same learning rate‖, before clipping (nothing reaches
    ±1 here); per weight, each divided by √parameters."""
    rows, own, bp = one_probed_step(algorithm, lr=1e-4, init=0.1)
    for row, own_step, bp_step in zip(rows, own, bp):
        assert row["parameters"] == own_step.numel()
        assert row["update_norm"] == pytest.approx(float(own_step.double().norm()), rel=1e-4)
        assert row["bp_update_norm"] == pytest.approx(float(bp_step.double().norm()), rel=1e-4)


def frame(rows):
    return pd.DataFrame([dict(dataset="mnist", batch_norm=False, layer_name="block 1", parameters=100, epoch=1, **r)
                         for r in rows])


def test_a_rules_update_over_bps_is_learning_rate_times_weights_times_rule():
    """BP at lr 1e-5 moves 6e-5 per weight; DFA at lr 1e-6 moves 2e-6, where BP at DFA's weights
    and learning rate would move 2e-7. Ratio 1/30 = (1e-6/1e-5) × ((2e-7/1e-6)/(6e-5/1e-5)) ×
    (2e-6/2e-7) = 0.1 × 1/30 × 10."""
    rows = [dict(algorithm="BP", run_id=f"bp{s}", init=0.1, lr=1e-5, update_rms=6e-5, bp_update_rms=6e-5)
            for s in range(3)]
    rows += [dict(algorithm="DFA", run_id=f"dfa{s}", init=0.001, lr=1e-6, update_rms=2e-6, bp_update_rms=2e-7)
             for s in range(3)]
    rows += [dict(algorithm="SHALLOW", run_id=f"sh{s}", init=0.1, lr=1e-4, update_rms=0.0, bp_update_rms=5e-5)
             for s in range(3)]  # moves no hidden weight: nothing to decompose
    table = decomposition(frame(rows))
    assert list(table["algorithm"]) == ["DFA"]
    row = table.iloc[0]
    assert (row["algorithm"], row["init"], row["lr"], row["BP init"], row["BP lr"]) == ("DFA", 0.001, 1e-6, 0.1, 1e-5)
    assert row["ratio"] == pytest.approx(1 / 30)
    assert (row["learning rate"], row["weights"], row["rule"]) == pytest.approx((0.1, 1 / 30, 10))
    assert np.prod([row[f] for f in FACTORS]) == pytest.approx(row["ratio"])
    share = shares(table).iloc[0]
    # log10: −1 − 1.477 + 1 = −1.477; learning rate 67.7 %, weights 100 %, rule −67.7 %
    assert (share["learning rate"], share["weights"], share["rule"]) == pytest.approx((67.7, 100.0, -67.7), abs=0.1)
    assert sum(share[f] for f in FACTORS) == pytest.approx(100, abs=0.2)


def test_the_page_says_which_factor_makes_a_rules_update_smaller():
    """The hand example above on the page: DFA's 1/30 of BP's is the learning rate (×0.1) and the
    weights (×0.033), while the rule alone would move the layer ×10 as much as BP."""
    rows = [dict(algorithm="BP", run_id=f"bp{s}", init=0.1, lr=1e-5, update_rms=6e-5, bp_update_rms=6e-5)
            for s in range(3)]
    rows += [dict(algorithm="DFA", run_id=f"dfa{s}", init=0.001, lr=1e-6, update_rms=2e-6, bp_update_rms=2e-7)
             for s in range(3)]
    table = decomposition(frame(rows))
    shown = page_table(table).iloc[0]
    assert (shown["rule's (init, lr)"], shown["BP's (init, lr)"]) == ("0.001, 1e-6", "0.1, 1e-5")
    assert (shown["rule's update / BP's"], shown["learning-rate factor"], shown["weights factor"],
            shown["rule factor"]) == \
        ("×0.033", "×0.1", "×0.033", "×10")
    text = finding(table)
    assert text.startswith("Without BN, DFA's update of block 1 is ×0.033 BP's own = learning rate ×0.1 · "
                           "weights ×0.033 · rule ×10.")
    assert "above ×1" in text
    assert "the learning rate its grid search chose and the weights its runs reached" in text
    # two rules shrunk by the same factors: one sentence, not the same sentence twice
    rows += [dict(row, algorithm="DRTP", run_id=row["run_id"].replace("dfa", "drtp")) for row in rows
             if row["algorithm"] == "DFA"]
    text = finding(decomposition(frame(rows)))
    assert text.endswith("DFA's and DRTP's own updates without BN are nonetheless smaller than BP's: the learning "
                         "rates their grid searches chose and the weights their runs reached (from the init their "
                         "grid searches chose) make it so, not the rule.")
    assert text.count("nonetheless") == 1
