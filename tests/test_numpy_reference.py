"""bnnlib (float32) against the float64 NumPy reference of benchmarks/, over several steps."""

import numpy as np
import pytest
import torch

from bnnlib import BinaryMLP, make_trainer

from numpy_reference import NumpyMLP  # benchmarks/ is on pytest's pythonpath (pyproject.toml)
from reference import PAPER_RULE_SETTINGS


@pytest.mark.parametrize("algorithm,activation,binary,bn", PAPER_RULE_SETTINGS)
def test_bnnlib_agrees_with_float64_numpy_reference(algorithm, activation, binary, bn):
    model = BinaryMLP([5], input_size=12, n_classes=4, hidden_sizes=(10, 8), activation=activation,
                      binary_weights=binary, batch_norm=bn, init=0.3)
    trainer = make_trainer(algorithm, model, lr=0.01)
    feedback = [b[0].double().numpy() for b in getattr(trainer, "feedback", [])] or None
    reference = NumpyMLP([w[0].double().numpy() for w in model.weights], activation, binary, bn, feedback)
    g = torch.Generator().manual_seed(1)
    for step in range(4):
        # small inputs keep sign pre-activations away from 0, where float32/64 could disagree
        x = (torch.rand(16, 12, generator=g) * 2 - 1) * 0.3
        t = torch.nn.functional.one_hot(torch.randint(0, 4, (16,), generator=g), 4).float() * 2 - 1
        loss = trainer.step(x, t)
        ref_loss = reference.step(x.double().numpy(), t.double().numpy(), algorithm, 0.01)
        assert loss.item() == pytest.approx(ref_loss, rel=1e-4, abs=1e-6)
    for w, ref in zip(model.weights, reference.W):
        np.testing.assert_allclose(w[0].numpy(), ref, atol=5e-5)
    x_eval = torch.rand(50, 12, generator=g) * 2 - 1
    agree = (model.predict(x_eval)[0].numpy() == reference.predict(x_eval.double().numpy())).mean()
    assert agree >= 0.98


def test_the_float64_reference_refuses_a_rule_it_does_not_compute():
    reference = NumpyMLP([np.zeros((3, 2)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="knows the rules BP, DFA, DRTP; got 'FA'"):
        reference.step(np.zeros((1, 3)), -np.ones((1, 2)), "FA", 0.1)
