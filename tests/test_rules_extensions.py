"""Our extension rules, FA and SDFA: each one file of bnnlib/rules/, each a rule everywhere.

* FA: δy_k = δz_{k+1} B_{k+1}ᵀ — with B the weights the forward pass used it *is* BP, bit for bit;
* SDFA: δy_k = e sign(B_k), B_k DFA's own draw for the same seed.
"""

import itertools

import pytest
import torch

from bnnlib import BinaryMLP, make_trainer
from bnnlib.binarize import sign
from bnnlib.trainers import TRAINERS, rules

from reference import hand_step

TINY = dict(input_size=6, n_classes=3, hidden_sizes=(5, 4))


def batch(B=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, B, 6, generator=g) * 2 - 1
    targets = torch.nn.functional.one_hot(torch.randint(0, 3, (1, B), generator=g), 3).float() * 2 - 1
    return x, targets


#: (rule, its δy_k written from its definition: k, δz_{k+1}, W_{k+1} as used forward, e, t, trainer)
SIGNALS = [
    ("FA", lambda k, dz, W, e, t, trainer: dz @ trainer.feedback[k + 1][0].T),
    ("SDFA", lambda k, dz, W, e, t, trainer: e @ sign(trainer.feedback[k][0])),
]


@pytest.mark.parametrize("rule,signal,activation,binary",
                         [(r, s, a, b) for (r, s), a, b in itertools.product(SIGNALS, ["tanh", "sign"], [False, True])])
def test_extension_update_matches_its_hand_derived_formula(rule, signal, activation, binary):
    model = BinaryMLP([5], activation=activation, binary_weights=binary, init=0.8, **TINY)
    trainer = make_trainer(rule, model, lr=0.03)
    for step in range(2):
        x, targets = batch(seed=10 + step)
        expected = hand_step(model, lambda *a: signal(*a, trainer), x, targets, 0.03)
        trainer.step(x, targets)
        for got, want in zip(model.weights, expected):
            torch.testing.assert_close(got[0], want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("activation,binary,batch_norm", list(itertools.product(["tanh", "sign"], [False, True],
                                                                                 [False, True])))
def test_fa_with_the_forward_weights_as_feedback_is_bp_bit_for_bit(activation, binary, batch_norm):
    """Set FA's B_k to the weights the forward pass uses (sign(W_k) for binary layers): one FA
    step then equals one BP step exactly — weights, BN parameters and loss."""
    models = [BinaryMLP([5, 6], activation=activation, binary_weights=binary, batch_norm=batch_norm, init=0.8,
                        **TINY) for _ in range(2)]
    bp, fa = make_trainer("BP", models[0], lr=0.05), make_trainer("FA", models[1], lr=0.05)
    for k in range(1, models[1].n_hidden + 1):
        fa.feedback[k].copy_(models[1].effective_weight(k))
    x, targets = (t[0] for t in batch(seed=4))  # one batch for both members
    torch.testing.assert_close(fa.step(x, targets), bp.step(x, targets), rtol=0, atol=0)
    for name in ("weights", "bn_gamma", "bn_beta"):
        for got, want in zip(getattr(models[1], name), getattr(models[0], name)):
            assert torch.equal(got, want), name


def test_sdfa_feedback_is_the_sign_of_dfas_for_the_same_seed():
    model = BinaryMLP([5, 6], init=0.8, **TINY)
    dfa, sdfa = make_trainer("DFA", model, lr=0.1), make_trainer("SDFA", model, lr=0.1)
    for b, s in zip(dfa.feedback, sdfa.feedback):
        assert set(s.unique().tolist()) == {-1.0, 1.0}
        assert torch.equal(s, torch.where(b > 0, 1.0, -1.0))


def test_fa_feedback_has_the_forward_weights_shapes_and_survives_a_checkpoint():
    model = BinaryMLP([5, 6], init=0.8, **TINY)
    fa = make_trainer("FA", model, lr=0.1)
    assert [tuple(b.shape) for b in fa.feedback[1:]] == [tuple(w.shape) for w in model.weights[1:]]
    other = make_trainer("FA", BinaryMLP([7, 8], init=0.8, **TINY), lr=0.1)
    other.load_state_dict(fa.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.feedback[1:], fa.feedback[1:]))


