"""The paper's published numbers as data: parsed completely, and equal to the shared sources."""

from pathlib import Path

import pytest

from bnnlib.book import paper

SHARED = Path(__file__).resolve().parents[2] / "shared" / "paper"
#: the protocol as the book ships it: its appendix page
PROTOCOL_PAGE = Path(__file__).resolve().parents[1] / "chapters" / "98_protocol.md"


def test_every_published_number_is_parsed():
    # MNIST and Fashion-MNIST with and without BN, CIFAR-10 with BN: 5 × 3 algorithms × 4 settings
    for finals, median, uncertainty in ((paper.paper_final_medians_by_eye(), 0.594, 0.001),
                                        (paper.paper_final_medians(), 0.5941, 0.0001)):  # by eye; from pixels (1b)
        assert len(finals) == 5 * 12 and finals["paper_median"].between(0.1, 1).all()
        row = finals[(finals.dataset == "mnist") & ~finals.batch_norm & (finals.algorithm == "BP")
                     & (finals.weights == "binary") & (finals.activation == "sign")]
        assert row["paper_median"].tolist() == [median] and row["uncertainty"].tolist() == [uncertainty]
    grid = paper.paper_grid()
    assert len(grid) == 4 * 12 and set(grid["dataset"]) == {"mnist", "cifar10"}
    bp = grid[(grid.dataset == "mnist") & ~grid.batch_norm & (grid.algorithm == "BP") & (grid.weights == "binary")
              & (grid.activation == "sign")].iloc[0]
    assert (bp["init"], bp["lr"], bp["train_accuracy"], bp["test_accuracy"]) == (0.1, 1e-6, 0.6057, 0.6041)


@pytest.mark.parametrize("shared,shipped", [("PAPER_RESULTS.md", paper.SOURCE),
                                            ("PROTOCOL.md", PROTOCOL_PAGE)])
def test_the_shipped_copies_equal_the_shared_sources(shared, shipped):
    """The paper's numbers ship with the package, its protocol as the book's appendix page
    (paper_results.md cites it): both verbatim."""
    source = SHARED / shared
    if not source.exists():
        pytest.skip("../shared/paper is not beside this checkout")
    assert shipped.read_text() == source.read_text()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_paper_selection_agrees_with_the_protocol(batch_norm):
    tables = [rows for heading, rows in paper._tables(PROTOCOL_PAGE.read_text()) if rows[0][:3] == ["algorithm", "weights", "activation"]]
    protocol_rows = {(a, w, act): (float(i), float(lr)) for a, w, act, i, lr in tables[int(batch_norm)][1:]}
    ours = {(r.algorithm, r.weights, r.activation): (r.init, r.lr) for r in paper.paper_selection(batch_norm).itertuples()}
    assert ours == protocol_rows


def test_the_published_learning_curve_is_parsed_and_a_missing_sentence_is_named(tmp_path, monkeypatch):
    curve = paper.paper_learning_curve()
    assert curve == {"setting": ("fashion-mnist", False), "plateau_from": 20, "plateau": (0.80, 0.88),
                     "bp_binary_sign": [(1, 0.14), (40, 0.58), (100, 0.65)]}
    edited = tmp_path / "paper_results.md"
    edited.write_text(paper.SOURCE.read_text().replace("climbs slowly", "climbs"))
    monkeypatch.setattr(paper, "SOURCE", edited)
    paper.paper_learning_curve.cache_clear()
    try:
        with pytest.raises(ValueError, match="published learning curve was not found"):
            paper.paper_learning_curve()
    finally:
        paper.paper_learning_curve.cache_clear()


def test_learning_curve_comparison_states_what_each_budget_reaches():
    import pandas as pd
    from bnnlib.book.learning_curves import learning_curve_comparison
    from bnnlib.protocol import Budget
    rows = [dict(algorithm=a, weights=w, activation="sign", seed=s, epoch=e, test_accuracy=acc)
            for a, w, acc in [("BP", "binary", 0.30), ("DFA", "binary", 0.80), ("BP", "continuous", 0.85)]
            for s in (2, 3) for e in (1, 2)]
    text = learning_curve_comparison(pd.DataFrame(rows), paper.paper_learning_curve(),
                                     Budget("two", 2, None, None, (2, 3), "two epochs"))
    assert "BP with binary weights at about 14 % after epoch 1, 58 % at epoch 40, 65 % at epoch 100" in text
    assert ("Ours after **2 epochs** (mean over the seeds): BP with binary weights 30.0 % after epoch 1, 30.0 % "
            "at epoch 2, the last of this budget (epochs 40 and 100 not reached at this budget); every other "
            "configuration 80.0–85.0 % at epoch 2.") in text


def test_the_paper_budgets_curve_so_far_names_the_configurations_it_rests_on():
    import pandas as pd
    from bnnlib.book.learning_curves import learning_curve_so_far
    configurations = [("BP", "binary", "sign", 0.60), ("DFA", "binary", "sign", 0.85), ("DFA", "binary", "tanh", 0.9)]
    so_far = pd.DataFrame([dict(run_id=f"{a}{w}{act}{s}", algorithm=a, weights=w, activation=act, seed=s)
                           for a, w, act, _ in configurations for s in (2, 3)])
    rows = [dict(run_id=f"{a}{w}{act}{s}", algorithm=a, weights=w, activation=act, seed=s, epoch=e,
                 test_accuracy=acc * e / 100) for a, w, act, acc in configurations for s in (2, 3)
            for e in (1, 40, 100, 101)]  # an epoch beyond the budget is left out
    text = learning_curve_so_far(so_far, pd.DataFrame(rows), paper.paper_learning_curve())
    assert text == ("Our **100-epoch** runs so far — provisional, from the sign configurations whose seeds have all "
                    "finished (BP binary sign, DFA binary sign) — ours (mean over the seeds): BP with binary weights "
                    "0.6 % after epoch 1, 24.0 % at epoch 40, 60.0 % at epoch 100; every other configuration "
                    "85.0 % at epoch 100.")
    assert learning_curve_so_far(so_far[so_far["activation"] == "tanh"], pd.DataFrame(rows),
                                 paper.paper_learning_curve()) == ""


def test_the_pixel_measured_quartiles_cover_every_cell_and_bracket_their_median():
    """Section 1b: Q1 ≤ median ≤ Q3 in each of the 60 cells (MNIST and Fashion-MNIST with and
    without BN, CIFAR-10 with BN; 3 rules × 4 settings), each median within 0.001 of section 1's
    reading by eye (1b says they agree within 0.08 points)."""
    quartiles = paper.paper_final_quartiles()
    assert len(quartiles) == 5 * 12
    assert ((quartiles["paper_q1"] <= quartiles["paper_median"]) &
            (quartiles["paper_median"] <= quartiles["paper_q3"])).all()
    keys = ["dataset", "batch_norm", "algorithm", "weights", "activation"]
    both = quartiles.merge(paper.paper_final_medians_by_eye(), on=keys, suffixes=("", "_by_eye"))
    assert len(both) == len(quartiles)
    assert (both["paper_median"] - both["paper_median_by_eye"]).abs().max() <= 0.0008 + 1e-12
    one = quartiles.set_index(keys).loc[("mnist", False, "BP", "binary", "sign")]
    assert (one["paper_q1"], one["paper_median"], one["paper_q3"]) == (0.5805, 0.5941, 0.5992)
