"""Arithmetic version 3: with binary weights and pixel inputs, block 1 sums exactly."""

import pytest
import torch

from bnnlib import BinaryMLP, make_trainer


def _pixels(generator, shape):
    p = torch.randint(0, 256, shape, generator=generator)
    p.view(-1)[:40] = torch.tensor([0, 255] * 20)  # the extremes
    return p, p.to(torch.float32).div(127.5).sub(1.0)  # as the data loader scales them


@pytest.mark.parametrize("batch_norm", [False, True])
def test_first_layer_is_the_exact_integer_sum_over_255(batch_norm):
    g = torch.Generator().manual_seed(0)
    model = BinaryMLP([1, 2], hidden_sizes=(30, 20), activation="tanh", binary_weights=True,
                      batch_norm=batch_norm, pixel_inputs=True)
    p, x = _pixels(g, (50, 784))
    signs = torch.where(model.weights[0] > 0, 1, -1).to(torch.int64)  # sign(0) = −1
    exact = torch.stack([(2 * p - 255) @ signs[s] for s in range(2)])  # integers, exactly
    got = model._hidden_linear(0, x, model.effective_weight(0), None)
    assert torch.equal(got, exact.to(torch.float32) / 255.0)  # the one rounding: the division
    assert torch.equal(model._hidden_linear(0, x.expand(2, -1, -1).contiguous(), model.effective_weight(0), None), got)


def test_a_zero_sum_gives_sign_minus_one_whatever_the_rounding_of_x():
    """Pixels and weights whose exact sum is 0: the float32 sum of the rounded x is not 0."""
    model = BinaryMLP([1], input_size=4, hidden_sizes=(1,), activation="sign", binary_weights=True,
                      pixel_inputs=True)
    model.weights[0].copy_(torch.tensor([[[0.5], [0.5], [-0.5], [-0.5]]]))
    p = torch.tensor([[37, 201, 201, 37]])  # (2·37 − 255) + (2·201 − 255) − … = 0
    x = p.to(torch.float32).div(127.5).sub(1.0)
    z = model._hidden_linear(0, x.unsqueeze(0), model.effective_weight(0), None)
    assert z.item() == 0.0 and model.forward_eval(x)[0].shape == (1, 10)


def test_without_pixel_inputs_or_binary_weights_nothing_changes():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 16, 784, generator=g) * 2 - 1  # not on the pixel grid
    for kwargs in (dict(binary_weights=True), dict(binary_weights=False, pixel_inputs=True)):
        model = BinaryMLP([3], **kwargs)
        w = model.effective_weight(0)
        assert torch.equal(model._hidden_linear(0, x, w, None), torch.bmm(x, w))


def test_training_with_pixel_inputs_runs_and_is_deterministic():
    g = torch.Generator().manual_seed(2)
    _, x = _pixels(g, (2, 32, 784))
    targets = torch.nn.functional.one_hot(torch.randint(0, 10, (2, 32), generator=g), 10).float() * 2 - 1
    losses = []
    for _ in range(2):
        model = BinaryMLP([4, 5], activation="sign", binary_weights=True, batch_norm=True, pixel_inputs=True)
        trainer = make_trainer("BP", model, lr=1e-3)
        losses.append(torch.stack([trainer.step(x, targets) for _ in range(3)]))
    assert torch.equal(losses[0], losses[1]) and torch.isfinite(losses[0]).all()
