"""Per-layer diagnostics and the SHALLOW control: hand-computed cases on tiny networks,
the promise that probing changes no number, and the runner/CLI plumbing."""

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnnlib.config import RunConfig
from bnnlib.diagnostics import DIAGNOSTIC_FIELDS, cosine, flip_ratio, pass_fraction
from bnnlib.model import BinaryMLP
from bnnlib.runner import DataOptions, execute
from bnnlib.store import ResultsStore
from bnnlib.trainers import TRAINERS, make_trainer
from bnnlib.training import MemberTraining

ROOT = Path(__file__).resolve().parents[1]


def _tiny(algorithm, batch_norm=False, seeds=(1, 2), lr=(1e-2, 1e-3), init=0.5):
    model = BinaryMLP(list(seeds), input_size=20, n_classes=4, hidden_sizes=(16, 12), activation="sign",
                      binary_weights=True, batch_norm=batch_norm, init=init, pixel_inputs=True)
    return model, make_trainer(algorithm, model, lr=list(lr))


def _batches(n_batches=9, batch=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_batches, batch, 20), generator=g).float() / 127.5 - 1  # pixel inputs
    labels = torch.randint(0, 4, (n_batches, batch), generator=g)
    return x, torch.nn.functional.one_hot(labels, 4).float() * 2 - 1


def _train(training, x, t):
    """One 'epoch' over the given batches, probing as MemberTraining.train_epoch does."""
    probe = training.probe
    if probe is not None:
        probe.start_epoch()
    for b in range(x.shape[0]):
        step = probe.step if probe is not None and probe.wants(b) else training.trainer.step
        step(x[b], t[b])
    return probe.end_epoch() if probe is not None else None


# ---------------------------------------------------------------------- hand-computed primitives
@pytest.mark.parametrize("z, expected", [
    ([[0.0, 0.5, -0.99, 1.0]], 0.75),   # |z| = 1 blocks the STE (1_{|z|<1})
    ([[2.0, -3.0, 1.0, -1.0]], 0.0),
    ([[0.1, -0.2, 0.3, -0.4]], 1.0),
])
def test_pass_fraction_counts_where_the_ste_passes(z, expected):
    assert pass_fraction(torch.tensor([z])).tolist() == [expected]


def test_flip_ratio_counts_sign_changes_with_sign_of_zero_negative():
    before = torch.tensor([[[0.5, -0.5, 0.2, -0.1], [0.3, 0.3, -0.3, 0.0]]])
    after = torch.tensor([[[-0.5, -0.5, 0.0, 0.1], [0.3, 0.3, -0.3, 0.2]]])
    # flips: 0.5→−0.5, 0.2→0 (sign(0) = −1), −0.1→0.1, 0→0.2: 4 of 8
    assert flip_ratio(before > 0, after).tolist() == [0.5]


@pytest.mark.parametrize("a, b, expected", [
    ([1.0, 0.0], [1.0, 1.0], 1 / math.sqrt(2)),
    ([1.0, 2.0], [2.0, 4.0], 1.0),
    ([1.0, 0.0], [-3.0, 0.0], -1.0),
    ([0.0, 0.0], [1.0, 0.0], float("nan")),
])
def test_cosine_by_hand(a, b, expected):
    value = float(cosine(torch.tensor([[a]]), torch.tensor([[b]]))[0])
    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------- the probe on a tiny network
@pytest.mark.parametrize("algorithm", TRAINERS.names())
@pytest.mark.parametrize("batch_norm", [False, True])
def test_probing_changes_no_number(algorithm, batch_norm):
    x, t = _batches()
    weights = []
    for every in (0, 2):
        model, trainer = _tiny(algorithm, batch_norm)
        training = MemberTraining(model, trainer, batch_size=32)
        training.enable_diagnostics(every)
        losses = [trainer.step(x[0], t[0])]
        _train(training, x, t)
        weights.append([w.clone() for w in model.weights] + [g.clone() for g in model.bn_gamma] + losses)
    assert all(torch.equal(a, b) for a, b in zip(*weights))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_bp_is_aligned_with_itself_and_its_norms_match(batch_norm):
    model, trainer = _tiny("BP", batch_norm, lr=(1e-4, 1e-5))
    training = MemberTraining(model, trainer, batch_size=32)
    training.enable_diagnostics(1)
    rows = _train(training, *_batches())
    for member in rows:
        assert [r["layer_name"] for r in member] == ["block 1", "block 2", "output"]
        for r in member:
            assert r["alignment_cosine"] == pytest.approx(1.0, abs=1e-9)
            assert r["alignment_angle"] == pytest.approx(0.0, abs=1e-3)
            assert r["update_norm"] == pytest.approx(r["bp_update_norm"], rel=1e-12)
            assert r["probed_batches"] == 9 and set(DIAGNOSTIC_FIELDS) <= set(r)


