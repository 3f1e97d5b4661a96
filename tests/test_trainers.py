"""The three learning rules against independent computations on tiny nets."""

import itertools
import re
from pathlib import Path

import pytest
import torch

from bnnlib import BinaryMLP, make_trainer
from bnnlib.binarize import sign
from bnnlib.trainers import rules

from reference import PAPER_RULE_SETTINGS, hand_step, reference_step

TINY = dict(input_size=6, n_classes=3, hidden_sizes=(5, 4))


def batch(S, B=7, input_size=6, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(S, B, input_size, generator=g) * 2 - 1
    labels = torch.randint(0, n_classes, (S, B), generator=g)
    targets = torch.nn.functional.one_hot(labels, n_classes).float() * 2 - 1
    return x, targets


SETTINGS = PAPER_RULE_SETTINGS


@pytest.mark.parametrize("algorithm,activation,binary,bn", SETTINGS)
def test_update_matches_autograd_reference(algorithm, activation, binary, bn):
    # init 0.5 and lr 0.05 make the updates large enough to see, and to reach the clip
    model = BinaryMLP([3, 4], activation=activation, binary_weights=binary, batch_norm=bn,
                      init=[0.5, 0.9], **TINY)
    trainer = make_trainer(algorithm, model, lr=[0.05, 0.02])
    feedback = getattr(trainer, "feedback", None)
    for step in range(3):
        x, targets = batch(2, seed=step)
        expected = reference_step(model, algorithm, x, targets, trainer.lr.view(-1), feedback)
        loss = trainer.step(x, targets)
        assert loss.shape == (2,)
        for got, want in zip(model.weights, expected[0]):
            torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
        for got, want in zip(model.bn_gamma + model.bn_beta, expected[1] + expected[2]):
            torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def paper_signal(algorithm, feedback):
    """δy_k of the paper's rules as written in the protocol, for hand_step."""
    def signal(k, dz_above, W_above, e, t):
        if algorithm == "BP":
            return dz_above @ W_above.T
        if algorithm == "DFA":
            return e @ feedback[k][0]
        return ((t + 1) / 2) @ feedback[k][0]
    return signal


@pytest.mark.parametrize("algorithm,activation,binary",
                         list(itertools.product(rules("paper"), ["tanh", "sign"], [False, True])))
def test_update_matches_hand_derived_formulas(algorithm, activation, binary):
    model = BinaryMLP([5], activation=activation, binary_weights=binary, init=0.8, **TINY)
    trainer = make_trainer(algorithm, model, lr=0.03)
    for step in range(2):
        x, targets = batch(1, seed=10 + step)
        expected = hand_step(model, paper_signal(algorithm, getattr(trainer, "feedback", None)), x, targets, 0.03)
        trainer.step(x, targets)
        for got, want in zip(model.weights, expected):
            torch.testing.assert_close(got[0], want, atol=2e-6, rtol=1e-5)


def test_drtp_lower_block_update_ignores_the_layers_above():
    # DRTP's δy_0 = t B_0 involves neither the error nor any layer above block 0, so
    # changing a higher layer's weights must leave block 0's update exactly the same.
    x, targets = batch(1, seed=3)
    updates = []
    for scale in (1.0, -0.5):
        model = BinaryMLP([1], init=0.5, **TINY)
        model.weights[1].mul_(scale)
        before = model.weights[0].clone()
        make_trainer("DRTP", model, lr=0.1).step(x, targets)
        updates.append(model.weights[0] - before)
    assert updates[0].abs().sum() > 0
    torch.testing.assert_close(updates[0], updates[1])


def test_binary_layers_compute_with_plus_minus_one_and_update_latent_weights():
    model = BinaryMLP([1], activation="sign", binary_weights=True, init=0.3, **TINY)
    x, targets = batch(1)
    x = x * 0.05  # keeps |z| < 1 in the first block so its STE lets a gradient through
    cache = model.forward_train(x)
    for k in range(model.n_hidden):
        assert set(cache.effective_weights[k].unique().tolist()) <= {-1.0, 1.0}
        assert set(cache.inputs[k + 1].unique().tolist()) <= {-1.0, 1.0}
    assert cache.effective_weights[-1] is model.weights[-1]  # output layer stays real
    before = [w.clone() for w in model.weights]
    # DFA: deeper binary+sign blocks see integer pre-activations (|z| ≥ 1 for odd fan-in), so
    # the STE blocks BP's chain there; DFA's direct signal still reaches block 0.
    trainer = make_trainer("DFA", model, lr=1e-3)
    trainer.step(x, targets)
    for k in (0, model.n_hidden):
        assert not torch.equal(model.weights[k], before[k])
    for w in model.weights:
        assert not set(w.unique().tolist()) <= {-1.0, 1.0}  # latent weights stay real-valued


def test_every_weight_is_clipped_to_unit_interval():
    model = BinaryMLP([1, 2], init=0.9, **TINY)
    trainer = make_trainer("BP", model, lr=50.0)
    trainer.step(*batch(2))
    for w in model.weights:
        assert w.abs().max().item() <= 1.0
        assert (w.abs() == 1.0).any()  # the clip was actually reached


def test_members_are_independent():
    seeds, inits, lrs = [7, 8, 9], [0.1, 0.3, 0.05], [1e-2, 3e-3, 2e-2]
    ensemble = BinaryMLP(seeds, init=inits, **TINY)
    trainer = make_trainer("BP", ensemble, lr=lrs)
    alone = [BinaryMLP([s], init=i, **TINY) for s, i in zip(seeds, inits)]
    alone_trainers = [make_trainer("BP", m, lr=r) for m, r in zip(alone, lrs)]
    for step in range(5):
        x, targets = batch(3, seed=100 + step)
        ensemble_loss = trainer.step(x, targets)
        for s, (m, t) in enumerate(zip(alone, alone_trainers)):
            loss = t.step(x[s:s + 1], targets[s:s + 1])
            torch.testing.assert_close(loss, ensemble_loss[s:s + 1], atol=1e-6, rtol=1e-5)
    for s, m in enumerate(alone):
        for w_ens, w_alone in zip(ensemble.weights, m.weights):
            torch.testing.assert_close(w_ens[s:s + 1], w_alone, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("algorithm", ["BP", "DFA", "DRTP"])
def test_same_seed_and_config_give_bit_identical_weights(algorithm):
    def run():
        model = BinaryMLP([11, 12], activation="sign", binary_weights=True, batch_norm=True, init=0.1,
                          hidden_sizes=(32, 16))
        trainer = make_trainer(algorithm, model, lr=1e-3)
        for step in range(6):
            x, targets = batch(2, B=16, input_size=784, n_classes=10, seed=step)
            trainer.step(x, targets)
        return model.state_dict()
    a, b = run(), run()
    for name in ("weights", "bn_gamma", "bn_beta", "running_mean", "running_var"):
        for ta, tb in zip(a[name], b[name]):
            assert torch.equal(ta, tb)


def test_same_seed_gives_same_initial_weights_for_every_algorithm_and_member_set():
    alone = BinaryMLP([4], **TINY)
    ensemble = BinaryMLP([9, 4], **TINY)
    for w_alone, w_ens in zip(alone.weights, ensemble.weights):
        assert torch.equal(w_alone[0], w_ens[1])
    dfa = make_trainer("DFA", BinaryMLP([4], **TINY), 0.1)
    drtp = make_trainer("DRTP", BinaryMLP([4, 5], **TINY), 0.1)
    assert torch.equal(dfa.feedback[0][0], drtp.feedback[0][0])
    assert all(b.abs().max() <= 1 for b in dfa.feedback)


def test_a_registered_name_is_the_objects_name_and_written_once():
    from bnnlib.binarize import ACTIVATIONS, WEIGHT_BINARISERS
    from bnnlib.trainers import TRAINERS
    for registry in (ACTIVATIONS, WEIGHT_BINARISERS, TRAINERS):
        for name in registry.names():
            assert registry.get(name).name == name
    for module in ("binarize.py", "trainers.py"):  # no class body repeats its decorator's name
        source = (Path(__file__).resolve().parents[1] / "bnnlib" / module).read_text()
        assert re.search(r'name = "\w', source) is None


def test_shallow_refuses_to_compute_a_hidden_signal_and_says_why():
    from bnnlib.model import BinaryMLP
    from bnnlib.trainers import make_trainer
    trainer = make_trainer("SHALLOW", BinaryMLP(seeds=[2], activation="sign", binary_weights=True,
                                                batch_norm=False, init=0.1), lr=1e-4)
    with pytest.raises(NotImplementedError, match="SHALLOW trains the output layer only"):
        trainer.hidden_signal(0, None, None, None, None)
