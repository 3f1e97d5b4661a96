"""The mechanism chapter's gap to the SHALLOW control over the epochs (bnnlib.book.control_gap):
best-so-far accuracies, Welch intervals and the sentence, derived by hand."""

from types import SimpleNamespace

import pandas as pd
import pytest

from bnnlib.book import control_gap
from bnnlib.protocol import get_budget


class EpochsOnly:
    """What epoch_records reads of a store: its epochs."""

    def __init__(self, rows):
        self.rows = pd.DataFrame(rows)

    def epochs(self):
        return self.rows


def config(run_id, algorithm, dataset="mnist", batch_norm=False):
    return SimpleNamespace(run_id=run_id, algorithm=algorithm, dataset=dataset, batch_norm=batch_norm)


def test_the_gap_is_best_so_far_minus_shallows_with_a_welch_interval():
    """SHALLOW's two seeds sit at 0.50 and 0.52; BP's at (0.30, 0.32), (0.55, 0.57), (0.53 → best
    so far 0.55, 0.60), (0.72, 0.74). Mean gaps: −0.20, +0.05, +0.065, +0.22. Where both variances
    are 2e-4 (epochs 1, 2, 4), se = √(1e-4 + 1e-4) = 0.01414 on 2 degrees of freedom: ± 4.303 ×
    0.01414 = ± 0.0609 — below, level, above; at epoch 3 BP's variance is 1.25e-3 and the
    interval (± 0.22 on 1.3 degrees of freedom) spans 0. A diverged run is left out."""
    bp = {"a": [0.30, 0.55, 0.53, 0.72], "b": [0.32, 0.57, 0.60, 0.74], "nan": [0.1, 0.1, 0.1, 0.1]}
    rows = [dict(run_id=f"bp-{seed}", epoch=e + 1, test_accuracy=v) for seed, values in bp.items()
            for e, v in enumerate(values)]
    rows += [dict(run_id=f"sh-{seed}", epoch=e + 1, test_accuracy=v) for seed, v in (("a", 0.50), ("b", 0.52))
             for e in range(4)]
    configs = [config(f"bp-{s}", "BP") for s in bp] + [config(f"sh-{s}", "SHALLOW") for s in "ab"]
    best = control_gap.best_so_far(EpochsOnly(rows), configs, get_budget("paper"), diverged=["bp-nan"])
    assert best[best["run_id"] == "bp-a"]["best"].tolist() == [0.30, 0.55, 0.55, 0.72]
    table = control_gap.gaps(best)
    assert table["algorithm"].tolist() == ["BP"] * 4 and table["epoch"].tolist() == [1, 2, 3, 4]
    assert table["difference"].tolist() == pytest.approx([-0.20, 0.05, 0.065, 0.22])
    half = (table["high"] - table["difference"]).tolist()
    assert [half[i] for i in (0, 1, 3)] == pytest.approx([4.303 * 0.01414] * 3, rel=1e-3)
    assert table["low"].iloc[2] < 0 < table["high"].iloc[2]
    assert control_gap.course(table) == dict(side="above", since=4)
    assert control_gap.page_table(table, early=2).to_dict("records") == [{
        "data": "MNIST, no BN", "rule": "BP", "epoch 2 (points)": "+5.00",
        "epoch 4 (points, 95 % CI)": f"+22.00 [{100 * (0.22 - half[3]):+.2f}, {100 * (0.22 + half[3]):+.2f}]",
        "over the epochs (95 % CI)": "above SHALLOW from epoch 4 on"}]
    assert list(control_gap.page_table(table, early=5)) == ["data", "rule", "epoch 4 (points, 95 % CI)",
                                                            "over the epochs (95 % CI)"]
    assert control_gap.page_table(table[table["epoch"] != 2], early=2)["epoch 2 (points)"].tolist() == ["–"]


def curve(*sides):
    """A gap curve whose intervals lie above (+), below (−) or across (0) zero, one epoch each."""
    value = {"+": (0.02, 0.01, 0.03), "-": (-0.02, -0.03, -0.01), "0": (0.0, -0.01, 0.01)}
    return pd.DataFrame([dict(epoch=e + 1, **dict(zip(("difference", "low", "high"), value[s])))
                         for e, s in enumerate(sides)])


@pytest.mark.parametrize("sides, expected", [
    ("+++", "above SHALLOW at every epoch"),
    ("---", "below SHALLOW at every epoch"),
    ("--0++", "above SHALLOW from epoch 4 on"),
    ("+-+-0", "not distinguishable from SHALLOW from epoch 5 on"),
    ("++--", "below SHALLOW from epoch 3 on"),   # ahead early, behind at the end
    ("0", "not distinguishable from SHALLOW at every epoch"),
])
def test_a_gaps_course_names_the_side_of_its_last_interval_and_since_when(sides, expected):
    assert control_gap.course_text(control_gap.course(curve(*sides))) == expected


def test_the_finding_groups_each_rules_settings_by_their_course():
    rows = [dict(dataset=d, batch_norm=b, algorithm=a, **row)
            for d, b in (("mnist", False), ("mnist", True), ("fashion-mnist", False))
            for a, sides in (("BP", "--" if b else "-+"), ("DFA", "++"))
            for row in curve(*sides).to_dict("records")]
    assert control_gap.finding(pd.DataFrame(rows)) == (
        "BP: above SHALLOW from epoch 2 on (MNIST without BN, Fashion-MNIST without BN); below SHALLOW at every "
        "epoch (MNIST with BN). DFA: above SHALLOW at every epoch (all 3 settings).")
    one = pd.DataFrame([row for row in rows if row["dataset"] == "mnist" and not row["batch_norm"]])
    assert control_gap.finding(one) == (  # one setting: named once, not after each rule
        "in MNIST without BN, BP: above SHALLOW from epoch 2 on; DFA: above SHALLOW at every epoch.")