def test_update_norm_is_the_weight_change_of_one_unclipped_step():
    model, trainer = _tiny("DFA", lr=(1e-4, 1e-5), init=0.1)  # nothing reaches the ±1 clip
    training = MemberTraining(model, trainer, batch_size=32)
    training.enable_diagnostics(1)
    x, t = _batches(n_batches=1)
    before = [w.clone() for w in model.weights]
    rows = _train(training, x, t)
    for s, member in enumerate(rows):
        for k, r in enumerate(member):
            change = float((model.weights[k][s] - before[k][s]).double().norm())
            # float32 rounding of W + ΔW blurs the difference slightly
            assert r["update_norm"] == pytest.approx(change, rel=1e-4)
            assert r["weight_change_norm"] == pytest.approx(change, rel=1e-12)


def test_flip_ratio_of_an_epoch_is_the_share_of_binary_weights_that_changed_sign():
    model, trainer = _tiny("DFA", lr=(0.5, 0.5), init=0.01)  # a huge lr flips many weights
    training = MemberTraining(model, trainer, batch_size=32)
    training.enable_diagnostics(4)
    before = [(w > 0).clone() for w in model.weights]
    rows = _train(training, *_batches())
    for k in range(3):
        counted = [int(((model.weights[k][s] > 0) != before[k][s]).sum()) for s in range(2)]
        size = model.weights[k][0].numel()
        assert [r[k]["flip_ratio"] for r in rows] == [c / size for c in counted]
        assert all(c > 0 for c in counted)


def test_shallow_trains_the_output_layer_only():
    x, t = _batches(n_batches=3)
    for batch_norm in (False, True):
        model, trainer = _tiny("SHALLOW", batch_norm)
        hidden = [w.clone() for w in model.weights[:-1]] + [g.clone() for g in model.bn_gamma + model.bn_beta]
        output = model.weights[-1].clone()
        bp_model, bp = _tiny("BP", batch_norm)
        trainer.step(x[0], t[0])
        bp.step(x[0], t[0])
        assert all(torch.equal(a, b) for a, b in
                   zip(hidden, model.weights[:-1] + model.bn_gamma + model.bn_beta))
        assert not torch.equal(output, model.weights[-1])
        # its output update is BP's (every rule trains the output layer by its true gradient)
        assert torch.equal(model.weights[-1], bp_model.weights[-1])


def test_shallow_probe_reports_no_hidden_update_and_no_alignment():
    model, trainer = _tiny("SHALLOW")
    training = MemberTraining(model, trainer, batch_size=32)
    training.enable_diagnostics(3)
    rows = _train(training, *_batches())
    for member in rows:
        for r in member[:-1]:
            assert r["update_norm"] == 0 and r["flip_ratio"] == 0 and math.isnan(r["alignment_cosine"])
            assert r["bp_update_norm"] > 0
        assert member[-1]["alignment_cosine"] == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------------------- runner and CLI
@pytest.mark.slow
def test_execute_records_diagnostics_beside_epochs(tmp_path, mnist_root):
    configs = [RunConfig(dataset="mnist", algorithm=a, weights="binary", activation="sign", init=0.1, lr=1e-4,
                         epochs=2, seed=1, n_train=640, n_test=300) for a in ("DFA", "SHALLOW")]
    store = ResultsStore(tmp_path / "probed")
    execute(configs, store, DataOptions(root=str(mnist_root)), progress=False, diagnostics_every=2)
    table = store.table("diagnostics.csv")
    assert len(table) == 2 * 2 * 5 and set(table["probed_batches"]) == {3}  # 5 batches: 0, 2, 4
    plain = ResultsStore(tmp_path / "plain")
    execute(configs, plain, DataOptions(root=str(mnist_root)), progress=False)
    assert not (plain.directory / "diagnostics.csv").exists()
    columns = ["run_id", "epoch", "loss", "test_accuracy", "train_accuracy"]
    assert plain.epochs()[columns].equals(store.epochs()[columns])


