"""The kernel on the packed bits (bnnlib.binary, issue #47): every path it can be forced to gives
the predictions of the torch GEMM engine (proven equal to the float model in test_deploy.py),
image for image, and every committed packed model its run's recorded last-epoch accuracy."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlib import binary, deploy
from conftest import FASHION_DEBIAN

ROOT = Path(__file__).resolve().parents[1]
PACKED = ROOT / "results" / "paper" / "packed"

needs_kernel = pytest.mark.skipif(not binary.compiled(), reason="bnnlib._binary not compiled (no C compiler at install)")
# every path, each test skipped where this processor lacks it
PATHS = [pytest.param(path, marks=pytest.mark.skipif(path not in binary.available_paths(),
                                                     reason=f"this processor has no {path} path"))
         for path in binary.PATHS]

# committed packed models whose full test sets every path must classify as the GEMM engine does:
# (dataset, BN): one of each, each from a different rule
MODELS = [("mnist", False, "BP"), ("mnist", True, "DRTP"), ("fashion-mnist", False, "DFA"),
          ("fashion-mnist", True, "DRTP")]


def _packed_table() -> pd.DataFrame:
    return pd.read_csv(ROOT / "results" / "paper" / "packed.csv")


def _model(dataset, batch_norm, algorithm) -> Path:
    table = _packed_table()
    rows = table[(table.dataset == dataset) & (table.batch_norm == batch_norm) & (table.algorithm == algorithm)]
    return PACKED / f"{rows.sort_values('run_id').run_id.iloc[0]}.bnn"


def _pixels_of(test_pixels, dataset):
    if dataset not in test_pixels:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return test_pixels[dataset]


def _random_network(sizes, seed, output_scale=1.0, batch_norm=True):
    """A packed network of any sizes from a random float model (BN statistics of random images)."""
    from bnnlib import BinaryMLP
    g = torch.Generator().manual_seed(seed)
    model = BinaryMLP([seed], input_size=sizes[0], hidden_sizes=tuple(sizes[1:-1]), n_classes=sizes[-1],
                      activation="sign", binary_weights=True, batch_norm=batch_norm, pixel_inputs=True, init=0.5)
    if batch_norm:
        model.forward_train(torch.randint(0, 256, (1, 256, sizes[0]), generator=g).float() / 127.5 - 1)
    model.weights[-1].mul_(output_scale)
    return deploy.pack(model), torch.randint(0, 256, (3000, sizes[0]), generator=g).to(torch.uint8).numpy()


# ------------------------------------------------------------------ every path, the full test sets
@needs_kernel
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dataset,batch_norm,algorithm", MODELS)
def test_every_path_predicts_as_the_gemm_engine_on_the_full_test_set(test_pixels, monkeypatch, path, dataset,
                                                                      batch_norm, algorithm):
    pixels, _ = _pixels_of(test_pixels, dataset)
    network = deploy.PackedNetwork.load(_model(dataset, batch_norm, algorithm))
    expected = network.predict(pixels, engine="gemm")
    monkeypatch.setenv(binary.ENV, path)  # forced by the environment, as a user would
    assert network.engine() == "bits" and network.bit_kernel().path == path
    assert np.array_equal(network.predict(pixels, threads=2), expected)
    monkeypatch.delenv(binary.ENV)
    assert np.array_equal(network.predict(pixels[:1], path=path), expected[:1])  # batch 1, forced by argument


# ------------------------------------------------------------------ sizes, padding, ties, threads
# (sizes, seed, output weights ×): odd sizes put padding bits in every word; × 50 saturates tanh,
# so classes tie and the GEMM engine must decide them
NETWORKS = [((40, 30, 20, 10), 1, 1.0), ((784, 700, 500, 300, 200, 10), 2, 1.0), ((13, 65, 129, 7, 3), 3, 1.0),
            ((100, 513, 64, 10), 4, 1.0), ((784, 70, 50, 10), 5, 50.0)]


@needs_kernel
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("sizes,seed,scale", NETWORKS)
def test_any_sizes_and_saturated_outputs_predict_as_the_gemm_engine(path, sizes, seed, scale):
    network, images = _random_network(sizes, seed, scale)
    expected = network.predict(images, engine="gemm")
    classes, flagged = network.bit_kernel(path).predict(images, 1)
    decided = classes >= 0
    assert np.array_equal(classes[decided], expected[decided])
    if scale > 1:
        assert flagged > 0  # saturated tanh values tie: these are the GEMM engine's to decide
    assert np.array_equal(network.predict(images, path=path), expected)


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2, 3, 64])
@pytest.mark.parametrize("count", [0, 1, 63, 129, 3000])
def test_threads_and_batch_sizes_change_no_prediction(threads, count):
    network, images = _random_network((784, 700, 500, 300, 200, 10), 6)
    expected = network.predict(images[:count], engine="gemm")
    got = network.predict(images[:count], threads=threads)
    assert got.dtype == np.int64 and got.shape == (count,) and np.array_equal(got, expected)


# ------------------------------------------------------------------ choice of engine and path
def test_without_the_compiled_kernel_predict_uses_the_gemm_engine(monkeypatch):
    network, images = _random_network((40, 30, 20, 10), 7)
    expected = network.predict(images, engine="gemm")
    monkeypatch.setattr(binary, "_binary", None)
    monkeypatch.setattr(binary, "_AVAILABLE", ())
    assert network.engine() == "gemm" and np.array_equal(network.predict(images), expected)
    with pytest.raises(ValueError, match=r"^BNNLIB_BINARY_KERNEL=auto: the compiled kernel bnnlib._binary is not built"):
        network.predict(images, engine="bits")


# (where it is set, value, the one-line message)
REFUSALS = [("env", "avx9", r"^BNNLIB_BINARY_KERNEL='avx9' is not one of auto, avx512, avx2, generic$"),
            ("path", "neon", r"^path='neon' is not one of auto, avx512, avx2, generic$"),
            ("engine", "int4", r"^engine='int4' is not one of bits, gemm$"),
            ("engine-env", "fast", r"^BNNLIB_PACKED_ENGINE='fast' is not one of bits, gemm$")]


@pytest.mark.parametrize("where,value,message", REFUSALS)
def test_a_bad_engine_or_path_is_refused_in_one_line_naming_it(monkeypatch, where, value, message):
    network, images = _random_network((40, 30, 20, 10), 8)
    kwargs = {}
    if where == "env":
        monkeypatch.setenv(binary.ENV, value)
    elif where == "engine-env":
        monkeypatch.setenv(deploy.ENGINE_ENV, value)
    else:
        kwargs[where] = value
    with pytest.raises(ValueError, match=message):
        network.predict(images, **kwargs)


@needs_kernel
def test_images_of_the_wrong_shape_are_refused_in_one_line():
    network, images = _random_network((40, 30, 20, 10), 10)
    with pytest.raises(ValueError, match=r"^images has shape \(40,\); accepted: \(N, 40\) uint8 pixels$"):
        network.predict(images[0])


@needs_kernel
def test_a_path_this_processor_lacks_is_refused_naming_the_ones_it_has(monkeypatch):
    monkeypatch.setattr(binary, "_AVAILABLE", ("generic",))
    with pytest.raises(ValueError, match=r"^BNNLIB_BINARY_KERNEL=avx512 is not supported by this processor; "
                                         r"accepted here: auto, generic$"):
        binary.choose("avx512")
    assert binary.choose() == "generic"


def test_the_gemm_engine_is_selectable_by_the_environment(monkeypatch):
    network, images = _random_network((40, 30, 20, 10), 9)
    monkeypatch.setenv(deploy.ENGINE_ENV, "gemm")
    assert network.engine() == "gemm"
    assert network.engine("bits") == "bits"  # the argument wins


# ------------------------------------------------------------------ every committed model, every path
@needs_kernel
@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_every_committed_packed_model_gives_its_recorded_accuracy(test_pixels, path):
    """The 120 paper-budget finals: accuracy on the full test set equal to the run's recorded
    last-epoch test accuracy (the packed file is the last epoch's state), and the same predictions
    as the GEMM engine."""
    epochs = pd.read_csv(ROOT / "results" / "paper" / "epochs.csv", usecols=["run_id", "epoch", "test_accuracy"])
    # a recomputed epoch may be recorded twice (before main tidied them away): the latest row wins
    last = epochs.sort_values("epoch", kind="stable").groupby("run_id").last()["test_accuracy"]
    table = _packed_table()
    assert len(table) == 120 and all((PACKED / f"{r}.bnn").exists() for r in table.run_id)
    checked = 0
    for run_id, dataset in zip(table.run_id, table.dataset):
        if dataset not in test_pixels:
            continue
        pixels, labels = test_pixels[dataset]
        network = deploy.PackedNetwork.load(PACKED / f"{run_id}.bnn")
        predictions = network.predict(pixels, path=path, threads=2)
        assert (predictions == labels).mean() == last[run_id], run_id
        if path == binary.available_paths()[0]:
            assert np.array_equal(predictions, network.predict(pixels, engine="gemm")), run_id
        checked += 1
    assert checked == len(table) or (checked == (table.dataset == "mnist").sum() and not FASHION_DEBIAN.exists())
