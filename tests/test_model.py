"""Model structure, batch normalisation, metrics and input validation."""

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score

from bnnlib import BinaryMLP, classification_metrics, make_trainer
from bnnlib.model import BN_EPS


def test_default_model_is_the_papers():
    model = BinaryMLP([1])
    assert [tuple(w.shape) for w in model.weights] == [
        (1, 784, 700), (1, 700, 500), (1, 500, 300), (1, 300, 200), (1, 200, 10)]
    for init in (0.1, 0.001):
        model = BinaryMLP([1, 2], init=init)
        for w in model.weights:
            assert w.abs().max() <= init and w.abs().max() > 0.9 * init  # U(−init, init)


def test_batch_norm_forward_matches_torch_batchnorm1d_in_training_mode():
    model = BinaryMLP([1], input_size=6, n_classes=3, hidden_sizes=(8,), batch_norm=True)
    x = torch.randn(1, 32, 6)
    cache = model.forward_train(x)
    z = torch.bmm(x, model.weights[0])[0]
    bn = torch.nn.BatchNorm1d(8, eps=BN_EPS).train()
    torch.testing.assert_close(cache.pre_activations[0][0], bn(z), atol=1e-5, rtol=1e-5)
    # torch keeps the *unbiased* variance in its running average; the protocol keeps the
    # biased one and lets the first batch initialise the statistics — so no BatchNorm1d here.
    torch.testing.assert_close(model.running_var[0][0, 0], z.var(dim=0, unbiased=False))


def test_batch_norm_running_statistics_first_batch_then_momentum():
    model = BinaryMLP([1], input_size=4, n_classes=2, hidden_sizes=(3,), batch_norm=True)
    xs = [torch.randn(1, 16, 4) for _ in range(3)]
    z = [torch.bmm(x, model.weights[0])[0] for x in xs]
    model.forward_train(xs[0])
    torch.testing.assert_close(model.running_mean[0][0, 0], z[0].mean(0))
    torch.testing.assert_close(model.running_var[0][0, 0], z[0].var(0, unbiased=False))
    model.forward_train(xs[1])
    torch.testing.assert_close(model.running_mean[0][0, 0], 0.9 * z[0].mean(0) + 0.1 * z[1].mean(0))
    torch.testing.assert_close(model.running_var[0][0, 0],
                               0.9 * z[0].var(0, unbiased=False) + 0.1 * z[1].var(0, unbiased=False))


def test_evaluation_uses_running_statistics_and_changes_nothing():
    model = BinaryMLP([1], input_size=4, n_classes=2, hidden_sizes=(3,), batch_norm=True)
    model.forward_train(torch.randn(1, 16, 4))
    model.bn_gamma[0].fill_(1.5)
    model.bn_beta[0].fill_(0.2)
    state = model.state_dict()
    x = torch.randn(5, 4)
    z = x @ model.weights[0][0]
    normalised = (z - model.running_mean[0][0]) / torch.sqrt(model.running_var[0][0] + BN_EPS) * 1.5 + 0.2
    expected = torch.tanh(torch.tanh(normalised) @ model.weights[1][0])
    torch.testing.assert_close(model.forward_eval(x)[0], expected, atol=1e-6, rtol=1e-5)
    for a, b in zip(state["running_mean"], model.state_dict()["running_mean"]):
        assert torch.equal(a, b)


def test_metrics_match_sklearn():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (200,), generator=g)
    predictions = torch.stack([labels.clone(), torch.randint(0, 5, (200,), generator=g),
                               torch.zeros(200, dtype=torch.long)])  # perfect, random, one class only
    metrics = classification_metrics(predictions, labels, 5)
    for s in range(3):
        p = predictions[s].numpy()
        assert metrics["accuracy"][s].item() == pytest.approx(accuracy_score(labels, p))
        assert metrics["precision"][s].item() == pytest.approx(
            precision_score(labels, p, average="macro", zero_division=0))
        assert metrics["f1"][s].item() == pytest.approx(f1_score(labels, p, average="macro", zero_division=0))


