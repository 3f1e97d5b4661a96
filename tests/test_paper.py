"""The paper's published numbers as data: parsed completely, and equal to the shared sources."""

from pathlib import Path

import pytest

from bnnlib.book import paper

SHARED = Path(__file__).resolve().parents[2] / "shared" / "paper"


def test_every_published_number_is_parsed():
    finals = paper.paper_final_medians()
    # MNIST and Fashion-MNIST with and without BN, CIFAR-10 with BN: 5 × 3 algorithms × 4 settings
    assert len(finals) == 5 * 12 and finals["paper_median"].between(0.1, 1).all()
    row = finals[(finals.dataset == "mnist") & ~finals.batch_norm & (finals.algorithm == "BP")
                 & (finals.weights == "binary") & (finals.activation == "sign")]
    assert row["paper_median"].tolist() == [0.594] and row["uncertainty"].tolist() == [0.001]
    grid = paper.paper_grid()
    assert len(grid) == 4 * 12 and set(grid["dataset"]) == {"mnist", "cifar10"}
    bp = grid[(grid.dataset == "mnist") & ~grid.batch_norm & (grid.algorithm == "BP") & (grid.weights == "binary")
              & (grid.activation == "sign")].iloc[0]
    assert (bp["init"], bp["lr"], bp["train_accuracy"], bp["test_accuracy"]) == (0.1, 1e-6, 0.6057, 0.6041)


def test_the_packaged_copy_equals_the_shared_paper_results():
    source = SHARED / "PAPER_RESULTS.md"
    if not source.exists():
        pytest.skip("../shared/paper is not beside this checkout")
    assert paper.SOURCE.read_text() == source.read_text()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_paper_selection_agrees_with_the_protocol(batch_norm):
    source = SHARED / "PROTOCOL.md"
    if not source.exists():
        pytest.skip("../shared/paper is not beside this checkout")
    tables = [rows for heading, rows in paper._tables(source.read_text()) if rows[0][:3] == ["algorithm", "weights", "activation"]]
    protocol_rows = {(a, w, act): (float(i), float(lr)) for a, w, act, i, lr in tables[int(batch_norm)][1:]}
    ours = {(r.algorithm, r.weights, r.activation): (r.init, r.lr) for r in paper.paper_selection(batch_norm).itertuples()}
    assert ours == protocol_rows