@pytest.mark.slow
def test_bad_diagnostics_value_is_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bnnlib", "run", "--dataset", "mnist", "--algorithm", "SHALLOW",
                             "--diagnostics", "-3", "--results", str(tmp_path), "--no-download"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "diagnostics=-3 is not accepted; accepted: an integer ≥ 0 (0: off; N: probe every N-th batch)" in result.stderr
    assert not (tmp_path / "epochs.csv").exists()
    help_text = subprocess.run([sys.executable, "-m", "bnnlib", "protocol", "--help"], capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert "SHALLOW" in help_text and "--diagnostics" in help_text


# ---------------------------------------------------------------------- the chapter's verdicts
def _synthetic(accuracies, cosines):
    """accuracy frame and diagnostics frame for one setting, 4 seeds per rule, 2 epochs (alignment
    ∓ 0.0725 and flips 0.02 then 0: their means over the epochs are the values given)."""
    import pandas as pd
    acc, diag = [], []
    for algorithm, values in accuracies.items():
        for seed, value in enumerate(values):
            run_id = f"{algorithm}-{seed}"
            acc.append({"run_id": run_id, "dataset": "mnist", "batch_norm": False, "algorithm": algorithm,
                        "best_test_accuracy": value, "diverged": False})
            for (epoch, drift, flips), (layer, name) in itertools.product(
                    [(1, -0.0725, 0.02), (2, 0.0725, 0.0)], enumerate(["block 1", "block 2", "output"], start=1)):
                cos = 1.0 if algorithm == "BP" or name == "output" else cosines.get(algorithm, float("nan")) + drift
                diag.append({"run_id": run_id, "dataset": "mnist", "batch_norm": False, "algorithm": algorithm,
                             "epoch": epoch, "layer": layer, "layer_name": name, "alignment_cosine": cos + 0.01 * seed,
                             "bp_update_norm": 1.0 if name != "block 1" else 0.01, "update_norm": 1.0,
                             "pass_fraction": 0.5, "flip_ratio": flips, "parameters": 100,
                             "bp_update_rms": 0.1 if name != "block 1" else 0.001})
                diag[-1]["update_rms"] = diag[-1]["bp_update_rms"] if algorithm == "BP" else 0.1
                diag[-1]["update_vs_bp"] = diag[-1]["update_rms"] / diag[-1]["bp_update_rms"]
    return pd.DataFrame(acc), pd.DataFrame(diag)


def test_verdicts_compare_with_shallow_and_classify_alignment():
    import pandas as pd
    from bnnlib.book.mechanism import epoch_change, epoch_change_table, findings, verdicts
    accuracy, frame = _synthetic(
        {"BP": [0.50, 0.51, 0.52, 0.53], "DFA": [0.80, 0.81, 0.82, 0.83], "DRTP": [0.30, 0.31, 0.30, 0.31],
         "SHALLOW": [0.50, 0.52, 0.51, 0.53]},
        {"DFA": 0.2, "DRTP": -0.015})
    both = verdicts(pd.concat([frame.assign(dataset="fashion-mnist"), frame]),
                    pd.concat([accuracy.assign(dataset="fashion-mnist"), accuracy]))
    assert list(dict.fromkeys(both["dataset"])) == ["mnist", "fashion-mnist"]  # as every page lists them
    table = verdicts(frame, accuracy).set_index("algorithm")
    assert table.loc["DFA", "hidden layers"] == "learn (beat SHALLOW)"
    assert table.loc["DRTP", "hidden layers"] == "hurt (below SHALLOW)"
    assert table.loc["BP", "hidden layers"] == "no better than SHALLOW"
    assert table.loc["DFA", "vs_shallow"] == pytest.approx(0.815 - 0.515)
    assert table.loc["DFA", "updates"] == "aligned" and table.loc["DRTP", "updates"] == "orthogonal"
    assert table.loc["DFA", "alignment"] == pytest.approx(0.2 + 0.015)  # hidden layers, mean over seeds
    assert table.loc["BP", "BP reach"] == pytest.approx(0.01)            # block 1 over output, BP's norms
    text = findings(table.reset_index(), frame)
    # one setting measured (as the 100-epoch runs are recorded): "in the one setting", not "in 1 of 1 settings"
    assert "beats SHALLOW in the one setting (MNIST without BN)" in text["mech_dfa"]
    assert "(above 0 with 95 % confidence in the one setting)" in text["mech_dfa"]
    assert "(above 0 with 95 % confidence in no setting)" in text["mech_drtp"]
    assert text["mech_shallow"].endswith("reach a mean best test accuracy of 51.5 % in the one setting.")
    assert "is below SHALLOW in 2 of 2 settings (MNIST without BN, Fashion-MNIST without BN)" in findings(
        both, pd.concat([frame.assign(dataset="fashion-mnist"), frame]))["mech_drtp"]
    assert "100 times as much per weight" in text["mech_dfa"]           # 0.1 / 0.001
    assert "0.01 times its update of the output layer" in text["mech_bp"]
    assert text["mech_answer"].startswith("Without BN, training the hidden layers with BP does not consistently "
                                          "raise")
    # epoch by epoch: DFA 0.2 + 0.015 (seeds) ∓ 0.0725, DRTP −0.015 + 0.015 ∓ 0.0725; flips 2 % then 0
    assert text["mech_over_epochs"] == (
        "From epoch 1 to epoch 2, the alignment with BP's update grows by more than 0.02 on every dataset for DFA "
        "and DRTP without BN; fewer binary weights flip in the last epoch than in the first, for every rule, "
        "dataset and BN setting; the share of the hidden blocks' pre-activations inside the STE window |z| < 1 "
        "goes without BN from 50.0 % in epoch 1 to 50.0 % in epoch 2 (every rule and dataset).")
    table = epoch_change_table(epoch_change(frame)).set_index("rule")
    assert set(table["data"]) == {"MNIST, no BN"}
    assert table.loc["DFA", "cosine with BP, epoch 1"] == "0.14" and table.loc["DFA", "cosine with BP, epoch 2"] == "0.29"
    assert table.loc["DRTP", "cosine with BP, epoch 1"] == "-0.07" and table.loc["BP", "cosine with BP, epoch 1"] == "–"
    assert table.loc["BP", "flipped (%), epoch 1"] == "2.0" and table.loc["BP", "flipped (%), epoch 2"] == "0.00"
    assert table.loc["BP", "|z| < 1 (%), epoch 1"] == table.loc["BP", "|z| < 1 (%), epoch 2"] == "50.0"
    assert "DFA and DRTP do not all raise it" in text["mech_answer"] and "100 times larger" in text["mech_answer"]


@pytest.mark.slow
def test_protocol_mechanism_runs_every_rules_probed_binary_finals(tmp_path, mnist_mirror):
    """``protocol --mechanism`` as the README gives it: grids (SHALLOW's too), then the probed runs."""
    import pandas as pd
    result = subprocess.run([sys.executable, "-m", "bnnlib", "protocol", "--budget", "smoke", "--mechanism",
                             "--dataset", "mnist", "--batch-norm", "off", "--results", str(tmp_path), "--quiet",
                             "--no-download", "--data-mirror", str(mnist_mirror), "--data-root", str(tmp_path / "data")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    runs = pd.read_csv(tmp_path / "diagnostics" / "runs.csv")
    assert sorted(set(runs["algorithm"])) == ["BP", "DFA", "DRTP", "SHALLOW"]
    assert set(runs["weights"]) == {"binary"} and set(runs["activation"]) == {"sign"} and len(runs) == 8
    table = pd.read_csv(tmp_path / "diagnostics" / "diagnostics.csv")
    assert len(table) == 8 * 2 * 5  # runs × smoke epochs × layers


@pytest.mark.parametrize("bp, ratios, tail", [
    ((-0.1, "hurt (below SHALLOW)"), (2.0, 6.5),
     "but are 2.00 to 6.50 times larger per weight in block 1 than BP's at the same weights and batch."),
    ((-0.1, "hurt (below SHALLOW)"), (0.5, 6.5),
     "and are 0.50 to 6.50 times as large per weight in block 1 as BP's at the same weights and batch."),
    ((-0.1, "hurt (below SHALLOW)"), (0.799, 12.34),
     "and are 0.80 to 12.3 times as large per weight in block 1 as BP's at the same weights and batch."),
])
def test_the_chapters_answer_says_larger_only_where_every_alternatives_update_is(bp, ratios, tail):
    """The short answer's last clause, from each alternative's block-1 update over BP's at the same
    weights (median over seeds) without BN: "larger" only where every one is above 1."""
    answer = _short_answer(bp, ratios)
    assert answer.startswith("Without BN, training the hidden layers with BP lowers the accuracy that the network's "
                             "random binary features give by themselves (BP − SHALLOW: -10.0 points), while DFA and "
                             "DRTP raise it (+25.0 to +30.0 points). Their hidden updates point partly the way BP's "
                             "do (cosine 0.20 to 0.25) ")
    assert answer.endswith(tail)


@pytest.mark.parametrize("bp, joined", [
    ((-0.1, "hurt (below SHALLOW)"), "lowers … (BP − SHALLOW: -10.0 points), while DFA and DRTP raise it"),
    ((0.1, "learn (beat SHALLOW)"), "raises … (BP − SHALLOW: +10.0 points), and DFA and DRTP raise it more"),
    ((0.27, "learn (beat SHALLOW)"), "raises … (BP − SHALLOW: +27.0 points), as DFA and DRTP do"),
])
def test_the_chapters_answer_sets_bp_against_the_alternatives_only_where_they_differ(bp, joined):
    """At 100 epochs BP's hidden training may raise the random features' accuracy too: then the
    alternatives are joined to it ("and … more", "as … do"), not set against it ("while")."""
    answer = _short_answer(bp, (2.0, 6.5))
    effect, rest = joined.split(" … ")
    assert answer.startswith(f"Without BN, training the hidden layers with BP {effect} the accuracy that the network's "
                             f"random binary features give by themselves {rest} (+25.0 to +30.0 points).")


def _short_answer(bp, ratios) -> str:
    """bnnlib.book.mechanism._answer for one setting: BP's (vs SHALLOW, verdict), DFA +0.30 and DRTP
    +0.25 above SHALLOW, and the alternatives' block-1 update over BP's."""
    import pandas as pd
    from bnnlib.book.mechanism import _answer
    table = pd.DataFrame([dict(dataset="mnist", batch_norm=False, algorithm=a, vs_shallow=v, alignment=c,
                               **{"hidden layers": w})
                          for a, v, c, w in (("BP", bp[0], float("nan"), bp[1]),
                                             ("DFA", 0.3, 0.2, "learn (beat SHALLOW)"),
                                             ("DRTP", 0.25, 0.25, "learn (beat SHALLOW)"))])
    medians = pd.DataFrame([dict(dataset="mnist", batch_norm=False, algorithm=a, layer_name="block 1", update_vs_bp=r)
                            for a, r in zip(("DFA", "DRTP"), ratios)]).set_index(
        ["dataset", "batch_norm", "algorithm", "layer_name"])
    return _answer(table, medians, [("mnist", False)])


@pytest.mark.parametrize("block_1, block_4, says", [
    ([0.02, 0.03], [0.53, 0.60], "grows from 0.02–0.03 in block 1 to 0.53–0.60 in block 4"),
    ([0.50, 0.60], [0.10, 0.20], "falls from 0.50–0.60 in block 1 to 0.10–0.20 in block 4"),
    ([0.16, 0.55], [0.28, 0.68], "is 0.16–0.55 in block 1 and 0.28–0.68 in block 4"),  # overlapping: no verb
    ([0.20, 0.20], [0.30], "grows from 0.20 in block 1 to 0.30 in block 4"),
    ([], [0.30], "is not measured in blocks 1 and 4"),
])
def test_the_alignment_from_block_1_to_block_4_takes_its_verb_from_the_numbers(block_1, block_4, says):
    import pandas as pd
    from bnnlib.book.mechanism import _from_block_1_to_4
    assert _from_block_1_to_4(pd.Series(block_1, dtype=float), pd.Series(block_4, dtype=float)) == says