BAD_MODELS = [
    (dict(activation="relu"), r"unknown activation 'relu'; accepted: sign, tanh"),
    (dict(hidden_sizes=()), r"hidden_sizes=\(\) is not accepted; accepted: positive integers, e.g. \(700, 500"),
    (dict(hidden_sizes=(10, 0)), r"hidden_sizes=\(10, 0\) is not accepted; accepted: positive integers"),
    (dict(hidden_sizes=(10, -3)), r"hidden_sizes=\(10, -3\) is not accepted"),
    (dict(input_size=0), r"input_size=\(0,\) is not accepted; accepted: positive integers"),
    (dict(n_classes=-1), r"n_classes=\(-1,\) is not accepted"),
    (dict(init=0.0), r"init=0.0 is not accepted; accepted: a finite number > 0"),
    (dict(init=-0.1), r"init=-0.1 is not accepted; accepted: a finite number > 0"),
    (dict(init=[0.1, 0.2, 0.3]), r"init has 3 values for 1 members"),
    (dict(seeds=[]), r"seeds=\[\] is not accepted; accepted: a non-empty list of integers ≥ 0"),
    (dict(binary_weights="yes"), r"binary_weights='yes' is not accepted; accepted: True, False"),
    (dict(batch_norm=1), r"batch_norm=1 is not accepted; accepted: True, False"),
]


@pytest.mark.parametrize("kwargs,message", BAD_MODELS)
def test_bad_model_arguments_raise_clear_errors(kwargs, message):
    kwargs = {"seeds": [1], **kwargs}
    with pytest.raises(ValueError, match=message):
        BinaryMLP(**kwargs)


def test_bad_trainer_arguments_and_batches_raise_clear_errors():
    model = BinaryMLP([1, 2], input_size=4, n_classes=3, hidden_sizes=(5,))
    with pytest.raises(ValueError, match=r"unknown trainer 'SGD'; accepted: BP, DFA, DRTP"):
        make_trainer("SGD", model, 0.1)
    for lr in (0.0, -1e-4, float("nan")):
        # the trainer is an entry point of its own: same rule and same words as RunConfig's
        with pytest.raises(ValueError, match=r"lr=.* is not accepted; accepted: a finite number > 0"):
            make_trainer("BP", model, lr)
    trainer = make_trainer("DFA", model, 0.1)
    before = [w.clone() for w in model.weights]
    targets = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float() * 2 - 1
    with pytest.raises(ValueError, match=r"x has shape \(4, 5\); expected \(batch, 4\)"):
        trainer.step(torch.zeros(4, 5), targets)
    with pytest.raises(ValueError, match=r"targets has shape \(4, 2\); expected \(batch, 3\)"):
        trainer.step(torch.zeros(4, 4), targets[:, :2])
    with pytest.raises(ValueError, match=r"targets hold 3 samples but x holds 4"):
        trainer.step(torch.zeros(4, 4), targets[:3])
    bad = torch.zeros(4, 4)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"x contains NaN"):
        trainer.step(bad, targets)
    with pytest.raises(ValueError, match=r"targets must be ±1"):
        trainer.step(torch.zeros(4, 4), (targets + 1) / 2)
    for w, b in zip(model.weights, before):  # nothing was trained
        assert torch.equal(w, b)


@pytest.mark.parametrize("init", [0.1, 0.001])
def test_initial_weights_are_uniform_on_minus_init_to_init(init):
    """Kolmogorov–Smirnov against U(−init, init), layer by layer: U(0, init), a normal or a
    wrong scale would all fail (p < 1e-6 for each at these sizes)."""
    from scipy import stats
    model = BinaryMLP([7], init=init)
    for w in model.weights:
        values = w[0].flatten().double().numpy()
        assert stats.kstest(values, stats.uniform(loc=-init, scale=2 * init).cdf).pvalue > 1e-3
        assert abs(values.mean()) < 0.05 * init  # centred


def test_feedback_matrices_are_uniform_fixed_and_seeded_per_member():
    from scipy import stats
    from bnnlib import make_trainer
    model = BinaryMLP([3, 4])
    trainer = make_trainer("DFA", model, lr=1e-4)
    assert [tuple(b.shape) for b in trainer.feedback] == [(2, 10, n) for n in (700, 500, 300, 200)]
    for b in trainer.feedback:
        assert stats.kstest(b[0].flatten().double().numpy(), stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    # member 4's matrices do not depend on who else is in the model, and DRTP draws the same ones
    alone = make_trainer("DRTP", BinaryMLP([4]), lr=1e-4)
    assert all(torch.equal(a[0], b[1]) for a, b in zip(alone.feedback, trainer.feedback))
    assert not torch.equal(trainer.feedback[0][0], trainer.feedback[0][1])  # seeds differ
    # fixed: a training step leaves them unchanged
    before = [b.clone() for b in trainer.feedback]
    x = torch.rand(2, 16, 784) * 2 - 1
    targets = torch.nn.functional.one_hot(torch.randint(0, 10, (2, 16)), 10).float() * 2 - 1
    trainer.step(x, targets)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.feedback))
