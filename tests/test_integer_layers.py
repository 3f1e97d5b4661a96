"""The exact ±1 layers: the same bits from the int8 and the float32 kernel as from plain float32,
or the int8 kernel is not used; the kernel is measured per processor or forced by BNNLIB_INT8_GEMM."""

import numpy as np
import pytest
import torch

from bnnlib import BinaryMLP, deploy, kernels, make_trainer
from bnnlib.model import BN_EPS

KERNELS = ["int8", "float32"]


class FloatOnly(BinaryMLP):
    """The same model with every layer computed in float32 (the reference path)."""

    @property
    def integer_layers(self):
        return range(0)


def test_integer_layers_are_exactly_the_pm1_by_pm1_ones():
    def layers(**kw):
        return list(BinaryMLP([1], hidden_sizes=(8, 7, 6, 5), **kw).integer_layers)

    assert layers(activation="sign", binary_weights=True) == [1, 2, 3]
    assert layers(activation="sign", binary_weights=True, batch_norm=True) == [1, 2, 3]
    assert layers(activation="tanh", binary_weights=True) == []     # tanh outputs are real
    assert layers(activation="sign", binary_weights=False) == []    # real weights


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("algorithm", ["BP", "DFA", "DRTP"])
def test_integer_path_is_bit_identical_to_float32(algorithm, batch_norm, kernel, monkeypatch):
    monkeypatch.setenv(kernels.ENV, kernel)
    g = torch.Generator().manual_seed(0)
    kwargs = dict(seeds=[3, 4], input_size=50, hidden_sizes=(40, 30, 20), activation="sign",
                  binary_weights=True, batch_norm=batch_norm, init=0.1)
    fast, reference = BinaryMLP(**kwargs), FloatOnly(**kwargs)
    assert list(fast.integer_layers) == [1, 2] and not list(reference.integer_layers)
    trainers = [make_trainer(algorithm, m, lr=[1e-2, 1e-3]) for m in (fast, reference)]
    for _ in range(6):
        x = torch.rand(2, 33, 50, generator=g) * 2 - 1
        targets = torch.nn.functional.one_hot(torch.randint(0, 10, (2, 33), generator=g), 10).float() * 2 - 1
        losses = [t.step(x, targets) for t in trainers]
        assert torch.equal(losses[0], losses[1])
    for a, b in zip(fast.state_dict()["weights"], reference.state_dict()["weights"]):
        assert torch.equal(a, b)
    x_eval = torch.rand(70, 50, generator=g) * 2 - 1
    assert torch.equal(fast.forward_eval(x_eval), reference.forward_eval(x_eval))
    assert torch.equal(fast.predict(x_eval, batch_size=16), reference.predict(x_eval, batch_size=16))


def test_pm1_gemm_matches_float_at_the_paper_sizes():
    g = torch.Generator().manual_seed(1)
    for fan_in, fan_out in [(700, 500), (500, 300), (300, 200)]:
        y = torch.randint(0, 2, (3, 128, fan_in), generator=g).float() * 2 - 1
        w = torch.randint(0, 2, (3, fan_in, fan_out), generator=g).float() * 2 - 1
        assert torch.equal(kernels.pm1_matmul_int8(y, w.to(torch.int8)), torch.bmm(y, w))


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("algorithm", ["BP", "DFA", "DRTP"])
def test_exact_first_layer_gives_the_same_bits_with_either_kernel(algorithm, batch_norm, monkeypatch):
    """Pixel inputs: block 1's Σ(2p − 255)·s by int8 GEMMs or by float32 GEMMs of the same
    integers — training steps, weights and evaluation identical bit for bit."""
    results = []
    for kernel in KERNELS:
        monkeypatch.setenv(kernels.ENV, kernel)
        g = torch.Generator().manual_seed(0)
        model = BinaryMLP([3, 4], input_size=60, hidden_sizes=(40, 30, 20), activation="sign",
                          binary_weights=True, batch_norm=batch_norm, init=0.1, pixel_inputs=True)
        assert model._int8_layers() == ({0, 1, 2} if kernel == "int8" else set())
        trainer = make_trainer(algorithm, model, lr=[1e-2, 1e-3])
        losses = []
        for _ in range(4):
            x = torch.randint(0, 256, (2, 33, 60), generator=g).float().div(127.5).sub(1.0)
            targets = torch.nn.functional.one_hot(torch.randint(0, 10, (2, 33), generator=g), 10).float() * 2 - 1
            losses.append(trainer.step(x, targets))
        x_eval = torch.randint(0, 256, (70, 60), generator=g).float().div(127.5).sub(1.0)
        results.append((losses, model.state_dict()["weights"], model.forward_eval(x_eval)))
    (losses_a, weights_a, eval_a), (losses_b, weights_b, eval_b) = results
    assert all(torch.equal(a, b) for a, b in zip(losses_a, losses_b))
    assert all(torch.equal(a, b) for a, b in zip(weights_a, weights_b))
    assert torch.equal(eval_a, eval_b)


