"""Binarisation primitives, table-driven: (input, expected output, expected gradient)."""

import pytest
import torch

from bnnlib import ACTIVATIONS, WEIGHT_BINARISERS, sign
from bnnlib.binarize import tanh

# name, registry, input, expected forward, expected gradient for an upstream gradient of 1
CASES = [
    # sign activation: sign(0) = −1 (the paper's convention, unlike larq/bitorch), STE 1[|z|<1]
    ("sign", ACTIVATIONS, [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0],
     [-1, -1, -1, -1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0]),
    ("sign", ACTIVATIONS, [-1e-30, 1e-30, -0.999, 0.999],
     [-1, 1, -1, 1], [1, 1, 1, 1]),
    ("tanh", ACTIVATIONS, [-1.0, 0.0, 0.5, 3.0],
     [torch.tanh(torch.tensor(v)).item() for v in (-1.0, 0.0, 0.5, 3.0)],
     [1 - torch.tanh(torch.tensor(v)).item() ** 2 for v in (-1.0, 0.0, 0.5, 3.0)]),
    # binary weights: sign forward, identity STE (the gradient reaches the latent W unchanged)
    ("sign", WEIGHT_BINARISERS, [-3.0, -0.2, 0.0, 0.7, 1.5],
     [-1, -1, -1, 1, 1], [1, 1, 1, 1, 1]),
    ("identity", WEIGHT_BINARISERS, [-3.0, 0.0, 0.7],
     [-3.0, 0.0, 0.7], [1, 1, 1]),
]


@pytest.mark.parametrize("name,registry,inputs,expected,expected_grad", CASES)
def test_forward_and_straight_through_gradient(name, registry, inputs, expected, expected_grad):
    primitive = registry.get(name)
    x = torch.tensor(inputs, requires_grad=True)
    # autograd face
    y = primitive.autograd(x)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(y.detach(), torch.tensor(expected, dtype=torch.float32), atol=1e-6, rtol=0)
    torch.testing.assert_close(x.grad, torch.tensor(expected_grad, dtype=torch.float32), atol=1e-6, rtol=0)
    # explicit face used by the trainers
    with torch.no_grad():
        y2 = primitive.forward(x.detach())
        torch.testing.assert_close(y2, torch.tensor(expected, dtype=torch.float32), atol=1e-6, rtol=0)
        if registry is ACTIVATIONS:
            grad = primitive.backward(x.detach(), y2, torch.ones_like(y2))
            torch.testing.assert_close(grad, torch.tensor(expected_grad, dtype=torch.float32), atol=1e-6, rtol=0)


def test_sign_of_zero_is_minus_one():
    assert sign(torch.zeros(3)).tolist() == [-1.0, -1.0, -1.0]
    assert sign(torch.tensor([-0.0])).item() == -1.0


def test_sigmoid_form_of_tanh_matches_torch():
    x = torch.linspace(-20, 20, 200001)
    assert (tanh(x) - torch.tanh(x)).abs().max().item() < 3e-7


def test_unknown_names_list_the_accepted():
    with pytest.raises(ValueError, match=r"unknown activation 'relu'; accepted: sign, tanh"):
        ACTIVATIONS.get("relu")
    with pytest.raises(ValueError, match=r"accepted: identity, sign"):
        WEIGHT_BINARISERS.get("xnor")


def test_a_binarisers_own_ste_is_applied_by_the_trainers():
    """A binariser whose STE is not the identity gets its backward applied, not ignored."""
    from bnnlib import BinaryMLP, make_trainer
    from bnnlib.binarize import SignWeights

    class DoubledSTE(SignWeights):
        identity_ste = False

        @staticmethod
        def backward(w, w_effective, grad):
            return 2 * grad

    x = torch.rand(16, 12) * 2 - 1
    targets = torch.nn.functional.one_hot(torch.arange(16) % 3, 3).float() * 2 - 1
    changes = []
    for binariser in (SignWeights, DoubledSTE):
        model = BinaryMLP([1], input_size=12, n_classes=3, hidden_sizes=(8,), activation="tanh",
                          binary_weights=True, init=0.1)
        model.hidden_binariser = binariser
        before = model.weights[0].clone()
        make_trainer("DFA", model, lr=1e-4).step(x, targets)
        changes.append(model.weights[0] - before)
    # W + ΔW is rounded to float32 (W ~ 0.1): a few ulps of W apart
    torch.testing.assert_close(changes[1], 2 * changes[0], rtol=0, atol=1e-7)
    assert changes[0].abs().max() > 0


def test_the_primitives_benchmark_checks_each_form_against_the_obvious_one_and_reports_a_ratio(monkeypatch):
    """benchmarks/primitives.py is where the docstrings' "faster than" lives: it must run, and
    refuse to time two forms that disagree."""
    import primitives  # benchmarks/ is on pytest's pythonpath (pyproject.toml)

    threads = torch.get_num_threads()
    report = primitives.main(["--quick"])
    assert torch.get_num_threads() == threads  # measured at 1 thread, the session's count given back
    assert [row["what"] for row in report["rows"]] == [case[0] for case in primitives.cases()]
    assert all(row["ratio"] > 0 for row in report["rows"])
    broken = [(what, ours, obvious, lambda a, b: False) for what, ours, obvious, _ in primitives.cases()[:1]]
    monkeypatch.setattr(primitives, "cases", lambda: broken)
    with pytest.raises(AssertionError, match="sign of a 784×700 weight matrix: bnnlib's form and the obvious "
                                             "one disagree"):
        primitives.main(["--quick"])
