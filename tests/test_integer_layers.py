"""The exact int8 path of ±1 × ±1 layers: the same bits as the float32 path, or it is not used."""

import pytest
import torch

from bnnlib import BinaryMLP, make_trainer
from bnnlib.model import BN_EPS


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


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("algorithm", ["BP", "DFA", "DRTP"])
def test_integer_path_is_bit_identical_to_float32(algorithm, batch_norm):
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
        assert torch.equal(BinaryMLP._linear_pm1(y, w.to(torch.int8)), torch.bmm(y, w))


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