def test_packed_network_gives_the_same_integers_with_either_kernel(monkeypatch):
    g = torch.Generator().manual_seed(2)
    model = BinaryMLP([1], input_size=40, hidden_sizes=(30, 20), activation="sign", binary_weights=True,
                      pixel_inputs=True, init=0.5)
    layers = [deploy.PackedLayer((model.effective_weight(k)[0] > 0).T.contiguous().numpy(),
                                 *deploy._thresholds(model, k, fan_in, 255.0 if k == 0 else 1.0))
              for k, fan_in in enumerate((40, 30))]
    network = deploy.PackedNetwork({"input_size": 40, "hidden_sizes": [30, 20], "n_classes": 10,
                                    "batch_norm": False}, layers, model.weights[-1][0].numpy())
    images = torch.randint(0, 256, (2000, 40), generator=g).to(torch.uint8)
    images[0], images[1] = 0, 255  # block 1's largest sums, |Σ(2p − 255)·s| = 255 · 40 at most
    images = images.numpy()
    logits = {}
    for kernel in KERNELS:
        monkeypatch.setenv(kernels.ENV, kernel)
        logits[kernel] = network.logits(images)
    assert torch.equal(logits["int8"], logits["float32"])
    assert np.array_equal(network.predict(images), model.predict(torch.from_numpy(images).float().div(127.5).sub(1.0))[0].numpy())


def test_kernel_choice_is_measured_once_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.delenv(kernels.ENV, raising=False)
    assert kernels.requested() == "auto"
    first = kernels.use_int8(torch.device("cpu"))
    assert isinstance(first, bool) and kernels.use_int8(torch.device("cpu")) == first
    assert kernels.int8_is_faster.cache_info().currsize >= 1  # measured once per thread count
    assert kernels.use_int8(torch.device("meta")) is False  # only the CPU has torch._int_mm at these sizes
    monkeypatch.setenv(kernels.ENV, "INT8")
    assert kernels.use_int8(torch.device("cpu")) is True
    monkeypatch.setenv(kernels.ENV, "fast")
    with pytest.raises(ValueError, match=r"^BNNLIB_INT8_GEMM='fast' is not one of auto, int8, float32$"):
        BinaryMLP([1], hidden_sizes=(8,))


def test_batch_norm_statistics_are_the_two_pass_biased_ones():
    """BN's batch mean and biased variance, computed by hand for a tiny batch."""
    model = BinaryMLP([1], input_size=2, hidden_sizes=(2,), activation="tanh", batch_norm=True)
    z = torch.tensor([[[1.0, -2.0], [3.0, 2.0], [5.0, 0.0]]])  # (S=1, B=3, 2 units)
    out, x_hat, inv_std = model._batch_norm_train(0, z)
    mean = torch.tensor([3.0, 0.0])
    var = torch.tensor([8 / 3, 8 / 3])  # ((−2)² + 0² + 2²)/3 for both units
    assert torch.allclose(model.running_mean[0].view(-1), mean)
    assert torch.allclose(model.running_var[0].view(-1), var)
    assert torch.allclose(inv_std.view(-1), 1 / torch.sqrt(var + BN_EPS))
    assert torch.allclose(x_hat[0, :, 0], torch.tensor([-2.0, 0.0, 2.0]) / (8 / 3 + BN_EPS) ** 0.5)
