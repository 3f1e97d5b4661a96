"""Deployment: bit-packed export of fully binary runs, integer-only inference equal to the float model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib import deploy
from bnnlib.config import RunConfig
from bnnlib.data import load_dataset
from bnnlib.runner import DataOptions, execute
from bnnlib.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]


def _binary_run(dataset, batch_norm, **extra):
    return RunConfig(dataset=dataset, algorithm="DFA", weights="binary", activation="sign", batch_norm=batch_norm,
                     init=0.001, lr=1e-4 if batch_norm else 1e-6, seed=2, epochs=1, n_train=12800, **extra)


@pytest.mark.parametrize("dataset,batch_norm", [("mnist", False), ("mnist", True),
                                                ("fashion-mnist", False), ("fashion-mnist", True)])
@pytest.mark.slow
def test_packed_predictions_equal_the_float_model_on_every_test_image(tmp_path, mnist_root, dataset, batch_norm):
    if dataset == "fashion-mnist" and not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    store = ResultsStore(tmp_path / "results")
    config = _binary_run(dataset, batch_norm)
    execute([config], store, DataOptions(root=str(mnist_root)), progress=False, keep_checkpoints=True)
    data = load_dataset(dataset, root=mnist_root)
    header = deploy.export(store, config.run_id, tmp_path / "model.bnn", verify_on=data)
    assert header["verified_on"] == {"dataset": dataset, "images": 10000, "agreement": 1.0}
    _, float_model = deploy.float_model(store, config.run_id)
    network = deploy.PackedNetwork.load(tmp_path / "model.bnn")
    expected = float_model.predict(data.x_test)[0].numpy()
    assert np.array_equal(network.predict(deploy.pixels(data.x_test)), expected)
    assert np.array_equal(network.predict(deploy.pixels(data.x_test[:1])), expected[:1])  # batch 1 too
    recorded = store.epochs().iloc[-1]["test_accuracy"]
    assert (expected == data.labels_test.numpy()).mean() == pytest.approx(recorded, abs=0)


def test_thresholds_fold_negative_gamma_and_ties_exactly():
    """BN with negative, zero and positive γ and running statistics that put thresholds on
    integers: the packed network agrees with the float model on many random images."""
    from bnnlib import BinaryMLP
    g = torch.Generator().manual_seed(0)
    model = BinaryMLP([1], input_size=40, hidden_sizes=(30, 20), activation="sign", binary_weights=True,
                      batch_norm=True, pixel_inputs=True, init=0.5)
    for k, n in enumerate((30, 20)):
        model.bn_gamma[k].copy_(torch.randn(1, 1, n, generator=g))
        model.bn_gamma[k][0, 0, 0] = 0.0
        model.bn_beta[k].copy_(torch.randn(1, 1, n, generator=g))
        model.running_mean[k].copy_(torch.randint(-6, 7, (1, 1, n), generator=g).float() * (255.0 if k == 0 else 1.0)
                                    / (255.0 if k == 0 else 1.0))
        model.running_var[k].copy_(torch.rand(1, 1, n, generator=g) * 4 + 0.5)
    layers = []
    fan_ins = [40, 30]
    for k in range(2):
        signs = (model.effective_weight(k)[0] > 0).T.contiguous().numpy()
        modes, limits = deploy._thresholds(model, k, fan_ins[k], 255.0 if k == 0 else 1.0)
        layers.append(deploy.PackedLayer(signs, modes, limits))
    assert set(np.concatenate([layer.modes for layer in layers])) >= {deploy.ABOVE, deploy.BELOW}
    header = {"input_size": 40, "hidden_sizes": [30, 20], "n_classes": 10, "batch_norm": True}
    network = deploy.PackedNetwork(header, layers, model.weights[-1][0].numpy())
    p = torch.randint(0, 256, (5000, 40), generator=g)
    x = p.to(torch.float32).div(127.5).sub(1.0)
    assert np.array_equal(network.predict(p.to(torch.uint8).numpy()), model.predict(x)[0].numpy())


def test_summary_counts_bits_bytes_and_macs():
    from bnnlib import BinaryMLP
    table = deploy.summary(BinaryMLP([1], activation="sign", binary_weights=True, batch_norm=False))
    total = table.set_index("layer").loc["total"]
    assert total["1-bit parameters"] == 784 * 700 + 700 * 500 + 500 * 300 + 300 * 200 == 1_108_800
    assert total["32-bit parameters"] == 200 * 10 and total["float MACs"] == 2000
    # bits packed 8 per byte per output row, 5 bytes per threshold, 4 bytes per float
    assert total["deployed bytes"] == 700 * 98 + 500 * 88 + 300 * 63 + 200 * 38 + 5 * 1700 + 8000
    assert total["float32 bytes"] == 4 * (1_108_800 + 2000)
    assert total["compression"] >= 25
    continuous = deploy.summary(BinaryMLP([1], activation="tanh")).set_index("layer").loc["total"]
    assert continuous["compression"] == 1.0 and continuous["1-bit parameters"] == 0


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "bnnlib", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow
def test_export_summary_predict_as_a_new_user_runs_them(tmp_path, mnist_root):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BNNLIB_DATA_ROOT": str(mnist_root)}
    results = tmp_path / "results"
    trained = _cli("run", "--dataset", "mnist", "--algorithm", "DFA", "--weights", "binary", "--activation", "sign",
                   "--batch-norm", "on", "--init", "0.001", "--lr", "1e-4", "--epochs", "1", "--n-train", "6400",
                   "--keep-checkpoints", "--quiet", "--results", results, env=env)
    assert trained.returncode == 0, trained.stderr
    run_id = pd.read_csv(results / "runs.csv")["run_id"].iloc[0]
    exported = _cli("export", results, run_id, "-o", tmp_path / "model.bnn", env=env)
    assert exported.returncode == 0, exported.stderr
    assert "agreement with the float model on the 10000 mnist test images: 100.00 %" in exported.stdout
    assert (tmp_path / "model.bnn").stat().st_size < 160_000
    summary = _cli("summary", tmp_path / "model.bnn", env=env)
    assert summary.returncode == 0 and "total" in summary.stdout and "smaller" in summary.stdout
    predicted = _cli("predict", tmp_path / "model.bnn", "--dataset", "mnist", env=env)
    assert predicted.returncode == 0, predicted.stderr
    accuracy = float(re.search(r"accuracy=(0\.\d{4})", predicted.stdout).group(1))
    assert "10000 predictions" in predicted.stdout
    assert accuracy == pytest.approx(pd.read_csv(results / "epochs.csv")["test_accuracy"].iloc[-1], abs=5e-5)


@pytest.mark.slow
def test_export_refuses_what_it_cannot_export(tmp_path, mnist_root):
    store = ResultsStore(tmp_path)
    data = DataOptions(root=str(mnist_root))
    continuous = RunConfig(dataset="mnist", algorithm="DFA", epochs=1, n_train=256, n_test=100)
    unkept = _binary_run("mnist", False, n_test=100)
    execute([continuous, unkept], store, data, progress=False, keep_checkpoints=False)
    with pytest.raises(deploy.ExportError, match="continuous weights and tanh activations; accepted: a fully binary"):
        deploy.export(store, continuous.run_id, tmp_path / "a.bnn")
    with pytest.raises(deploy.ExportError, match="has no kept trained state"):
        deploy.export(store, unkept.run_id, tmp_path / "b.bnn")
    with pytest.raises(deploy.ExportError, match="not in .*runs.csv"):
        deploy.export(store, "0" * 16, tmp_path / "c.bnn")
    store.update_runs([{**store.run_record(unkept.run_id), "status": "running"}])
    with pytest.raises(deploy.ExportError, match="is running, not complete"):
        deploy.export(store, unkept.run_id, tmp_path / "d.bnn")
    (tmp_path / "e.bnn").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a bnnlib packed network"):
        deploy.PackedNetwork.load(tmp_path / "e.bnn")


@pytest.mark.slow
def test_the_protocol_exports_its_fully_binary_finals(tmp_path, mnist_root):
    from bnnlib.protocol import export_binary_finals
    store = ResultsStore(tmp_path)
    data = DataOptions(root=str(mnist_root))
    binary = _binary_run("mnist", True, n_test=500)
    other = RunConfig(dataset="mnist", algorithm="BP", weights="binary", activation="tanh", epochs=1, n_train=256,
                      n_test=500)
    execute([binary, other], store, data, progress=False, keep_checkpoints=True)
    assert export_binary_finals(store, [binary, other], data) == 1
    table = store.table("packed.csv")
    assert table["run_id"].tolist() == [binary.run_id] and table["agreement"].tolist() == [1.0]
    assert table["test_images"].tolist() == [500] and (tmp_path / "packed" / f"{binary.run_id}.bnn").exists()
    assert table["float32_bytes"].iloc[0] / table["file_bytes"].iloc[0] > 25
    assert export_binary_finals(store, [binary, other], data) == 0  # never twice


@pytest.mark.slow
def test_the_protocol_exports_each_binary_final_as_soon_as_its_group_ends(tmp_path, mnist_root, monkeypatch):
    """Packed files are what survives a replaced machine: each is written when its run's group
    ends, not after the whole setting's finals."""
    from bnnlib import protocol
    binary = RunConfig(dataset="mnist", algorithm="DFA", weights="binary", activation="sign", epochs=1, n_train=256,
                       n_test=100, seed=2)
    other = RunConfig(dataset="mnist", algorithm="DRTP", weights="binary", activation="sign", epochs=1, n_train=256,
                      n_test=100, seed=3)  # planned after the DFA run: its group ends second
    monkeypatch.setattr(protocol, "ensure_grid", lambda *args, **kwargs: pd.DataFrame())
    monkeypatch.setattr(protocol, "select_hyperparameters", lambda grid: grid)
    monkeypatch.setattr(protocol, "final_configs", lambda *args, **kwargs: [binary, other])
    store = ResultsStore(tmp_path)
    exported_when = []
    real_export = protocol.export_binary_finals

    def export_and_note(store_, configs, data=None):
        count = real_export(store_, configs, data)
        exported_when.append(([c.run_id for c in configs], count, sorted(p.stem for p in (tmp_path / "packed").glob("*"))))
        return count

    monkeypatch.setattr(protocol, "export_binary_finals", export_and_note)
    protocol.ensure_finals("mnist", False, protocol.get_budget("smoke"), store, DataOptions(root=str(mnist_root)),
                           max_members=1, progress=False)
    assert exported_when == [([binary.run_id, other.run_id], 0, []),  # nothing completed before
                             ([binary.run_id], 1, [binary.run_id]),
                             ([other.run_id], 1, sorted([binary.run_id, other.run_id])),
                             ([binary.run_id, other.run_id], 0, sorted([binary.run_id, other.run_id]))]