def test_the_extensions_are_rules_everywhere_but_not_the_papers():
    from bnnlib.config import RunConfig
    from bnnlib.protocol import ALGORITHMS, EXTENSIONS, REPORTED_ALGORITHMS

    assert rules("extension") == EXTENSIONS == ("FA", "SDFA")
    assert not set(EXTENSIONS) & set(ALGORITHMS) and REPORTED_ALGORITHMS[-2:] == EXTENSIONS
    for rule in EXTENSIONS:
        assert TRAINERS.get(rule).colour is not None
        assert RunConfig(dataset="mnist", algorithm=rule).algorithm == rule


def test_a_rule_without_a_known_role_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(TRAINERS.get("SDFA"), "role", "extention")
    with pytest.raises(ValueError, match=r"rule SDFA \(bnnlib.rules.sdfa\) has role 'extention'; accepted: paper, "
                                         r"control, extension"):
        rules()
    with pytest.raises(ValueError, match="unknown rule role 'papers'; accepted: paper, control, extension"):
        rules("papers")


def test_the_books_tables_show_extensions_after_the_papers_rules_and_refuse_an_unknown_rule():
    import pandas as pd
    from bnnlib.book.labels import algorithm_palette, algorithms_in, rule_kind, with_setting

    frame = pd.DataFrame({"algorithm": ["SDFA", "BP", "FA", "DFA"], "weights": "binary", "activation": "sign"})
    assert algorithms_in(frame) == ["BP", "DFA", "DRTP", "FA", "SDFA"]
    assert list(with_setting(frame).sort_values("algorithm")["algorithm"]) == ["BP", "DFA", "FA", "SDFA"]
    assert [rule_kind(a) for a in ("BP", "SHALLOW", "FA")] == ["paper's", "control", "extension"]
    with pytest.raises(ValueError, match=r"rule\(s\) XYZ in a table are not registered; accepted: BP, DFA, DRTP"):
        with_setting(frame.assign(algorithm=["XYZ", "BP", "FA", "DFA"]))
    palette = algorithm_palette()
    assert set(palette) == set(rules()) and len(set(palette.values())) == len(palette)


def test_the_paper_rules_keep_the_figures_colours_they_had():
    import seaborn as sns
    from bnnlib.book.labels import algorithm_palette
    palette = algorithm_palette()
    assert [palette[a] for a in rules("paper")] == [tuple(c) for c in sns.color_palette("colorblind", 3)]
    assert palette["SHALLOW"] == (0.45, 0.45, 0.45)


def test_a_cpu_budget_results_table_shows_both_extensions_after_the_papers_rules():
    """The worked examples end to end, on the committed records: FA's and SDFA's MNIST finals without
    BN at the cpu budget join that setting's results table (every setting, every seed), after the
    paper's rules, read from the records — the path `book --budget cpu --only 04_results` renders."""
    from pathlib import Path
    from bnnlib.book.records import recorded_finals, with_controls
    from bnnlib.book.results import accuracy_table
    from bnnlib.protocol import get_budget
    from bnnlib.store import ResultsStore

    budget, store = get_budget("cpu"), ResultsStore(Path(__file__).resolve().parents[1] / "results" / "cpu")
    papers = recorded_finals("mnist", False, budget, store)
    assert papers is not None and set(papers["algorithm"]) == set(rules("paper"))
    table = accuracy_table(with_controls(papers, "mnist", False, budget, store))
    for rule in rules("extension"):  # FA and SDFA
        rows = table[table["algorithm"] == rule]
        assert len(rows) == 4 and set(rows["seeds"]) == {len(budget.seeds)}, rule
    order = list(dict.fromkeys(table.sort_values(["setting", "algorithm"])["algorithm"]))
    assert min(order.index(rule) for rule in rules("extension")) > max(order.index(rule) for rule in rules("paper"))