@pytest.mark.parametrize("epochs, log", [(5, False), (100, True)])
def test_the_figure_has_a_panel_per_setting_and_a_log_epoch_axis_over_many_epochs(epochs, log):
    import matplotlib.pyplot as plt
    rows = [dict(dataset="mnist", batch_norm=b, algorithm="BP", **row) for b in (False, True)
            for row in curve(*("+" * epochs)).to_dict("records")]
    fig = control_gap.figure(pd.DataFrame(rows))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["MNIST, BN off", "MNIST, BN on"]
    assert all((ax.get_xscale() == "log") == log for ax in shown)
    if log:
        assert [t.get_text() for t in shown[0].get_xticklabels()] == ["1", "3", "10", "30", "100"]
        fig.canvas.draw()  # and they read apart: a third of a label's height at least between two
        boxes = [t.get_window_extent() for t in shown[0].get_xticklabels()]
        assert all(right.x0 - left.x1 > left.height / 3 for left, right in zip(boxes, boxes[1:]))
    else:  # every epoch labelled, none between two
        fig.canvas.draw()
        assert [t.get_text() for t in shown[0].get_xticklabels()] == ["1", "2", "3", "4", "5"]
    plt.close(fig)


@pytest.mark.parametrize("epochs, log", [(5, False), (100, True)])
def test_the_chapters_epoch_by_epoch_figures_share_the_epoch_axis(epochs, log):
    """The per-layer curves over the epochs (alignment, flips, STE window) read like the gap's."""
    import matplotlib.pyplot as plt
    from bnnlib.book.mechanism import layer_epoch_figure
    frame = pd.DataFrame([dict(dataset="mnist", batch_norm=False, algorithm="DFA", layer_name=f"block {k}",
                               run_id=f"r{seed}", epoch=e, flip_ratio=0.01 / e + 0.001 * seed)
                          for k in (1, 2) for seed in (1, 2) for e in range(1, epochs + 1)])
    fig = layer_epoch_figure(frame, "flip_ratio", "flipped", ["DFA"], "mnist", log=True, share=True)
    assert [ax.get_xscale() == "log" for ax in fig.axes] == [log]
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= epochs]
    assert ticks == ([1, 3, 10, 30, 100] if log else [1, 2, 3, 4, 5])
    plt.close(fig)


def test_an_epoch_without_two_seeds_on_each_side_has_no_interval_and_is_left_out():
    """BP's second seed stops after epoch 2 (a run not finished): epoch 3 holds one BP seed, and
    with one seed there is no interval — the gap stops at epoch 2 rather than reading "not
    distinguishable" there. A rule whose runs never reach two seeds has no curve at all."""
    rows = [dict(run_id="bp-a", epoch=e, test_accuracy=0.9) for e in (1, 2, 3)]
    rows += [dict(run_id="bp-b", epoch=e, test_accuracy=0.92) for e in (1, 2)]
    rows += [dict(run_id="dfa-a", epoch=e, test_accuracy=0.9) for e in (1, 2, 3)]
    rows += [dict(run_id=f"sh-{s}", epoch=e, test_accuracy=v) for s, v in (("a", 0.5), ("b", 0.52)) for e in (1, 2, 3)]
    configs = [config("bp-a", "BP"), config("bp-b", "BP"), config("dfa-a", "DFA"), config("sh-a", "SHALLOW"),
               config("sh-b", "SHALLOW")]
    table = control_gap.gaps(control_gap.best_so_far(EpochsOnly(rows), configs, get_budget("paper")))
    assert table["algorithm"].tolist() == ["BP", "BP"] and table["epoch"].tolist() == [1, 2]
    assert control_gap.course_text(control_gap.course(table)) == "above SHALLOW at every epoch"


def test_the_table_has_one_column_for_the_last_epoch_where_a_curve_stops_sooner():
    rows = [dict(dataset="mnist", batch_norm=b, algorithm="BP", **row) for b, sides in ((False, "+++"), (True, "++"))
            for row in curve(*sides).to_dict("records")]
    shown = control_gap.page_table(pd.DataFrame(rows), early=5)
    assert list(shown) == ["data", "rule", "epoch 3 (points, 95 % CI)", "over the epochs (95 % CI)"]
    assert shown["epoch 3 (points, 95 % CI)"].tolist() == ["+2.00 [+1.00, +3.00]", "–"]


def test_nothing_to_compare_says_so_and_draws_nothing():
    empty = control_gap.gaps(control_gap.best_so_far(EpochsOnly([]), [], get_budget("paper")))
    assert empty.empty
    assert control_gap.finding(empty) == "not measured: no setting holds two seeds of a rule and of SHALLOW."
    assert control_gap.figure(empty) is None


@pytest.mark.parametrize("settings", [1, 2, 3, 4])
def test_the_figures_epoch_labels_clear_its_legend(settings):
    """Each bottom panel says "epoch" above the legend, not under it: a figure-wide label placed at a
    fraction of the height overlapped the legend in a one-row figure (one setting recorded at 100
    epochs)."""
    import matplotlib.pyplot as plt
    keys = [("mnist", False), ("mnist", True), ("fashion-mnist", False), ("fashion-mnist", True)][:settings]
    rows = [dict(dataset=d, batch_norm=b, algorithm=rule, **row) for d, b in keys for rule in ("BP", "DFA")
            for row in curve(*("+" * 100)).to_dict("records")]
    fig = control_gap.figure(pd.DataFrame(rows))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    labelled = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel() == "epoch"]
    assert len(labelled) == min(settings, 2)
    assert all(ax.xaxis.label.get_window_extent(renderer).y0 > legend.y1 for ax in labelled)
    plt.close(fig)
